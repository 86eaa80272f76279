//! Synthetic one-minute bars for benchmarks and long soak runs.
//!
//! A generator, not a data set: ten million bars cost the same memory as ten.
//! Each bar takes one 64-bit SplitMix64 draw, split into bit fields, and
//! integer-cent arithmetic; no allocation and no floating point, so the
//! benchmark measures the engine rather than the data source, and a seed
//! gives the same bars on every platform.
//!
//! SplitMix64 rather than ChaCha8: ChaCha's ~3 ns per draw would be a third
//! of the per-bar budget, and a price feed for timing needs no
//! cryptographic quality. Likewise the clock is advanced by hand (seconds of
//! the day, date on wrap) because `DateTime + TimeDelta` costs ~5 ns.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use engine::model::{Bar, Conid};
use rust_decimal::Decimal;

/// 2024-01-02 14:30 UTC, a US session open: an arbitrary but fixed start.
const START_DAY: (i32, u32, u32) = (2024, 1, 2);
const START_SECOND_OF_DAY: u32 = 14 * 3600 + 30 * 60;
const DAY_SECONDS: u32 = 86_400;
/// Prices start at 100.00 and are pulled back towards it by 1/65536 of the
/// distance each bar (in expectation: a one-cent nudge with that
/// probability), so ten million steps stay within tens of dollars of it
/// rather than wandering to the floor.
const ANCHOR_CENTS: i64 = 10_000;
const FLOOR_CENTS: i64 = 100;

/// `count` consecutive one-minute bars (around the clock, no sessions) of a
/// random walk in whole cents for one conid, starting 2024-01-02 14:30 UTC.
#[derive(Debug, Clone)]
pub struct SyntheticBars {
    state: u64,
    conid: Conid,
    remaining: u64,
    day: NaiveDate,
    second_of_day: u32,
    close: i64,
}

impl SyntheticBars {
    /// `count` bars of `conid`; the same `seed` gives the same bars on every
    /// platform.
    pub fn new(conid: Conid, seed: u64, count: u64) -> Self {
        let (y, m, d) = START_DAY;
        SyntheticBars {
            state: seed,
            conid,
            remaining: count,
            day: NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default(),
            second_of_day: START_SECOND_OF_DAY,
            close: ANCHOR_CENTS,
        }
    }

    /// SplitMix64 (Steele, Lea, Flood 2014): full period, passes BigCrush.
    #[inline]
    fn draw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for SyntheticBars {
    type Item = Bar;

    #[inline]
    fn next(&mut self) -> Option<Bar> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let r = self.draw();
        // Bit fields of one draw; differences of two uniforms are symmetric
        // (triangular), so there is no drift to correct.
        let field = |shift: u32, mask: u64| ((r >> shift) & mask) as i64;
        let gap = field(0, 3) - field(2, 3);
        let step = field(4, 15) - field(8, 15);
        let distance = ANCHOR_CENTS - self.close;
        let threshold = field(28, 0xFFFF);
        let pull = i64::from(distance > threshold) - i64::from(-distance > threshold);
        let open = (self.close + gap).max(FLOOR_CENTS);
        let close = (open + step + pull).max(FLOOR_CENTS);
        let high = open.max(close) + field(12, 7);
        let low = (open.min(close) - field(15, 7)).max(1);
        let volume = 100 + field(18, 1023);
        let time = NaiveTime::from_num_seconds_from_midnight_opt(self.second_of_day, 0)
            .unwrap_or_default();
        let bar = Bar {
            conid: self.conid,
            time: NaiveDateTime::new(self.day, time).and_utc(),
            open: Decimal::new(open, 2),
            high: Decimal::new(high, 2),
            low: Decimal::new(low, 2),
            close: Decimal::new(close, 2),
            volume: Decimal::new(volume, 0),
        };
        self.close = close;
        self.second_of_day += 60;
        if self.second_of_day >= DAY_SECONDS {
            self.second_of_day -= DAY_SECONDS;
            match self.day.succ_opt() {
                Some(d) => self.day = d,
                // Past chrono's last day: end rather than repeat a time.
                None => self.remaining = 0,
            }
        }
        Some(bar)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl std::iter::FusedIterator for SyntheticBars {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn deterministic_consistent_minute_bars() {
        let a: Vec<Bar> = SyntheticBars::new(Conid(7), 42, 10_000).collect();
        let b: Vec<Bar> = SyntheticBars::new(Conid(7), 42, 10_000).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 10_000);
        assert_eq!(a[0].time.to_rfc3339(), "2024-01-02T14:30:00+00:00");
        assert_eq!(a[9_999].time.to_rfc3339(), "2024-01-09T13:09:00+00:00");
        assert!((a[0].open - Decimal::new(10_000, 2)).abs() <= Decimal::new(3, 2));
        for w in a.windows(2) {
            assert_eq!(w[1].time - w[0].time, TimeDelta::minutes(1));
            assert!(w[1].open - w[0].close <= Decimal::new(3, 2));
        }
        for bar in &a {
            assert!(bar.is_consistent(), "{bar:?}");
            assert_eq!(bar.conid, Conid(7));
            assert_eq!(bar.close.scale(), 2);
            assert!(bar.low > Decimal::ZERO);
        }
        let c: Vec<Bar> = SyntheticBars::new(Conid(7), 43, 100).collect();
        assert_ne!(a[..100], c[..]);
        assert_eq!(SyntheticBars::new(Conid(7), 1, 5).size_hint(), (5, Some(5)));
    }

    /// Release-mode speed check:
    /// `cargo test -p backtest --release --lib -- --ignored synthetic_speed --nocapture`
    #[test]
    #[ignore]
    fn synthetic_speed() {
        const N: u64 = 10_000_000;
        let start = std::time::Instant::now();
        let mut sum = Decimal::ZERO;
        let mut min = i64::MAX;
        let mut max = 0;
        for bar in SyntheticBars::new(Conid(1), 1, N) {
            let c = bar.close.mantissa() as i64;
            min = min.min(c);
            max = max.max(c);
            sum = std::hint::black_box(bar.volume);
        }
        let elapsed = start.elapsed();
        println!(
            "{N} bars in {elapsed:?}: {:.2} ns/bar, close range {min}..{max} cents, last volume {sum}",
            elapsed.as_nanos() as f64 / N as f64
        );
    }
}
