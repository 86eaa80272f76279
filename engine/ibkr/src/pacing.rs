//! Client-side pacing: the limits of [`cpapi::endpoints`], enforced before
//! a request leaves, so that a 429 (and its 15-minute penalty box) never
//! happens in normal operation.
//!
//! * A global limit of 10 requests per rolling second.
//! * Per-endpoint rate limits: the row [`endpoints::lookup`] finds for the
//!   request's method and path, one window per row (so `GET` and
//!   `POST /tickle` share one, `GET` and `PUT /fyi/disclaimer/{typecode}`
//!   have one each).
//! * At most 5 concurrent history requests: `/iserver/marketdata/history`
//!   and `/hmds/history` draw from one pool.
//!
//! The table and the matching live in `cpapi` because the simulator enforces
//! the same rows; nothing here restates a limit.
//!
//! Every window is lengthened by [`PacingConfig::margin`] (by default
//! [`Margin::CLIENT`]: 5%, at least 100 ms). The pacer stamps *send* times,
//! the gateway counts *arrival* times, and under load one request can be
//! delayed more than the next; two `/iserver/account/orders` calls spaced
//! exactly 5 s apart here could arrive 4.9 s apart there and cost a
//! 15-minute penalty. Tests on a paused clock use [`Margin::NONE`] to see the
//! exact limits.
//!
//! Callers queue: [`Pacer::acquire`] waits (FIFO per endpoint, FIFO on the
//! global window) and never drops a request. A request waiting on a slow
//! endpoint (1 per 5 s) holds only that endpoint's queue, not the global one.
//!
//! Waits answer to the client's [`ClientControl`]: once the run is stopping
//! a penalty-box wait fails at once; once order entry is halted (the kill
//! switch) an order entry request fails at once, even one already waiting;
//! and an order cancel goes ahead of every other request waiting for the
//! global window (the kill switch's cancels before anything else).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cpapi::endpoints::{self, EndpointId, Pacing, Pool};
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::control::ClientControl;
use crate::error::IbkrError;

pub use cpapi::endpoints::{Margin, Rate};

/// Settings of the limiter.
#[derive(Debug, Clone)]
pub struct PacingConfig {
    /// The global limit ([`endpoints::GLOBAL`]).
    pub global: Rate,
    /// Size of the history pool ([`Pool::History`]).
    pub max_concurrent_history: usize,
    /// Safety margin added to every rate window (global and per endpoint);
    /// see the module doc.
    pub margin: Margin,
    /// How long to stop after a 429 (the spec's penalty box is 15 minutes).
    pub penalty: Duration,
    /// During the penalty: wait it out (a long-running bot) or fail at once
    /// with [`IbkrError::PenaltyBox`] (the CLI).
    pub wait_out_penalty: bool,
    /// Start every window (global and per endpoint) as if it had just been
    /// used up. The gateway counts per IP address, and a process cannot
    /// know what it counted from the process before it: a bot restarted
    /// right after a crash listed its orders within 5 s of the killed one
    /// and spent 15 minutes in the penalty box. Assuming the worst costs at
    /// most one window per endpoint at start (5 s for the order and trade
    /// lists); on for a bot on an outside gateway.
    pub assume_windows_used: bool,
}

/// The share of the gateway's global limit a long-running bot takes: 8 of
/// the 10 requests a second. The gateway counts every client on the IP
/// address together (an operator's CLI, a script, a test's own requests);
/// a bot whose start-up burst used all ten pushed the next request of
/// anyone else on the machine into the 15-minute penalty box.
pub const BOT_GLOBAL: Rate = Rate::new(8, std::time::Duration::from_secs(1));

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            global: endpoints::GLOBAL,
            max_concurrent_history: Pool::History.size(),
            margin: Margin::CLIENT,
            penalty: endpoints::PENALTY_BOX,
            wait_out_penalty: true,
            assume_windows_used: false,
        }
    }
}

/// A rolling window of send times.
#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<Instant>,
}

impl Window {
    /// A window used up by `rate` at `at` when `used`, else empty.
    fn starting(rate: Rate, used: bool, at: Instant) -> Self {
        let n = if used { rate.count } else { 0 };
        Window {
            sent: std::iter::repeat_n(at, n).collect(),
        }
    }

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

/// What a request is, for the control rules (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Places, modifies or confirms an order: refused once order entry is
    /// halted.
    OrderEntry,
    /// Cancels an order: goes ahead of every other request.
    Cancel,
    /// Anything else.
    Other,
}

impl RequestKind {
    /// The kind of `method path` (path relative to the base URL, a query
    /// allowed), by its row of the one endpoint table
    /// ([`endpoints::lookup`]): `POST /iserver/account/{accountId}/orders`,
    /// `POST /iserver/account/{accountId}/order/{orderId}` and
    /// `POST /iserver/reply/{replyId}` enter orders; `DELETE
    /// /iserver/account/{accountId}/order/{orderId}` cancels.
    pub fn of(method: &str, path: &str) -> RequestKind {
        Self::of_row(method, endpoints::lookup(method, path))
    }

    /// [`RequestKind::of`] for a request already matched to its row.
    fn of_row(method: &str, row: Option<endpoints::Matched>) -> RequestKind {
        let Some(row) = row else {
            return RequestKind::Other;
        };
        let post = method.eq_ignore_ascii_case("POST");
        match row.endpoint.path {
            "/iserver/account/{accountId}/order/{orderId}"
                if method.eq_ignore_ascii_case("DELETE") =>
            {
                RequestKind::Cancel
            }
            "/iserver/account/{accountId}/orders"
            | "/iserver/account/{accountId}/order/{orderId}"
            | "/iserver/reply/{replyId}"
                if post =>
            {
                RequestKind::OrderEntry
            }
            _ => RequestKind::Other,
        }
    }
}

/// The limiter shared by every request of one client.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    /// When the pacer was made: the stamp of windows that start used
    /// ([`PacingConfig::assume_windows_used`]).
    created: Instant,
    global: Mutex<Window>,
    endpoints: std::sync::Mutex<HashMap<EndpointId, Arc<Mutex<Window>>>>,
    history: Arc<Semaphore>,
    control: ClientControl,
    /// Cancels between the start of `acquire` and their global slot.
    cancels_waiting: AtomicUsize,
    /// Told when `cancels_waiting` drops to zero.
    cancels_done: Notify,
}

/// Counts a cancel as waiting until it has its slot (or gave up).
struct CancelTicket<'a>(&'a Pacer);

impl<'a> CancelTicket<'a> {
    fn new(p: &'a Pacer) -> Self {
        p.cancels_waiting.fetch_add(1, Ordering::SeqCst);
        CancelTicket(p)
    }
}

impl Drop for CancelTicket<'_> {
    fn drop(&mut self) {
        if self.0.cancels_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.cancels_done.notify_waiters();
        }
    }
}

impl Pacer {
    /// A limiter with empty windows and no penalty, with a control handle
    /// of its own.
    pub fn new(config: PacingConfig) -> Self {
        Self::with_control(config, ClientControl::default())
    }

    /// A limiter that answers to `control` (shared with whoever stops the
    /// run or pulls the kill switch), and records its penalty box there.
    pub fn with_control(config: PacingConfig, control: ClientControl) -> Self {
        let created = Instant::now();
        Pacer {
            history: Arc::new(Semaphore::new(config.max_concurrent_history.max(1))),
            global: Mutex::new(Window::starting(
                config.global,
                config.assume_windows_used,
                created,
            )),
            created,
            config,
            endpoints: std::sync::Mutex::new(HashMap::new()),
            control,
            cancels_waiting: AtomicUsize::new(0),
            cancels_done: Notify::new(),
        }
    }

    /// The control handle the waits answer to.
    pub fn control(&self) -> &ClientControl {
        &self.control
    }

    /// The settings it enforces.
    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    /// Wait until `method path` may be sent without breaking any limit.
    /// Fails at once with [`IbkrError::Halted`] for order entry once order
    /// entry is halted, and with [`IbkrError::PenaltyBox`] instead of
    /// waiting out a penalty when the run is stopping (or the config says
    /// not to wait).
    pub async fn acquire(&self, method: &str, path: &str) -> Result<Permit, IbkrError> {
        let row = endpoints::lookup(method, path);
        let kind = RequestKind::of_row(method, row);
        let _ticket = (kind == RequestKind::Cancel).then(|| CancelTicket::new(self));
        self.refuse_if_halted(kind, path)?;
        self.wait_penalty(path, kind).await?;
        let pacing = row.map_or(Pacing::Global, |m| m.endpoint.pacing);
        let history = match pacing {
            Pacing::Concurrent(Pool::History) => Some(
                self.history
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| IbkrError::Config("pacer closed".into()))?,
            ),
            _ => None,
        };
        match (row, pacing) {
            (Some(row), Pacing::Rate(rate)) => {
                let rate = self.config.margin.apply(rate);
                let bucket = self.bucket(row.id, rate);
                let mut w = bucket.lock().await;
                let at = w.next_free(rate, Instant::now());
                self.sleep_until(at, kind, path).await?;
                // Hold the endpoint queue until the global window admits us,
                // so the endpoint's stamp is the real send time.
                let sent = self.global_slot(kind, path).await?;
                w.sent.push_back(sent);
            }
            _ => {
                self.global_slot(kind, path).await?;
            }
        }
        Ok(Permit { _history: history })
    }

    fn refuse_if_halted(&self, kind: RequestKind, path: &str) -> Result<(), IbkrError> {
        if kind == RequestKind::OrderEntry {
            if let Some(reason) = self.control.orders_halted() {
                return Err(IbkrError::Halted {
                    endpoint: path.to_owned(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Sleep until `at`; order entry wakes up (and fails) when order entry
    /// is halted meanwhile.
    async fn sleep_until(
        &self,
        at: Instant,
        kind: RequestKind,
        path: &str,
    ) -> Result<(), IbkrError> {
        if kind != RequestKind::OrderEntry || at <= Instant::now() {
            tokio::time::sleep_until(at).await;
            return Ok(());
        }
        let mut rx = self.control.subscribe();
        tokio::select! {
            _ = tokio::time::sleep_until(at) => Ok(()),
            seen = rx.wait_for(|f| f.orders_halted) => {
                // Release the watch's read lock before reading the flags.
                drop(seen);
                self.refuse_if_halted(kind, path)
            }
        }
    }

    /// Everything but a cancel lets waiting cancels go first.
    async fn yield_to_cancels(&self) {
        loop {
            let done = self.cancels_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.cancels_waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }

    async fn global_slot(&self, kind: RequestKind, path: &str) -> Result<Instant, IbkrError> {
        if kind != RequestKind::Cancel {
            self.yield_to_cancels().await;
        }
        let mut g = self.global.lock().await;
        let at = g.next_free(self.config.margin.apply(self.config.global), Instant::now());
        self.sleep_until(at, kind, path).await?;
        let now = Instant::now();
        g.sent.push_back(now);
        Ok(now)
    }

    fn bucket(&self, id: EndpointId, rate: Rate) -> Arc<Mutex<Window>> {
        let mut map = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(id)
            .or_insert_with(|| {
                Arc::new(Mutex::new(Window::starting(
                    rate,
                    self.config.assume_windows_used,
                    self.created,
                )))
            })
            .clone()
    }

    async fn wait_penalty(&self, path: &str, kind: RequestKind) -> Result<(), IbkrError> {
        // A 429 during the wait moves the end: wait again.
        while let Some(until) = self.control.penalty_until() {
            let now = Instant::now();
            if until <= now {
                return Ok(());
            }
            let flags = self.control.flags();
            if !self.config.wait_out_penalty || flags.stopping {
                return Err(IbkrError::PenaltyBox {
                    endpoint: path.to_owned(),
                    remaining: until - now,
                });
            }
            self.refuse_if_halted(kind, path)?;
            tracing::warn!(
                endpoint = path,
                remaining_s = (until - now).as_secs(),
                "request held: waiting out the 429 penalty box"
            );
            let mut rx = self.control.subscribe();
            let order_entry = kind == RequestKind::OrderEntry;
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                seen = rx.wait_for(|f| f.stopping || (order_entry && f.orders_halted)) => {
                    drop(seen);
                    self.refuse_if_halted(kind, path)?;
                    return Err(IbkrError::PenaltyBox {
                        endpoint: path.to_owned(),
                        remaining: until.saturating_duration_since(Instant::now()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Record a 429: every request waits (or fails) until the penalty ends.
    pub fn penalize(&self, path: &str) {
        let until = Instant::now() + self.config.penalty;
        self.control.set_penalty_until(until);
        tracing::error!(
            endpoint = path,
            penalty_s = self.config.penalty.as_secs(),
            "429 Too Many Requests from the gateway: the IP is in the penalty box; \
             all requests are held until it ends. This is a pacing bug: report it."
        );
    }

    /// Time left in the penalty box, if any.
    pub fn penalty_remaining(&self) -> Option<Duration> {
        self.control.penalty_remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SEC: Duration = Duration::from_secs(1);
    const SEC5: Duration = Duration::from_secs(5);
    const MIN15: Duration = Duration::from_secs(15 * 60);

    /// The exact limits, for timing assertions on a paused clock.
    fn exact() -> PacingConfig {
        PacingConfig {
            margin: Margin::NONE,
            ..PacingConfig::default()
        }
    }

    fn template(method: &str, path: &str) -> Option<&'static str> {
        endpoints::lookup(method, path).map(|m| m.endpoint.path)
    }

    #[test]
    fn templates_match() {
        assert_eq!(
            template("GET", "/iserver/account/orders?force=true"),
            Some("/iserver/account/orders")
        );
        assert_eq!(
            template("GET", "/fyi/notifications/more"),
            Some("/fyi/notifications/more")
        );
        assert_eq!(
            template("PUT", "/fyi/notifications/12345"),
            Some("/fyi/notifications/{notificationId}")
        );
        assert_eq!(
            endpoints::pacing("GET", "/iserver/accounts"),
            Pacing::Global
        );
        assert_eq!(
            endpoints::pacing("GET", "/hmds/history"),
            Pacing::Concurrent(Pool::History)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn global_ten_per_second() {
        let p = Arc::new(Pacer::new(exact()));
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
    async fn a_pacer_that_assumes_its_windows_used_waits_one_window_first() {
        let p = Pacer::new(PacingConfig {
            assume_windows_used: true,
            ..exact()
        });
        let t0 = Instant::now();
        // The process before may have listed orders a moment ago.
        p.acquire("GET", "/iserver/account/orders").await.unwrap();
        assert_eq!(Instant::now() - t0, SEC5);
        // ...and used the global second up: the first plain request had to
        // wait for it too (it is long over by now), the next goes at once.
        let t1 = Instant::now();
        p.acquire("GET", "/iserver/accounts").await.unwrap();
        assert_eq!(Instant::now() - t1, Duration::ZERO);
        // Without the assumption nothing waits at first.
        let q = Pacer::new(exact());
        let t2 = Instant::now();
        q.acquire("GET", "/iserver/account/orders").await.unwrap();
        q.acquire("GET", "/iserver/accounts").await.unwrap();
        assert_eq!(Instant::now() - t2, Duration::ZERO);
        let r = Pacer::new(PacingConfig {
            assume_windows_used: true,
            ..exact()
        });
        let t3 = Instant::now();
        r.acquire("GET", "/iserver/accounts").await.unwrap();
        assert_eq!(Instant::now() - t3, SEC, "the global window starts used");
    }

    #[tokio::test(start_paused = true)]
    async fn endpoint_limit_queues_without_blocking_others() {
        let p = Arc::new(Pacer::new(exact()));
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
        let p = Pacer::new(exact());
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

    #[test]
    fn request_kinds() {
        use RequestKind::*;
        assert_eq!(
            RequestKind::of("POST", "/iserver/account/U1/orders"),
            OrderEntry
        );
        assert_eq!(
            RequestKind::of("POST", "/iserver/account/U1/order/7"),
            OrderEntry
        );
        assert_eq!(RequestKind::of("POST", "/iserver/reply/abc"), OrderEntry);
        assert_eq!(
            RequestKind::of("DELETE", "/iserver/account/U1/order/7"),
            Cancel
        );
        assert_eq!(
            RequestKind::of("POST", "/iserver/account/U1/orders/whatif"),
            Other
        );
        assert_eq!(RequestKind::of("POST", "/iserver/account"), Other);
        assert_eq!(RequestKind::of("GET", "/iserver/account/orders"), Other);
        assert_eq!(
            RequestKind::of("GET", "/iserver/account/order/status/7"),
            Other
        );
    }

    /// A request waiting out the penalty box gives up as soon as the run
    /// stops: Ctrl-C and `--duration` never wait 15 minutes behind it.
    #[tokio::test(start_paused = true)]
    async fn stop_ends_a_penalty_wait_at_once() {
        let p = Arc::new(Pacer::new(exact()));
        p.penalize("/iserver/accounts");
        let t0 = Instant::now();
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.acquire("GET", "/iserver/accounts").await })
        };
        tokio::time::sleep(SEC5).await;
        p.control().stop();
        match waiting.await.unwrap() {
            Err(IbkrError::PenaltyBox { remaining, .. }) => {
                assert_eq!(remaining, MIN15 - SEC5)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Instant::now() - t0, SEC5);
        // And a new request fails without waiting.
        assert!(matches!(
            p.acquire("DELETE", "/iserver/account/U1/order/1").await,
            Err(IbkrError::PenaltyBox { .. })
        ));
        assert_eq!(Instant::now() - t0, SEC5);
    }

    /// The kill switch fails an order waiting in the pacer at once and
    /// refuses new ones; other requests are untouched.
    #[tokio::test(start_paused = true)]
    async fn halt_fails_order_entry_at_once() {
        let p = Arc::new(Pacer::new(exact()));
        p.penalize("/x");
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.acquire("POST", "/iserver/account/U1/orders").await })
        };
        tokio::time::sleep(SEC).await;
        p.control().halt_orders("kill switch");
        assert!(matches!(
            waiting.await.unwrap(),
            Err(IbkrError::Halted { ref reason, .. }) if reason == "kill switch"
        ));
        let p = Pacer::new(exact());
        p.control().halt_orders("kill switch");
        assert!(matches!(
            p.acquire("POST", "/iserver/reply/r1").await,
            Err(IbkrError::Halted { .. })
        ));
        p.acquire("DELETE", "/iserver/account/U1/order/1")
            .await
            .unwrap();
        p.acquire("GET", "/iserver/accounts").await.unwrap();
    }

    /// When the penalty ends, a cancel waiting for it goes before a request
    /// that was queued earlier.
    #[tokio::test(start_paused = true)]
    async fn cancels_go_first() {
        let p = Arc::new(Pacer::new(exact()));
        p.penalize("/x");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (method, path) in [
            ("GET", "/iserver/accounts"),
            ("GET", "/portfolio/U1/summary"),
            ("DELETE", "/iserver/account/U1/order/1"),
        ] {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                p.acquire(method, path).await.unwrap();
                order.lock().unwrap().push(method);
            }));
            tokio::time::sleep(SEC).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "DELETE");
    }

    #[tokio::test(start_paused = true)]
    async fn get_and_post_tickle_share_one_window() {
        let p = Pacer::new(exact());
        let t0 = Instant::now();
        p.acquire("GET", "/tickle").await.unwrap();
        p.acquire("POST", "/tickle").await.unwrap();
        assert_eq!(Instant::now() - t0, SEC);
        p.acquire("POST", "/tickle").await.unwrap();
        assert_eq!(Instant::now() - t0, SEC * 2);
        // GET and PUT of one path are two rows: no wait between them.
        let t1 = Instant::now();
        p.acquire("GET", "/fyi/disclaimer/1").await.unwrap();
        p.acquire("PUT", "/fyi/disclaimer/1").await.unwrap();
        assert_eq!(Instant::now() - t1, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn default_margin_lengthens_every_window() {
        let p = Pacer::new(PacingConfig::default());
        let t0 = Instant::now();
        p.acquire("GET", "/iserver/account/orders").await.unwrap();
        p.acquire("GET", "/iserver/account/orders").await.unwrap();
        // 5 s + 5%: a send-time spacing that survives arrival jitter.
        assert_eq!(Instant::now() - t0, Duration::from_millis(5250));
        let p = Pacer::new(PacingConfig::default());
        let t1 = Instant::now();
        for _ in 0..11 {
            p.acquire("GET", "/iserver/accounts").await.unwrap();
        }
        // The 11th global request goes 1 s + 100 ms after the first.
        assert_eq!(Instant::now() - t1, Duration::from_millis(1100));
    }

    /// Every typed call of `IbkrClient` is documented as "`METHOD /path`";
    /// each of those requests must have its row in the shared table (a call
    /// added without a row would be paced as global-only on this side and
    /// could be unknown to the simulator).
    #[test]
    fn every_documented_client_call_has_a_row() {
        let mut seen = 0;
        for line in include_str!("rest.rs").lines() {
            let Some(doc) = line.trim().strip_prefix("/// `") else {
                continue;
            };
            let Some((method, rest)) = doc.split_once(' ') else {
                continue;
            };
            if !["GET", "POST", "PUT", "DELETE"].contains(&method) {
                continue;
            }
            let path: String = rest
                .split(['`', '?'])
                .next()
                .unwrap_or_default()
                .split('/')
                .map(|seg| if seg.starts_with('{') { "7" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            assert!(
                endpoints::lookup(method, &path).is_some(),
                "{method} {path} (rest.rs) has no row in cpapi::endpoints"
            );
            seen += 1;
        }
        assert!(seen >= 35, "only {seen} documented calls found in rest.rs");
    }
}
