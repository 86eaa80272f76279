//! Streaming equity statistics: drawdown and daily returns.
//!
//! Definitions (quoted by the README):
//!
//! * **max_drawdown**: the largest peak-to-trough fall of equity, as a
//!   positive fraction of the peak: `max over t of (peak_t - equity_t) /
//!   peak_t`, where `peak_t` is the highest equity seen up to `t`, starting
//!   from the initial cash (an account that loses on its first bar is in
//!   drawdown from the money it started with).
//! * **Session day**: the calendar date of an equity observation in the
//!   session time zone (America/New_York by default), so that an evening
//!   bar in New York belongs to the same day as that afternoon's close even
//!   though it is already tomorrow in UTC.
//! * **Daily return**: `r_d = e_d / e_{d-1} - 1`, where `e_d` is the equity
//!   of the last observation of session day `d`. Days without observations
//!   do not exist (the return after a weekend spans the weekend). The first
//!   day has no return; a return after a non-positive close is skipped.
//! * **sharpe** = `mean(r) / std(r) * sqrt(252)` with the sample standard
//!   deviation (n - 1); 0 with fewer than 2 returns or a zero deviation. No
//!   risk-free rate is subtracted.
//! * **sortino** = `mean(r) / downside_dev * sqrt(252)` with
//!   `downside_dev = sqrt(mean(min(r, 0)^2))` over all returns; 0 with fewer
//!   than 2 returns or when no return is negative (the ratio is undefined).
//!
//! Cost per observation: a timestamp comparison for the day boundary and one
//! or two Decimal comparisons for the drawdown. The drawdown of a
//! peak-to-trough episode is divided out only when the episode ends (a new
//! peak, or the end of the run), and returns are converted to `f64` only at
//! day boundaries, so a 10-million-bar replay spends almost nothing here.

use chrono::{Duration, Offset, TimeZone};
use chrono_tz::Tz;
use engine::model::Timestamp;
use engine::num;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::ReportError;

/// Trading days per year used to annualize daily ratios.
pub const TRADING_DAYS_PER_YEAR: f64 = 252.0;

/// Running mean / variance (Welford) plus the downside sum of squares.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReturnStats {
    n: u64,
    mean: f64,
    m2: f64,
    downside_sq: f64,
}

impl ReturnStats {
    /// Add one daily return (a fraction: 0.01 = +1%).
    pub fn push(&mut self, r: f64) {
        self.n += 1;
        let delta = r - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (r - self.mean);
        let down = r.min(0.0);
        self.downside_sq += down * down;
    }

    /// How many returns were pushed.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean return; 0 before the first.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (n - 1); 0 with fewer than 2 returns.
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).max(0.0).sqrt()
        }
    }

    /// `sqrt(mean(min(r, 0)^2))`.
    pub fn downside_dev(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.downside_sq / self.n as f64).sqrt()
        }
    }

    /// Annualized Sharpe ratio, `mean / std * sqrt(252)`, no risk-free rate;
    /// 0 with fewer than 2 returns or a zero deviation.
    pub fn sharpe(&self) -> f64 {
        let std = self.std();
        if self.n < 2 || std == 0.0 || !std.is_finite() {
            0.0
        } else {
            self.mean / std * TRADING_DAYS_PER_YEAR.sqrt()
        }
    }

    /// Annualized Sortino ratio, `mean / downside_dev * sqrt(252)`; 0 with
    /// fewer than 2 returns or no negative one.
    pub fn sortino(&self) -> f64 {
        let dd = self.downside_dev();
        if self.n < 2 || dd == 0.0 || !dd.is_finite() {
            0.0
        } else {
            self.mean / dd * TRADING_DAYS_PER_YEAR.sqrt()
        }
    }
}

/// Drawdown and daily-return tracker fed by every equity observation.
#[derive(Debug, Clone)]
pub struct EquityTracker {
    tz: Tz,
    initial: Decimal,
    peak: Decimal,
    /// Lowest equity since `peak` was set.
    trough: Decimal,
    max_drawdown: Decimal,
    first_time: Option<Timestamp>,
    last_time: Option<Timestamp>,
    last_equity: Decimal,
    observations: u64,
    /// First UTC instant of the next session day.
    next_day_start: Timestamp,
    days: u64,
    prev_close: Option<f64>,
    returns: ReturnStats,
}

impl EquityTracker {
    /// `initial` must be positive (checked by the recorder).
    pub fn new(initial: Decimal, tz: Tz) -> Self {
        EquityTracker {
            tz,
            initial,
            peak: initial,
            trough: initial,
            max_drawdown: Decimal::ZERO,
            first_time: None,
            last_time: None,
            last_equity: initial,
            observations: 0,
            next_day_start: Timestamp::MIN_UTC,
            days: 0,
            prev_close: None,
            returns: ReturnStats::default(),
        }
    }

    /// Records one observation. Times must not go backwards.
    #[inline]
    pub fn observe(&mut self, time: Timestamp, equity: Decimal) -> Result<(), ReportError> {
        // Fast path for the common flat stretch: same day, same equity (the
        // same representation), so peak, trough and day stay as they are.
        if let Some(prev) = self.last_time {
            if time >= prev
                && time < self.next_day_start
                && equity.serialize() == self.last_equity.serialize()
            {
                self.last_time = Some(time);
                self.observations += 1;
                return Ok(());
            }
        }
        match self.last_time {
            Some(prev) if time < prev => {
                return Err(ReportError::TimeWentBackwards {
                    previous: prev,
                    got: time,
                })
            }
            Some(_) => {
                if time >= self.next_day_start {
                    self.close_day();
                    self.start_day(time);
                }
            }
            None => {
                self.first_time = Some(time);
                self.start_day(time);
            }
        }
        // Mantissa comparisons (engine::num): this runs once per timestamp.
        if num::gt(equity, self.peak) {
            if num::lt(self.trough, self.peak) {
                self.close_episode()?;
            }
            self.peak = equity;
            self.trough = equity;
        } else if num::lt(equity, self.trough) {
            self.trough = equity;
        }
        self.last_equity = equity;
        self.last_time = Some(time);
        self.observations += 1;
        Ok(())
    }

    /// Drawdown of the latest observation, as a positive fraction of the
    /// running peak (0 at a peak).
    pub fn current_drawdown(&self) -> Result<Decimal, ReportError> {
        drawdown(self.peak, self.last_equity)
    }

    /// The running peak (highest equity so far, at least the initial cash).
    pub fn peak(&self) -> Decimal {
        self.peak
    }

    fn close_episode(&mut self) -> Result<(), ReportError> {
        let dd = drawdown(self.peak, self.trough)?;
        if dd > self.max_drawdown {
            self.max_drawdown = dd;
        }
        Ok(())
    }

    #[cold]
    fn start_day(&mut self, time: Timestamp) {
        self.days += 1;
        self.next_day_start = next_session_day_start(self.tz, time);
    }

    #[cold]
    fn close_day(&mut self) {
        let Some(close) = self.last_equity.to_f64() else {
            return;
        };
        if let Some(prev) = self.prev_close {
            if prev > 0.0 {
                self.returns.push(close / prev - 1.0);
            }
        }
        self.prev_close = Some(close);
    }

    /// Closes the last day and the open drawdown episode.
    pub fn finish(mut self) -> Result<EquityStats, ReportError> {
        if self.observations > 0 {
            self.close_day();
        }
        if self.trough < self.peak {
            self.close_episode()?;
        }
        Ok(EquityStats {
            initial: self.initial,
            final_equity: self.last_equity,
            max_drawdown: self.max_drawdown,
            start: self.first_time,
            end: self.last_time,
            observations: self.observations,
            days: self.days,
            returns: self.returns,
        })
    }
}

/// The tracker's final state.
#[derive(Debug, Clone, Copy)]
pub struct EquityStats {
    /// Initial cash: the first peak.
    pub initial: Decimal,
    /// Last observed equity (the initial cash when nothing was observed).
    pub final_equity: Decimal,
    /// Largest peak-to-trough fall, a positive fraction of the peak (0.1 =
    /// 10%); see the module documentation.
    pub max_drawdown: Decimal,
    /// Time of the first observation; `None` when there was none.
    pub start: Option<Timestamp>,
    /// Time of the last observation; `None` when there was none.
    pub end: Option<Timestamp>,
    /// Equity observations recorded.
    pub observations: u64,
    /// Session days with at least one observation.
    pub days: u64,
    /// The daily returns (one fewer than `days` at most).
    pub returns: ReturnStats,
}

impl EquityStats {
    /// `final / initial - 1`.
    pub fn total_return(&self) -> f64 {
        self.final_equity
            .checked_div(self.initial)
            .and_then(|r| (r - Decimal::ONE).to_f64())
            .unwrap_or(f64::NAN)
    }

    /// `(final / initial)^(365.25 days / span) - 1` where the span runs from
    /// the first to the last equity observation; 0 when the span is zero.
    /// NaN (null in JSON) when final equity is negative or the power
    /// overflows.
    pub fn cagr(&self) -> f64 {
        let (Some(start), Some(end)) = (self.start, self.end) else {
            return 0.0;
        };
        let span_ms = (end - start).num_milliseconds();
        if span_ms <= 0 {
            return 0.0;
        }
        let years = span_ms as f64 / (365.25 * 86_400_000.0);
        let ratio = 1.0 + self.total_return();
        let cagr = ratio.powf(1.0 / years) - 1.0;
        if cagr.is_finite() {
            cagr
        } else {
            f64::NAN
        }
    }
}

/// `(peak - equity) / peak`, 0 when equity is at or above the peak.
fn drawdown(peak: Decimal, equity: Decimal) -> Result<Decimal, ReportError> {
    if equity >= peak {
        return Ok(Decimal::ZERO);
    }
    peak.checked_sub(equity)
        .and_then(|d| d.checked_div(peak))
        .ok_or(ReportError::Overflow("drawdown"))
}

/// The first UTC instant whose date in `tz` is after the date of `time`.
///
/// Local midnight can be ambiguous or skipped on DST days in some zones:
/// an ambiguous midnight takes the earlier instant, a skipped one is
/// resolved with the offset in force before the jump, which lands on the
/// first instant of the new day.
pub fn next_session_day_start(tz: Tz, time: Timestamp) -> Timestamp {
    let local = time.with_timezone(&tz);
    let Some(next_date) = local.date_naive().succ_opt() else {
        return Timestamp::MAX_UTC;
    };
    let midnight = next_date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => t.to_utc(),
        None => {
            let offset = local.offset().fix().local_minus_utc();
            (midnight - Duration::seconds(i64::from(offset))).and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rust_decimal_macros::dec;

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn welford_matches_two_pass() {
        let xs = [0.01, -0.02, 0.015, 0.0, -0.005, 0.03];
        let mut s = ReturnStats::default();
        xs.iter().for_each(|&x| s.push(x));
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!((s.mean() - mean).abs() < 1e-15);
        assert!((s.std() - var.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn degenerate_ratios_are_zero() {
        let mut s = ReturnStats::default();
        assert_eq!(s.sharpe(), 0.0);
        s.push(0.01);
        assert_eq!(s.sharpe(), 0.0);
        s.push(0.01);
        assert_eq!(s.sharpe(), 0.0);
        assert_eq!(s.sortino(), 0.0);
    }

    #[test]
    fn session_day_boundaries_follow_new_york() {
        let tz = chrono_tz::America::New_York;
        // 2024-01-02 22:00 in New York is 03:00Z on the 3rd.
        assert_eq!(
            next_session_day_start(tz, at(2024, 1, 2, 21)),
            at(2024, 1, 3, 5)
        );
        assert_eq!(
            next_session_day_start(tz, at(2024, 1, 3, 3)),
            at(2024, 1, 3, 5)
        );
        // Summer time: midnight is 04:00Z.
        assert_eq!(
            next_session_day_start(tz, at(2024, 7, 1, 12)),
            at(2024, 7, 2, 4)
        );
        // The day clocks go forward (2024-03-10) is 23 hours long.
        assert_eq!(
            next_session_day_start(tz, at(2024, 3, 10, 12)),
            at(2024, 3, 11, 4)
        );
    }

    #[test]
    fn skipped_midnight_resolves_to_first_instant() {
        // America/Santiago skipped 2022-09-11 00:00 -> 01:00 (UTC-4 -> UTC-3).
        let tz = chrono_tz::America::Santiago;
        let start = next_session_day_start(tz, at(2022, 9, 10, 12));
        assert_eq!(start, at(2022, 9, 11, 4));
        assert_eq!(
            start.with_timezone(&tz).date_naive(),
            chrono::NaiveDate::from_ymd_opt(2022, 9, 11).expect("date")
        );
    }

    #[test]
    fn drawdown_episodes() -> Result<(), ReportError> {
        let mut e = EquityTracker::new(dec!(100), chrono_tz::UTC);
        for (h, v) in [
            (0, dec!(90)),
            (1, dec!(120)),
            (2, dec!(90)),
            (3, dec!(100)),
            (4, dec!(130)),
            (5, dec!(117)),
        ] {
            e.observe(at(2024, 1, 2, h), v)?;
        }
        assert_eq!(e.current_drawdown()?, dec!(0.1));
        let s = e.finish()?;
        assert_eq!(s.max_drawdown, dec!(0.25));
        assert_eq!(s.days, 1);
        assert_eq!(s.returns.count(), 0);
        Ok(())
    }

    #[test]
    fn backwards_time_is_an_error() -> Result<(), ReportError> {
        let mut e = EquityTracker::new(dec!(100), chrono_tz::UTC);
        e.observe(at(2024, 1, 2, 5), dec!(100))?;
        e.observe(at(2024, 1, 2, 5), dec!(100))?;
        assert!(matches!(
            e.observe(at(2024, 1, 2, 4), dec!(100)),
            Err(ReportError::TimeWentBackwards { .. })
        ));
        Ok(())
    }
}
