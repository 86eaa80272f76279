//! Time bars built from quotes, so strategies written against `on_bar` run
//! unchanged on a live quote stream.
//!
//! Each quote's last price (the mid when no trade has printed) updates the
//! bar of its time bucket; a quote in a later bucket closes the bar before
//! it. Volume is the rise of the day's cumulative volume (field 87) over the
//! bar. Buckets are aligned to the Unix epoch in UTC, so one-minute bars
//! start on the minute. The quote's own time (`_updated`) is used when it
//! has one, so a replayed feed builds bars in replay time.

use rust_decimal::Decimal;

use crate::model::{Bar, Conid, Quote, Timestamp};

#[derive(Debug, Clone)]
struct Partial {
    bucket: i64,
    bar: Bar,
    volume_at_open: Option<Decimal>,
    last_volume: Option<Decimal>,
}

/// Builds bars of a fixed period from quotes, per contract.
#[derive(Debug, Clone)]
pub struct BarBuilder {
    period_ms: i64,
    open: Vec<(Conid, Partial)>,
}

impl BarBuilder {
    /// `period` must be at least one millisecond.
    pub fn new(period: std::time::Duration) -> Self {
        BarBuilder {
            period_ms: (period.as_millis() as i64).max(1),
            open: Vec::new(),
        }
    }

    fn bucket_start(&self, bucket: i64) -> Timestamp {
        crate::model::from_epoch_ms(bucket * self.period_ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Feed a quote received at `now`; returns the bar it closed, if any.
    pub fn on_quote(&mut self, q: &Quote, now: Timestamp) -> Option<Bar> {
        let price = q.last.or_else(|| q.mid())?;
        let t = q.time.unwrap_or(now).timestamp_millis();
        let bucket = t.div_euclid(self.period_ms);
        let start = self.bucket_start(bucket);
        let idx = self.open.iter().position(|(c, _)| *c == q.conid);
        let fresh = |volume: Option<Decimal>| Partial {
            bucket,
            bar: Bar {
                conid: q.conid,
                time: start,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: Decimal::ZERO,
            },
            volume_at_open: volume,
            last_volume: volume,
        };
        let Some(i) = idx else {
            self.open.push((q.conid, fresh(q.volume)));
            return None;
        };
        let p = &mut self.open[i].1;
        if bucket < p.bucket {
            // A late quote of a closed bucket: too late to change that bar.
            return None;
        }
        if bucket == p.bucket {
            p.bar.high = p.bar.high.max(price);
            p.bar.low = p.bar.low.min(price);
            p.bar.close = price;
            if q.volume.is_some() {
                p.last_volume = q.volume;
            }
            return None;
        }
        let done = finish(p);
        // The new bar's volume counts from where the old one ended.
        let carry = p.last_volume.or(q.volume);
        *p = fresh(carry);
        if q.volume.is_some() {
            p.last_volume = q.volume;
        }
        Some(done)
    }

    /// Close and return every bar whose bucket ended by `now` (call it on a
    /// timer so a quiet market still closes its bars).
    pub fn flush(&mut self, now: Timestamp) -> Vec<Bar> {
        let current = now.timestamp_millis().div_euclid(self.period_ms);
        let mut out = Vec::new();
        self.open.retain(|(_, p)| {
            if p.bucket < current {
                out.push(finish(p));
                false
            } else {
                true
            }
        });
        out
    }
}

fn finish(p: &Partial) -> Bar {
    let mut bar = p.bar;
    if let (Some(a), Some(b)) = (p.volume_at_open, p.last_volume) {
        bar.volume = (b - a).max(Decimal::ZERO);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use rust_decimal_macros::dec;

    fn q(sec: i64, last: Decimal, vol: Option<Decimal>) -> Quote {
        Quote {
            conid: Conid(1),
            time: Some(
                Utc.with_ymd_and_hms(2024, 1, 2, 15, 0, 0).unwrap() + Duration::seconds(sec),
            ),
            last: Some(last),
            volume: vol,
            ..Quote::default()
        }
    }

    #[test]
    fn quotes_become_minute_bars() {
        let mut b = BarBuilder::new(std::time::Duration::from_secs(60));
        let now = Utc::now();
        assert!(b.on_quote(&q(0, dec!(10), Some(dec!(1000))), now).is_none());
        assert!(b
            .on_quote(&q(20, dec!(12), Some(dec!(1100))), now)
            .is_none());
        assert!(b.on_quote(&q(40, dec!(9), None), now).is_none());
        assert!(b
            .on_quote(&q(59, dec!(11), Some(dec!(1300))), now)
            .is_none());
        let bar = b
            .on_quote(&q(61, dec!(11.5), Some(dec!(1350))), now)
            .expect("bar closed");
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close, bar.volume),
            (dec!(10), dec!(12), dec!(9), dec!(11), dec!(300))
        );
        assert_eq!(
            bar.time,
            Utc.with_ymd_and_hms(2024, 1, 2, 15, 0, 0).unwrap()
        );
        assert!(bar.is_consistent());
        // A late quote of the closed minute changes nothing.
        assert!(b.on_quote(&q(30, dec!(50), None), now).is_none());
        // The timer closes the second bar; its volume counts from 1300.
        let flushed = b.flush(Utc.with_ymd_and_hms(2024, 1, 2, 15, 2, 0).unwrap());
        assert_eq!(flushed.len(), 1);
        assert_eq!(
            (flushed[0].open, flushed[0].high, flushed[0].volume),
            (dec!(11.5), dec!(11.5), dec!(50))
        );
        assert!(b
            .flush(Utc.with_ymd_and_hms(2024, 1, 2, 15, 3, 0).unwrap())
            .is_empty());
    }

    #[test]
    fn quotes_without_a_price_are_ignored() {
        let mut b = BarBuilder::new(std::time::Duration::from_secs(60));
        let mut nothing = q(0, dec!(1), None);
        nothing.last = None;
        assert!(b.on_quote(&nothing, Utc::now()).is_none());
        assert!(b.flush(Utc::now()).is_empty());
    }
}
