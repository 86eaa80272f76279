//! IBKR's daily server reset: the spec's "Regular Server Maintenance"
//! table (clients see disconnects at midnight of their connecting region:
//! 00:00 US/Eastern, 00:00 CEST, 00:00 HKT). The client's session keeper
//! expects the disconnect, the simulator performs it: one table for both.
//!
//! Assumptions: the spec's UTC row of the table (20:00/02:00/08:00) does
//! not match its local row for US/Eastern, so the local row is used with
//! chrono-tz (daylight saving included); "CEST" is Europe/Zurich (the
//! spec's FAQ names Zug).

use std::time::Duration;

use chrono::{NaiveTime, TimeZone};
use chrono_tz::Tz;

use engine::model::Timestamp;

/// The region whose server the gateway connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRegion {
    /// US/Eastern midnight (the default).
    NorthAmerica,
    /// Midnight in Europe/Zurich (the spec's "CEST").
    Europe,
    /// Midnight in Asia/Hong_Kong (HKT).
    Asia,
}

impl ResetRegion {
    /// The time zone whose midnight is the region's daily reset.
    pub fn tz(self) -> Tz {
        match self {
            ResetRegion::NorthAmerica => chrono_tz::US::Eastern,
            ResetRegion::Europe => chrono_tz::Europe::Zurich,
            ResetRegion::Asia => chrono_tz::Asia::Hong_Kong,
        }
    }

    /// Parse `na`/`us`, `eu`, `asia`/`hk`.
    pub fn parse(s: &str) -> Option<ResetRegion> {
        match s.to_ascii_lowercase().as_str() {
            "na" | "us" | "north-america" | "america" => Some(ResetRegion::NorthAmerica),
            "eu" | "europe" => Some(ResetRegion::Europe),
            "asia" | "hk" => Some(ResetRegion::Asia),
            _ => None,
        }
    }

    /// The most recent reset at or before `now`.
    pub fn last_reset(self, now: Timestamp) -> Timestamp {
        let tz = self.tz();
        let local = now.with_timezone(&tz);
        let mut date = local.date_naive();
        loop {
            // Midnight always exists in these zones (DST moves 02:00/03:00).
            if let Some(t) = tz
                .from_local_datetime(&date.and_time(NaiveTime::MIN))
                .earliest()
            {
                let t = t.with_timezone(&chrono::Utc);
                if t <= now {
                    return t;
                }
            }
            date = match date.pred_opt() {
                Some(d) => d,
                None => return now,
            };
        }
    }

    /// The next reset strictly after `now`.
    pub fn next_reset(self, now: Timestamp) -> Timestamp {
        let tz = self.tz();
        let mut date = now.with_timezone(&tz).date_naive();
        for _ in 0..4 {
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
            if let Some(t) = tz
                .from_local_datetime(&date.and_time(NaiveTime::MIN))
                .earliest()
            {
                let t = t.with_timezone(&chrono::Utc);
                if t > now {
                    return t;
                }
            }
        }
        now + chrono::Duration::days(1)
    }

    /// True within `grace` after a reset: a disconnect then is expected.
    pub fn in_reset_window(self, now: Timestamp, grace: Duration) -> bool {
        let since = now - self.last_reset(now);
        since.num_milliseconds() >= 0 && (since.num_milliseconds() as u128) < grace.as_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn reset_times() {
        // Summer: 00:00 EDT = 04:00 UTC; CEST = 22:00 UTC; HKT = 16:00 UTC.
        let now = Utc.with_ymd_and_hms(2024, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            ResetRegion::NorthAmerica.last_reset(now),
            Utc.with_ymd_and_hms(2024, 7, 1, 4, 0, 0).unwrap()
        );
        assert_eq!(
            ResetRegion::NorthAmerica.next_reset(now),
            Utc.with_ymd_and_hms(2024, 7, 2, 4, 0, 0).unwrap()
        );
        assert_eq!(
            ResetRegion::Europe.next_reset(now),
            Utc.with_ymd_and_hms(2024, 7, 1, 22, 0, 0).unwrap()
        );
        assert_eq!(
            ResetRegion::Asia.next_reset(now),
            Utc.with_ymd_and_hms(2024, 7, 1, 16, 0, 0).unwrap()
        );
        // Winter: 00:00 EST = 05:00 UTC.
        let w = Utc.with_ymd_and_hms(2024, 1, 15, 5, 10, 0).unwrap();
        assert_eq!(
            ResetRegion::NorthAmerica.last_reset(w),
            Utc.with_ymd_and_hms(2024, 1, 15, 5, 0, 0).unwrap()
        );
        assert!(ResetRegion::NorthAmerica.in_reset_window(w, Duration::from_secs(900)));
        assert!(!ResetRegion::NorthAmerica.in_reset_window(w, Duration::from_secs(300)));
        assert_eq!(ResetRegion::parse("hk"), Some(ResetRegion::Asia));
    }
}
