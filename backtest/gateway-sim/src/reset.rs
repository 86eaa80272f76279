//! The session's replay-clock schedule: IBKR's daily server reset, the
//! bulletin that warns of it, and the 24-hour limit of an authenticated
//! session.
//!
//! The spec ("Regular Server Maintenance"; "How long does a session remain
//! authenticated?"): clients see disconnects at midnight of their
//! connecting region, 00:00 US/Eastern, 00:00 CEST (Zug) or 00:00 HKT, and
//! a session remains authenticated for up to 24 hours.
//!
//! Assumptions where the spec is silent or inconsistent:
//! * The reset times are the wire crate's table ([`cpapi::reset`], shared
//!   with the client's session keeper): local midnight in US/Eastern,
//!   Europe/Zurich and Asia/Hong_Kong, daylight saving time included (so
//!   Europe resets at 00:00 CET in winter). The spec's "Universal Time
//!   Coordinated" row (20:00, 02:00, 08:00 UTC) does not match its own
//!   local times (00:00 EDT is 04:00 UTC) and is not used.
//! * Both run on the *replay clock*, like everything the venue does, so a
//!   replay at `--speed 86400` sees a reset every real second. A jump of
//!   the clock across several midnights ([`crate::GatewayHandle::advance`])
//!   counts every midnight crossed in `resets` but resets (closes the
//!   websockets) once.
//! * A reset and the end of the 24 hours do the same as the admin API's
//!   `daily-reset`: every websocket closes and the brokerage session times
//!   out (`authenticated` false, `connected` true) until
//!   `POST /iserver/auth/ssodh/init`, which starts a new 24 hours.
//! * The warning bulletin (`blt`) goes to every websocket once per reset,
//!   [`crate::GatewayConfig::reset_warning`] of replay time before it; when
//!   the clock passes both the warning time and the reset within one step
//!   (high speeds), the bulletin is still sent, just before the sockets
//!   close.
//! * `resets` counts scheduled midnights and the admin API's
//!   `daily-reset`s; a session reaching its maximum age is not a reset and
//!   is not counted. The maximum age runs from the start and from every
//!   transition to authenticated (`ssodh/init`, `reauthenticate`, an admin
//!   restart that logs in); a session already timed out (idle, admin) when
//!   it would expire just loses its expiry.
//! * The replay clock does not stop or loop at the end of the data: it runs
//!   on (quotes stay at the last bar's close), and resets go on with it.

use std::time::Duration;

use chrono::TimeDelta;

pub use cpapi::reset::ResetRegion;

use engine::model::Timestamp;

/// How the spec's table names a region's reset zone, for the bulletin.
pub(crate) fn label(region: ResetRegion) -> &'static str {
    match region {
        ResetRegion::NorthAmerica => "US/Eastern",
        ResetRegion::Europe => "CET/CEST",
        ResetRegion::Asia => "HKT",
    }
}

/// What the schedule asks of the simulator at one step of the replay
/// clock, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// Send the warning bulletin for the reset at this time.
    pub warn: Option<Timestamp>,
    /// Do a daily reset (websockets close, the session times out).
    pub reset: bool,
}

/// The schedule's state: the next reset, whether it was warned of, how
/// many resets happened, when the authenticated session expires.
#[derive(Debug)]
pub(crate) struct Schedule {
    region: Option<ResetRegion>,
    warning: TimeDelta,
    max_age: Option<TimeDelta>,
    next_reset: Option<Timestamp>,
    warned: bool,
    resets: u64,
    session_expires_at: Option<Timestamp>,
    bulletins: u64,
}

impl Schedule {
    /// The schedule of a session authenticated at `now` (the simulator's
    /// start).
    pub(crate) fn new(
        region: Option<ResetRegion>,
        warning: Duration,
        max_age: Option<Duration>,
        now: Timestamp,
    ) -> Self {
        let mut s = Schedule {
            region,
            warning: TimeDelta::from_std(warning).unwrap_or(TimeDelta::zero()),
            max_age: max_age.and_then(|d| TimeDelta::from_std(d).ok()),
            next_reset: region.map(|r| r.next_reset(now)),
            warned: false,
            resets: 0,
            session_expires_at: None,
            bulletins: 0,
        };
        s.authenticated(now);
        s
    }

    /// The session (re)authenticated at `now`: a new 24 hours start.
    pub(crate) fn authenticated(&mut self, now: Timestamp) {
        self.session_expires_at = self.max_age.map(|a| now + a);
    }

    /// The session stopped being authenticated (reset, expiry, timeout
    /// seen by the admin): nothing to expire until the next
    /// `ssodh/init`.
    pub(crate) fn deauthenticated(&mut self) {
        self.session_expires_at = None;
    }

    /// A reset that did not come from the schedule (the admin API's
    /// `daily-reset`): counted like a scheduled one.
    pub(crate) fn count_reset(&mut self) {
        self.resets += 1;
        self.session_expires_at = None;
    }

    /// What is due at `now` for a session that is (or is not)
    /// `authenticated`; the state moves past it.
    pub(crate) fn step(&mut self, now: Timestamp, authenticated: bool) -> Due {
        let mut due = Due::default();
        if let (Some(region), Some(at)) = (self.region, self.next_reset) {
            if !self.warned && now >= at - self.warning {
                self.warned = true;
                due.warn = Some(at);
            }
            if now >= at {
                let mut next = at;
                let gap_days = (now - at).num_days();
                if gap_days > 366 {
                    // An absurd jump (speed or advance): count the days
                    // rather than walk them one by one under the lock.
                    self.resets += u64::try_from(gap_days).unwrap_or(0) + 1;
                    next = region.next_reset(now);
                }
                while next <= now {
                    self.resets += 1;
                    next = region.next_reset(next);
                }
                self.next_reset = Some(next);
                self.warned = false;
                due.reset = true;
            }
        }
        if self.session_expires_at.is_some_and(|e| now >= e) {
            // A session that is not authenticated any more (idle, admin)
            // has nothing left to expire.
            due.reset |= authenticated;
            self.session_expires_at = None;
        }
        if due.reset {
            self.session_expires_at = None;
        }
        due
    }

    /// The next scheduled reset, if resets are on.
    pub(crate) fn next_reset(&self) -> Option<Timestamp> {
        self.next_reset
    }

    /// Resets so far (scheduled, midnights crossed, and admin ones).
    pub(crate) fn resets(&self) -> u64 {
        self.resets
    }

    /// When the authenticated session reaches its maximum age.
    pub(crate) fn session_expires_at(&self) -> Option<Timestamp> {
        self.session_expires_at
    }

    /// The region, for the bulletin's text.
    pub(crate) fn region(&self) -> Option<ResetRegion> {
        self.region
    }

    /// A bulletin id unique in this run (`blt1`, `blt2`, ...).
    pub(crate) fn bulletin_id(&mut self) -> String {
        self.bulletins += 1;
        format!("blt{}", self.bulletins)
    }
}

/// The text of the bulletin that warns of a reset at `at`.
pub(crate) fn warning_text(region: ResetRegion, at: Timestamp) -> String {
    let local = at.with_timezone(&region.tz());
    format!(
        "IBKR server maintenance at {} {} ({} UTC): the session will be reset and must be \
         re-authenticated",
        local.format("%H:%M"),
        label(region),
        at.format("%Y-%m-%d %H:%M")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn midnights_of_the_three_regions() {
        // Summer: EDT (UTC-4), CEST (UTC+2), HKT (UTC+8).
        let t = utc(2023, 6, 1, 14, 0);
        assert_eq!(
            ResetRegion::NorthAmerica.next_reset(t),
            utc(2023, 6, 2, 4, 0)
        );
        assert_eq!(ResetRegion::Europe.next_reset(t), utc(2023, 6, 1, 22, 0));
        assert_eq!(ResetRegion::Asia.next_reset(t), utc(2023, 6, 1, 16, 0));
        // Winter: EST (UTC-5), CET (UTC+1).
        let w = utc(2023, 12, 1, 14, 0);
        assert_eq!(
            ResetRegion::NorthAmerica.next_reset(w),
            utc(2023, 12, 2, 5, 0)
        );
        assert_eq!(ResetRegion::Europe.next_reset(w), utc(2023, 12, 1, 23, 0));
        // Exactly at midnight: the next one.
        let m = utc(2023, 6, 2, 4, 0);
        assert_eq!(
            ResetRegion::NorthAmerica.next_reset(m),
            utc(2023, 6, 3, 4, 0)
        );
        // Across the spring DST change (2023-03-12 02:00 EST).
        assert_eq!(
            ResetRegion::NorthAmerica.next_reset(utc(2023, 3, 12, 6, 0)),
            utc(2023, 3, 13, 4, 0)
        );
    }

    #[test]
    fn warn_then_reset_then_expiry() {
        let start = utc(2023, 6, 1, 14, 0);
        let mut s = Schedule::new(
            Some(ResetRegion::NorthAmerica),
            Duration::from_secs(300),
            Some(Duration::from_secs(24 * 3600)),
            start,
        );
        assert_eq!(s.session_expires_at(), Some(utc(2023, 6, 2, 14, 0)));
        assert_eq!(s.step(utc(2023, 6, 2, 3, 54), true), Due::default());
        let w = s.step(utc(2023, 6, 2, 3, 56), true);
        assert_eq!(w.warn, Some(utc(2023, 6, 2, 4, 0)));
        assert!(!w.reset);
        assert_eq!(
            s.step(utc(2023, 6, 2, 3, 58), true),
            Due::default(),
            "warned once"
        );
        let r = s.step(utc(2023, 6, 2, 4, 0), true);
        assert!(r.reset && r.warn.is_none());
        assert_eq!(s.resets(), 1);
        assert_eq!(s.next_reset(), Some(utc(2023, 6, 3, 4, 0)));
        assert_eq!(s.session_expires_at(), None);
        // ssodh/init at 05:00: 24 hours from then, cut by the next reset.
        s.authenticated(utc(2023, 6, 2, 5, 0));
        // A jump over three midnights: warned and reset once, counted thrice.
        let j = s.step(utc(2023, 6, 5, 12, 0), true);
        assert_eq!(j.warn, Some(utc(2023, 6, 3, 4, 0)));
        assert!(j.reset);
        assert_eq!(s.resets(), 4);
        assert_eq!(s.next_reset(), Some(utc(2023, 6, 6, 4, 0)));
    }

    #[test]
    fn a_jump_of_years_is_counted_not_walked() {
        let start = utc(2023, 6, 1, 14, 0);
        let mut s = Schedule::new(Some(ResetRegion::Asia), Duration::ZERO, None, start);
        assert!(s.step(utc(2123, 6, 1, 14, 0), false).reset);
        assert!(s.resets() > 36_000, "{}", s.resets());
        assert_eq!(s.next_reset(), Some(utc(2123, 6, 1, 16, 0)));
    }

    #[test]
    fn the_24_hours_alone() {
        let start = utc(2023, 6, 1, 14, 0);
        let mut s = Schedule::new(
            None,
            Duration::from_secs(300),
            Some(Duration::from_secs(3600)),
            start,
        );
        assert_eq!(s.next_reset(), None);
        assert!(!s.step(utc(2023, 6, 1, 14, 59), true).reset);
        assert!(s.step(utc(2023, 6, 1, 15, 0), true).reset);
        assert!(!s.step(utc(2023, 6, 1, 16, 0), true).reset, "once");
        assert_eq!(s.resets(), 0, "an expiry is not a reset");
    }

    #[test]
    fn the_bulletin_names_the_local_midnight() {
        let t = warning_text(ResetRegion::NorthAmerica, utc(2023, 6, 2, 4, 0));
        assert!(
            t.starts_with("IBKR server maintenance at 00:00 US/Eastern"),
            "{t}"
        );
    }
}
