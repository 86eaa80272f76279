//! The venue's clock, as the market data tells it.
//!
//! Each `smd` message carries `_updated`, the gateway's time of the update
//! in epoch milliseconds (spec, "Market Data" and the websocket `smd`
//! topic). On the real gateway that is the wall clock, give or take the
//! network and the two machines' clock skew. A simulator replaying
//! history (`ibflow sim-gateway`) stamps quotes with its replay clock
//! instead, years in the past and running `--speed` times faster
//! (docs/sim-gateway-admin.md, "The venue clock"). What depends on the
//! venue's own time (per-contract trading hours, and whether bars close on
//! a wall-clock timer) must read that clock, not the bot's.
//!
//! The clock is kept as an offset from the wall clock, measured when a
//! quote arrives: `venue = wall + (quote time - arrival time)`. On a live
//! feed the offset is near zero however long ago the last quote came, so
//! a quiet contract or a closed market does not freeze the clock; on a
//! replay it follows the latest quote. Offsets under [`SAME_CLOCK`] are
//! taken as zero: latency and skew are not a second clock.
//!
//! Assumption (the spec does not say): `_updated` is the time of the
//! message, not of the last trade, so it is current on a live feed even
//! for a contract that has not traded for hours.

use chrono::TimeDelta;
use engine::model::Timestamp;

/// Offsets smaller than this are the same clock (latency, skew).
pub const SAME_CLOCK: TimeDelta = TimeDelta::minutes(10);

/// The venue's clock, learnt from quote times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VenueClock {
    /// Venue time minus wall time at the latest quote with a time; `None`
    /// until one arrives or while the two agree.
    offset: Option<TimeDelta>,
}

impl VenueClock {
    /// A quote stamped `quote_time` arrived at `wall`.
    pub fn observe(&mut self, quote_time: Timestamp, wall: Timestamp) {
        let offset = quote_time - wall;
        self.offset = (offset.abs() >= SAME_CLOCK).then_some(offset);
    }

    /// The venue's time when the wall clock says `wall`.
    pub fn now(&self, wall: Timestamp) -> Timestamp {
        self.offset
            .and_then(|o| wall.checked_add_signed(o))
            .unwrap_or(wall)
    }

    /// The venue keeps a clock of its own (a replay): its time moves with
    /// its quotes, not with the wall clock, so nothing should wait on the
    /// wall clock for it.
    pub fn is_replay(&self) -> bool {
        self.offset.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn before_any_quote_the_venue_keeps_the_wall_clock() {
        let c = VenueClock::default();
        let wall = at(2026, 12, 1, 4, 0);
        assert_eq!(c.now(wall), wall);
        assert!(!c.is_replay());
    }

    #[test]
    fn a_live_feed_with_skew_is_the_wall_clock_even_hours_after_its_last_quote() {
        let mut c = VenueClock::default();
        let arrived = at(2026, 12, 1, 15, 0);
        c.observe(arrived - TimeDelta::seconds(3), arrived);
        let later = arrived + TimeDelta::hours(5);
        assert_eq!(c.now(later), later);
        assert!(!c.is_replay());
    }

    #[test]
    fn a_replay_is_its_latest_quote_moved_on_by_the_wall_time_since() {
        let mut c = VenueClock::default();
        let wall = at(2026, 12, 1, 4, 0);
        let replay = at(2023, 6, 1, 15, 0);
        c.observe(replay, wall);
        assert!(c.is_replay());
        assert_eq!(
            c.now(wall + TimeDelta::seconds(2)),
            replay + TimeDelta::seconds(2)
        );
        // The next quote resets the offset: the replay ran a day ahead.
        c.observe(replay + TimeDelta::days(1), wall + TimeDelta::seconds(1));
        assert_eq!(
            c.now(wall + TimeDelta::seconds(1)),
            replay + TimeDelta::days(1)
        );
        // A feed that comes back to the wall clock is live again.
        c.observe(wall + TimeDelta::seconds(5), wall + TimeDelta::seconds(5));
        assert!(!c.is_replay());
    }

    #[test]
    fn an_absurd_quote_time_cannot_overflow_the_clock() {
        let mut c = VenueClock::default();
        let wall = at(2026, 12, 1, 4, 0);
        c.observe(Timestamp::MAX_UTC, wall);
        assert_eq!(c.now(wall), Timestamp::MAX_UTC);
        // Past the end of time: the wall clock, not a panic.
        let later = wall + TimeDelta::days(1);
        assert_eq!(c.now(later), later);
        c.observe(Timestamp::MIN_UTC, wall);
        assert_eq!(c.now(wall - TimeDelta::days(1)), wall - TimeDelta::days(1));
    }
}
