//! Client-side pacing: the spec's "Pacing Limitations" table, enforced
//! before a request leaves, so that a 429 (and its 15-minute penalty box)
//! never happens in normal operation.
//!
//! * A global limit of 10 requests per rolling second.
//! * Per-endpoint rate limits from the table, matched on path templates
//!   (`/fyi/disclaimer/{typecode}` matches any one segment there).
//! * At most 5 concurrent history requests (`/iserver/marketdata/history`
//!   per the table; `/hmds/history` shares the same pool, per the issue).
//!
//! Callers queue: [`Pacer::acquire`] waits (FIFO per endpoint, FIFO on the
//! global window) and never drops a request. A request waiting on a slow
//! endpoint (1 per 5 s) holds only that endpoint's queue, not the global one.
//!
//! Assumption (the spec is silent): the table's method column is not used for
//! matching, because the spec documents `/tickle` as POST while the table
//! lists GET; a path template's limit applies to every method, with one
//! bucket per method (`/fyi/disclaimer/{typecode}` GET and PUT are 1/s each).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::IbkrError;

/// A rate: at most `count` requests in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: usize,
    pub per: Duration,
}

impl Rate {
    pub const fn new(count: usize, per: Duration) -> Self {
        Rate { count, per }
    }
}

/// The limit one row of the table sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Rate(Rate),
    /// A shared pool of concurrent requests (history).
    Concurrent,
}

const SEC: Duration = Duration::from_secs(1);
const SEC5: Duration = Duration::from_secs(5);
const MIN: Duration = Duration::from_secs(60);
const MIN15: Duration = Duration::from_secs(15 * 60);

/// The spec's table, plus `/hmds/history` in the history pool.
pub const TABLE: &[(&str, Limit)] = &[
    ("/fyi/unreadnumber", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/settings", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/settings/{typecode}", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/disclaimer/{typecode}", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/deliveryoptions", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/deliveryoptions/email", Limit::Rate(Rate::new(1, SEC))),
    (
        "/fyi/deliveryoptions/device",
        Limit::Rate(Rate::new(1, SEC)),
    ),
    (
        "/fyi/deliveryoptions/{deviceId}",
        Limit::Rate(Rate::new(1, SEC)),
    ),
    ("/fyi/notifications", Limit::Rate(Rate::new(1, SEC))),
    ("/fyi/notifications/more", Limit::Rate(Rate::new(1, SEC))),
    (
        "/fyi/notifications/{notificationId}",
        Limit::Rate(Rate::new(1, SEC)),
    ),
    ("/iserver/account/orders", Limit::Rate(Rate::new(1, SEC5))),
    (
        "/iserver/account/pnl/partitioned",
        Limit::Rate(Rate::new(1, SEC5)),
    ),
    ("/iserver/account/trades", Limit::Rate(Rate::new(1, SEC5))),
    ("/iserver/marketdata/history", Limit::Concurrent),
    ("/hmds/history", Limit::Concurrent),
    (
        "/iserver/marketdata/snapshot",
        Limit::Rate(Rate::new(10, SEC)),
    ),
    ("/iserver/scanner/params", Limit::Rate(Rate::new(1, MIN15))),
    ("/iserver/scanner/run", Limit::Rate(Rate::new(1, SEC))),
    ("/pa/performance", Limit::Rate(Rate::new(1, MIN15))),
    ("/pa/summary", Limit::Rate(Rate::new(1, MIN15))),
    ("/pa/transactions", Limit::Rate(Rate::new(1, MIN15))),
    ("/portfolio/accounts", Limit::Rate(Rate::new(1, SEC5))),
    ("/portfolio/subaccounts", Limit::Rate(Rate::new(1, SEC5))),
    ("/sso/validate", Limit::Rate(Rate::new(1, MIN))),
    ("/tickle", Limit::Rate(Rate::new(1, SEC))),
];

/// The table row a request path falls under. Literal rows win over rows with
/// a `{param}` segment (`/fyi/notifications/more` is not a notification id).
pub fn match_template(path: &str) -> Option<(&'static str, Limit)> {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static str, Limit, usize)> = None;
    for (tpl, limit) in TABLE {
        let tsegs: Vec<&str> = tpl.split('/').collect();
        if tsegs.len() != segs.len() {
            continue;
        }
        let mut params = 0;
        let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
            if t.starts_with('{') {
                params += 1;
                !s.is_empty()
            } else {
                t == s
            }
        });
        if ok && best.is_none_or(|(_, _, p)| params < p) {
            best = Some((tpl, *limit, params));
        }
    }
    best.map(|(t, l, _)| (t, l))
}

/// Settings of the limiter.
#[derive(Debug, Clone)]
pub struct PacingConfig {
    pub global: Rate,
    pub max_concurrent_history: usize,
    /// How long to stop after a 429 (the spec's penalty box is 15 minutes).
    pub penalty: Duration,
    /// During the penalty: wait it out (a long-running bot) or fail at once
    /// with [`IbkrError::PenaltyBox`] (the CLI).
    pub wait_out_penalty: bool,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            global: Rate::new(10, SEC),
            max_concurrent_history: 5,
            penalty: MIN15,
            wait_out_penalty: true,
        }
    }
}

/// A rolling window of send times.
#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<Instant>,
}

impl Window {
    /// When the next request may go under `rate`.
    fn next_free(&mut self, rate: Rate, now: Instant) -> Instant {
        while let Some(&t) = self.sent.front() {
            if now.duration_since(t) >= rate.per {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() < rate.count {
            now
        } else {
            // The oldest of the last `count` sends leaves the window at +per.
            self.sent[self.sent.len() - rate.count] + rate.per
        }
    }
}

/// Held while a request is in flight; frees the history slot on drop.
#[derive(Debug)]
pub struct Permit {
    _history: Option<OwnedSemaphorePermit>,
}

/// The limiter shared by every request of one client.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    global: Mutex<Window>,
    endpoints: std::sync::Mutex<HashMap<String, Arc<Mutex<Window>>>>,
    history: Arc<Semaphore>,
    penalty_until: std::sync::Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Self {
        Pacer {
            history: Arc::new(Semaphore::new(config.max_concurrent_history.max(1))),
            config,
            global: Mutex::new(Window::default()),
            endpoints: std::sync::Mutex::new(HashMap::new()),
            penalty_until: std::sync::Mutex::new(None),
        }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    /// Wait until `method path` may be sent without breaking any limit.
    pub async fn acquire(&self, method: &str, path: &str) -> Result<Permit, IbkrError> {
        self.wait_penalty(path).await?;
        let rule = match_template(path);
        let history = match rule {
            Some((_, Limit::Concurrent)) => Some(
                self.history
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| IbkrError::Config("pacer closed".into()))?,
            ),
            _ => None,
        };
        if let Some((tpl, Limit::Rate(rate))) = rule {
            let bucket = self.bucket(method, tpl);
            let mut w = bucket.lock().await;
            let at = w.next_free(rate, Instant::now());
            tokio::time::sleep_until(at).await;
            // Hold the endpoint queue until the global window admits us, so
            // the endpoint's stamp is the real send time.
            let sent = self.global_slot().await;
            w.sent.push_back(sent);
        } else {
            self.global_slot().await;
        }
        Ok(Permit { _history: history })
    }

    async fn global_slot(&self) -> Instant {
        let mut g = self.global.lock().await;
        let at = g.next_free(self.config.global, Instant::now());
        tokio::time::sleep_until(at).await;
        let now = Instant::now();
        g.sent.push_back(now);
        now
    }

    fn bucket(&self, method: &str, tpl: &str) -> Arc<Mutex<Window>> {
        let key = format!("{method} {tpl}");
        let mut map = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(key).or_default().clone()
    }

    async fn wait_penalty(&self, path: &str) -> Result<(), IbkrError> {
        let until = *self
            .penalty_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                if !self.config.wait_out_penalty {
                    return Err(IbkrError::PenaltyBox {
                        endpoint: path.to_owned(),
                        remaining: until - now,
                    });
                }
                tracing::warn!(
                    endpoint = path,
                    remaining_s = (until - now).as_secs(),
                    "request held: waiting out the 429 penalty box"
                );
                tokio::time::sleep_until(until).await;
            }
        }
        Ok(())
    }

    /// Record a 429: every request waits (or fails) until the penalty ends.
    pub fn penalize(&self, path: &str) {
        let until = Instant::now() + self.config.penalty;
        *self
            .penalty_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(until);
        tracing::error!(
            endpoint = path,
            penalty_s = self.config.penalty.as_secs(),
            "429 Too Many Requests from the gateway: the IP is in the penalty box; \
             all requests are held until it ends. This is a pacing bug: report it."
        );
    }

    /// Time left in the penalty box, if any.
    pub fn penalty_remaining(&self) -> Option<Duration> {
        let until = (*self
            .penalty_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn templates_match() {
        assert_eq!(
            match_template("/iserver/account/orders?force=true").map(|t| t.0),
            Some("/iserver/account/orders")
        );
        assert_eq!(
            match_template("/fyi/notifications/more").map(|t| t.0),
            Some("/fyi/notifications/more")
        );
        assert_eq!(
            match_template("/fyi/notifications/12345").map(|t| t.0),
            Some("/fyi/notifications/{notificationId}")
        );
        assert_eq!(match_template("/iserver/accounts"), None);
        assert_eq!(
            match_template("/hmds/history").map(|t| t.1),
            Some(Limit::Concurrent)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn global_ten_per_second() {
        let p = Arc::new(Pacer::new(PacingConfig::default()));
        let t0 = Instant::now();
        let mut times = Vec::new();
        for _ in 0..25 {
            p.acquire("GET", "/iserver/accounts").await.unwrap();
            times.push(Instant::now() - t0);
        }
        assert_eq!(times[9], Duration::ZERO);
        assert_eq!(times[10], Duration::from_secs(1));
        assert_eq!(times[20], Duration::from_secs(2));
        // No rolling second ever holds more than 10.
        for (i, t) in times.iter().enumerate() {
            let n = times[i..].iter().filter(|u| **u < *t + SEC).count();
            assert!(n <= 10, "{n} sends in a second from {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn endpoint_limit_queues_without_blocking_others() {
        let p = Arc::new(Pacer::new(PacingConfig::default()));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.acquire("GET", "/iserver/account/orders").await.unwrap();
                Instant::now() - t0
            }));
        }
        tokio::task::yield_now().await;
        // Another endpoint goes straight through meanwhile.
        p.acquire("GET", "/iserver/accounts").await.unwrap();
        assert!(Instant::now() - t0 < SEC);
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort();
        assert_eq!(got, vec![Duration::ZERO, SEC5, SEC5 * 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn five_concurrent_history_requests() {
        let p = Arc::new(Pacer::new(PacingConfig::default()));
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (p, live, peak) = (p.clone(), live.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let path = if i % 2 == 0 {
                    "/hmds/history"
                } else {
                    "/iserver/marketdata/history"
                };
                let _permit = p.acquire("GET", path).await.unwrap();
                let n = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                live.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn penalty_box_holds_or_fails() {
        let p = Pacer::new(PacingConfig::default());
        p.penalize("/iserver/accounts");
        let t0 = Instant::now();
        p.acquire("GET", "/iserver/accounts").await.unwrap();
        assert_eq!(Instant::now() - t0, MIN15);

        let p = Pacer::new(PacingConfig {
            wait_out_penalty: false,
            penalty: Duration::from_secs(30),
            ..PacingConfig::default()
        });
        p.penalize("/x");
        match p.acquire("GET", "/x").await {
            Err(IbkrError::PenaltyBox { remaining, .. }) => {
                assert_eq!(remaining, Duration::from_secs(30))
            }
            other => panic!("{other:?}"),
        }
    }
}
