//! Trading hours of a contract, from `/trsrv/secdef/schedule`.
//!
//! The schedule lists, per day, the liquid `sessions` (regular hours) and
//! the wider `tradingtimes` (with extended hours), as `HHMM` in the
//! exchange's time zone. Day codes `20000101`..`20000107` stand for any
//! Saturday..Friday; any other date stands for itself and overrides the
//! weekday. A closing time before the opening time runs past midnight (as
//! futures sessions do). Times are compared in the exchange zone via
//! chrono-tz, so daylight saving is handled.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::model::Timestamp;

/// Why a schedule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule named a time zone chrono-tz does not know.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// A day code that is not a `YYYYMMDD` date.
    #[error("bad schedule date {0:?}")]
    Date(String),
    /// A time that is not `HHMM`.
    #[error("bad schedule time {0:?} (expected HHMM)")]
    Time(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DayKey {
    Weekday(u8),
    Date(NaiveDate),
}

type Intervals = Vec<(NaiveTime, NaiveTime)>;

/// When a contract trades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingHours {
    tz: Tz,
    /// Regular (liquid) hours and all trading hours, per day key.
    liquid: BTreeMap<DayKey, Intervals>,
    all: BTreeMap<DayKey, Intervals>,
}

/// One day of a schedule as the gateway sends it.
#[derive(Debug, Clone, Default)]
pub struct ScheduleDay<'a> {
    /// `tradingScheduleDate`, e.g. `20000103` (any Monday) or `20240704`.
    pub date: &'a str,
    /// `sessions` (liquid hours): (openingTime, closingTime).
    pub sessions: Vec<(&'a str, &'a str)>,
    /// `tradingtimes`: (openingTime, closingTime).
    pub trading_times: Vec<(&'a str, &'a str)>,
}

fn hhmm(s: &str) -> Result<NaiveTime, ScheduleError> {
    let t = s.trim();
    if t.len() != 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::Time(s.to_owned()));
    }
    let (h, m) = (t[..2].parse::<u32>(), t[2..].parse::<u32>());
    match (h, m) {
        // 2400 closes at the end of the day.
        (Ok(24), Ok(0)) => NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999),
        (Ok(h), Ok(m)) => NaiveTime::from_hms_opt(h, m, 0),
        _ => None,
    }
    .ok_or_else(|| ScheduleError::Time(s.to_owned()))
}

fn day_key(s: &str) -> Result<DayKey, ScheduleError> {
    let t = s.trim();
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::Date(s.to_owned()));
    }
    let d =
        NaiveDate::parse_from_str(t, "%Y%m%d").map_err(|_| ScheduleError::Date(s.to_owned()))?;
    if d.year() == 2000 && d.month() == 1 && (1..=7).contains(&d.day()) {
        // 20000101 is a Saturday; any Saturday..Friday.
        Ok(DayKey::Weekday(d.weekday().num_days_from_monday() as u8))
    } else {
        Ok(DayKey::Date(d))
    }
}

impl TradingHours {
    /// Build from the schedule's time zone name and days.
    pub fn new<'a>(
        timezone: &str,
        days: impl IntoIterator<Item = ScheduleDay<'a>>,
    ) -> Result<Self, ScheduleError> {
        let tz: Tz = timezone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(timezone.to_owned()))?;
        let mut liquid = BTreeMap::new();
        let mut all = BTreeMap::new();
        for day in days {
            let key = day_key(day.date)?;
            let conv = |v: &[(&str, &str)]| -> Result<Intervals, ScheduleError> {
                v.iter().map(|(o, c)| Ok((hhmm(o)?, hhmm(c)?))).collect()
            };
            let trading = conv(&day.trading_times)?;
            let sessions = conv(&day.sessions)?;
            // Without a separate session the whole trading day is liquid.
            liquid.insert(
                key,
                if sessions.is_empty() {
                    trading.clone()
                } else {
                    sessions
                },
            );
            all.insert(key, trading);
        }
        Ok(TradingHours { tz, liquid, all })
    }

    /// Open at `now`? `outside_rth` widens regular hours to all trading
    /// times, as the order flag of the same name does.
    pub fn is_open(&self, now: Timestamp, outside_rth: bool) -> bool {
        let local = now.with_timezone(&self.tz);
        let (date, time) = (local.date_naive(), local.time());
        let table = if outside_rth { &self.all } else { &self.liquid };
        let today = |d: NaiveDate| {
            table
                .get(&DayKey::Date(d))
                .or_else(|| table.get(&DayKey::Weekday(d.weekday().num_days_from_monday() as u8)))
        };
        let inside = |ivs: Option<&Intervals>, overnight_tail: bool| {
            ivs.is_some_and(|ivs| {
                ivs.iter().any(|&(open, close)| {
                    if open <= close {
                        !overnight_tail && time >= open && time < close
                    } else if overnight_tail {
                        // Yesterday's session running past midnight.
                        time < close
                    } else {
                        time >= open
                    }
                })
            })
        };
        inside(today(date), false) || date.pred_opt().is_some_and(|y| inside(today(y), true))
    }

    /// Same weekday convention as the schedule, for tests and display.
    pub fn weekday_code(w: Weekday) -> String {
        format!("2000010{}", (w.num_days_from_monday() + 2) % 7 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn stock() -> TradingHours {
        // The spec's example: Monday 04:00-20:00 trading, 09:30-16:00 liquid,
        // for every weekday, closed on a holiday.
        let mut days: Vec<ScheduleDay<'static>> =
            ["20000103", "20000104", "20000105", "20000106", "20000107"]
                .into_iter()
                .map(|d| ScheduleDay {
                    date: d,
                    sessions: vec![("0930", "1600")],
                    trading_times: vec![("0400", "2000")],
                })
                .collect();
        days.push(ScheduleDay {
            date: "20240704",
            sessions: vec![],
            trading_times: vec![],
        });
        TradingHours::new("America/New_York", days).unwrap()
    }

    #[test]
    fn regular_and_extended_hours_in_the_exchange_zone() {
        let h = stock();
        // Wednesday 2024-07-03 14:00 UTC = 10:00 EDT.
        let t = |y, mo, d, hh, mm| Utc.with_ymd_and_hms(y, mo, d, hh, mm, 0).unwrap();
        assert!(h.is_open(t(2024, 7, 3, 14, 0), false));
        // 13:29 UTC = 09:29 EDT: only extended hours.
        assert!(!h.is_open(t(2024, 7, 3, 13, 29), false));
        assert!(h.is_open(t(2024, 7, 3, 13, 29), true));
        // 20:00 UTC = 16:00 EDT: closed for regular hours (close is exclusive).
        assert!(!h.is_open(t(2024, 7, 3, 20, 0), false));
        // Winter: 14:30 UTC = 09:30 EST opens.
        assert!(h.is_open(t(2024, 1, 10, 14, 30), false));
        assert!(!h.is_open(t(2024, 1, 10, 14, 29), false));
        // Saturday and the holiday override.
        assert!(!h.is_open(t(2024, 7, 6, 15, 0), true));
        assert!(!h.is_open(t(2024, 7, 4, 15, 0), true));
    }

    #[test]
    fn sessions_past_midnight() {
        // A futures-like day: 18:00 to 17:00 next day, Sunday to Thursday.
        let days =
            ["20000102", "20000103", "20000104", "20000105", "20000106"].map(|d| ScheduleDay {
                date: d,
                sessions: vec![],
                trading_times: vec![("1800", "1700")],
            });
        let h = TradingHours::new("America/Chicago", days).unwrap();
        let t = |d, hh| Utc.with_ymd_and_hms(2024, 1, d, hh, 0, 0).unwrap();
        // Monday 2024-01-08 03:00 CST (09:00 UTC): Sunday's session.
        assert!(h.is_open(t(8, 9), false));
        // Monday 17:30 CST (23:30 UTC): the daily break.
        assert!(!h.is_open(Utc.with_ymd_and_hms(2024, 1, 8, 23, 30, 0).unwrap(), false));
        // Saturday 12:00 CST: closed (Friday has no session).
        assert!(!h.is_open(t(13, 18), false));
    }

    #[test]
    fn bad_schedules_are_errors() {
        let bad = |d: &'static str, o: &'static str| {
            TradingHours::new(
                "America/New_York",
                [ScheduleDay {
                    date: d,
                    sessions: vec![],
                    trading_times: vec![(o, "1600")],
                }],
            )
        };
        assert!(matches!(
            bad("2000013", "0930"),
            Err(ScheduleError::Date(_))
        ));
        assert!(matches!(
            bad("20000103", "9:30"),
            Err(ScheduleError::Time(_))
        ));
        assert!(matches!(
            TradingHours::new("Mars/Base", []),
            Err(ScheduleError::TimeZone(_))
        ));
        assert_eq!(TradingHours::weekday_code(Weekday::Sat), "20000101");
        assert_eq!(TradingHours::weekday_code(Weekday::Mon), "20000103");
    }
}
