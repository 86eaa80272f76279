//! What a running bot shows the outside: Prometheus metrics, its health
//! (authenticated, websocket alive, last message) and a status snapshot.
//!
//! Why one handle carried in [`crate::ClientConfig::telemetry`] (like
//! [`crate::ClientConfig::control`]): the websocket task, the session
//! keeper and the REST client each see only the client they were given,
//! and the binary that serves the metrics keeps a clone of the config. So
//! every client built from (a clone of) one config counts into one set of
//! metrics, with no global registry and no statics (two bots in one process,
//! as the tests run them, count apart).
//!
//! Where the numbers come from:
//!
//! * this crate itself: websocket messages by topic, decode errors,
//!   reconnects and liveness (`ws`), HTTP 429s (`rest`), session re-inits
//!   and the authenticated flag (`session`, the websocket's `/tickle`, any
//!   401);
//! * the engine, through the methods below: orders by outcome and their
//!   round-trip latency, risk rejects, PnL and equity, and the
//!   [`StatusSnapshot`] it publishes every second.
//!
//! Labels are bounded on purpose (a Prometheus series per distinct label
//! value lives forever): a websocket topic is reduced to its known prefix
//! (`smd+265598` counts as `smd`), a risk reason to a short slug and at
//! most [`MAX_REASONS`] distinct ones.
//!
//! Every method is cheap (atomics; a lock only for the snapshot, the
//! reason set and the bot's client slot) and never fails.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use engine::risk::RiskReject;

/// The most distinct risk reject reasons kept as labels (the
/// [`RiskReject`] kinds included); further ones are counted as `other`.
pub const MAX_REASONS: usize = 32;

/// The `Content-Type` of [`Telemetry::encode`]'s output: the Prometheus
/// text format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Websocket topics counted under their own label; anything else is
/// `other`. The spec's topics (requests and unsolicited ones).
const TOPICS: &[&str] = &[
    "smd", "smh", "sbd", "sor", "str", "spl", "ssd", "sld", "sts", "system", "ntf", "blt", "act",
    "tic", "other",
];

/// The label of each [`RiskReject`] kind: every one is a series from the
/// start (at 0), so the family is always exposed.
const RISK_KINDS: [&str; RiskReject::KINDS.len()] = RiskReject::KINDS;

/// Buckets of the order round trip, in seconds: a loopback simulator
/// answers in milliseconds, a real gateway in tens to hundreds.
const ROUND_TRIP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How an order ended up, one label value each of `ibflow_orders_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderOutcome {
    /// Sent to the gateway.
    Sent,
    /// The gateway acknowledged it (an order id came back).
    Acked,
    /// Filled in full.
    Filled,
    /// Cancelled (by us, the kill switch or the venue).
    Cancelled,
    /// Refused before it left: risk, the kill switch, a halted client.
    Refused,
    /// Rejected by the gateway or the exchange.
    Rejected,
}

impl OrderOutcome {
    /// Every outcome, in the order above.
    pub const ALL: [OrderOutcome; 6] = [
        OrderOutcome::Sent,
        OrderOutcome::Acked,
        OrderOutcome::Filled,
        OrderOutcome::Cancelled,
        OrderOutcome::Refused,
        OrderOutcome::Rejected,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderOutcome::Sent => "sent",
            OrderOutcome::Acked => "acked",
            OrderOutcome::Filled => "filled",
            OrderOutcome::Cancelled => "cancelled",
            OrderOutcome::Refused => "refused",
            OrderOutcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TopicLabel {
    topic: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// One open position as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionRow {
    /// The contract.
    pub conid: i64,
    /// Signed quantity (negative: short).
    pub quantity: Decimal,
    /// Average price paid.
    pub avg_price: Decimal,
}

impl From<&engine::model::Position> for PositionRow {
    fn from(p: &engine::model::Position) -> Self {
        PositionRow {
            conid: p.conid.0,
            quantity: p.quantity,
            avg_price: p.avg_price,
        }
    }
}

/// One working order as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingOrderRow {
    /// The client order id (cOID) the bot gave it.
    pub coid: String,
    /// The contract.
    pub conid: i64,
    /// `BUY` or `SELL`.
    pub side: String,
    /// Ordered quantity.
    pub quantity: Decimal,
    /// Filled so far.
    pub filled: Decimal,
    /// The engine's status of it (`Submitted`, `PartiallyFilled`, ...).
    pub status: String,
    /// Limit or stop price; none for a market order.
    pub price: Option<Decimal>,
}

/// What `GET /status` answers: what the engine published last (account,
/// trading state, positions, working orders, PnL, equity), with the
/// fields this crate knows better filled in by [`Telemetry::status`] at the
/// moment of asking (connection, session, last message age, uptime,
/// counters). Decimals are JSON strings, so no amount loses a digit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusSnapshot {
    /// The account traded; `None` until the node picked it.
    pub account: Option<String>,
    /// The websocket: `connecting` (never up yet), `connected` or
    /// `reconnecting`. Filled in by [`Telemetry::status`].
    pub connection: String,
    /// The brokerage session: `authenticated` or `not authenticated`.
    /// Filled in by [`Telemetry::status`].
    pub session: String,
    /// The engine's trading state (`Active`, `Reducing`, `Halted`); empty
    /// until the engine published one.
    pub trading_state: String,
    /// Why order entry is halted at the transport (kill switch, session
    /// gone), if it is; filled in by the control endpoint.
    pub orders_halted: Option<String>,
    /// Open positions.
    pub positions: Vec<PositionRow>,
    /// Orders working at the venue.
    pub working_orders: Vec<WorkingOrderRow>,
    /// Realized PnL of the run.
    pub realized_pnl: Decimal,
    /// Unrealized PnL at the last marks.
    pub unrealized_pnl: Decimal,
    /// Equity as the engine accounts it.
    pub equity: Decimal,
    /// Milliseconds since the last websocket frame (heartbeats included);
    /// `None` before the first. Filled in by [`Telemetry::status`].
    pub last_message_age_ms: Option<u64>,
    /// Seconds since the telemetry handle (the run) started. Filled in by
    /// [`Telemetry::status`].
    pub uptime_secs: u64,
    /// The counters of the metrics, by name (`ws_messages`,
    /// `orders_sent`, `http_429`, ...). Filled in by [`Telemetry::status`].
    pub counters: BTreeMap<String, u64>,
}

/// Whether the bot can trade, as `GET /health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Authenticated and the websocket is alive.
    Ok,
    /// Not yet: the websocket never came up (the bot is starting).
    Connecting,
    /// Something is wrong; the reason says what.
    Unhealthy(String),
}

/// A weak reference to the bot's REST client: see
/// [`Telemetry::bot_client`]. Weak, because the client's config holds this
/// handle (a strong one would be a cycle).
type ClientSlot = Mutex<Option<Weak<crate::rest::ClientInner>>>;

struct Inner {
    registry: Registry,
    ws_messages: Family<TopicLabel, Counter>,
    decode_errors: Counter,
    ws_reconnects: Counter,
    http_429: Counter,
    session_reinits: Counter,
    round_trip: Histogram,
    orders: Family<OutcomeLabel, Counter>,
    risk_rejects: Family<ReasonLabel, Counter>,
    risk_rejects_total: AtomicU64,
    reasons: Mutex<HashSet<String>>,
    realized_pnl: Gauge<f64, AtomicU64>,
    unrealized_pnl: Gauge<f64, AtomicU64>,
    equity: Gauge<f64, AtomicU64>,
    authenticated: Gauge,
    ws_alive: Gauge,
    ws_ever_up: AtomicBool,
    last_message_unix: Gauge<f64, AtomicU64>,
    /// Milliseconds after `started` of the last frame, plus one (0: none).
    last_message_ms: AtomicU64,
    uptime: Gauge,
    started: Instant,
    status: Mutex<StatusSnapshot>,
    client: ClientSlot,
}

/// The bot's metrics, health and status; cheap to clone (an `Arc`), clones
/// share everything. See the module documentation. `Default` is a fresh
/// handle, started now.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("uptime", &self.inner.started.elapsed())
            .finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A fresh handle: every counter at zero, started now.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ibflow");
        let ws_messages = Family::<TopicLabel, Counter>::default();
        for t in TOPICS {
            let _ = ws_messages.get_or_create(&TopicLabel { topic: t });
        }
        registry.register(
            "ws_messages",
            "Websocket frames received, by topic prefix (smd, sor, str, system, ...)",
            ws_messages.clone(),
        );
        let decode_errors = Counter::default();
        registry.register(
            "ws_decode_errors",
            "Websocket messages that could not be decoded (malformed)",
            decode_errors.clone(),
        );
        let ws_reconnects = Counter::default();
        registry.register(
            "ws_reconnects",
            "Websocket reconnect attempts",
            ws_reconnects.clone(),
        );
        let http_429 = Counter::default();
        registry.register(
            "http_429",
            "HTTP 429 answers from the gateway (each one starts the 15-minute penalty box)",
            http_429.clone(),
        );
        let session_reinits = Counter::default();
        registry.register(
            "session_reinits",
            "Brokerage session re-initialisations (/iserver/auth/ssodh/init)",
            session_reinits.clone(),
        );
        let round_trip = Histogram::new(ROUND_TRIP_BUCKETS.iter().copied());
        registry.register(
            "order_round_trip_seconds",
            "Order round trip: from sending it to the gateway's acknowledgement",
            round_trip.clone(),
        );
        let orders = Family::<OutcomeLabel, Counter>::default();
        for o in OrderOutcome::ALL {
            let _ = orders.get_or_create(&OutcomeLabel {
                outcome: o.as_str(),
            });
        }
        registry.register(
            "orders",
            "Orders by outcome: sent, acked, filled, cancelled, refused, rejected",
            orders.clone(),
        );
        let risk_rejects = Family::<ReasonLabel, Counter>::default();
        for k in RISK_KINDS {
            let _ = risk_rejects.get_or_create(&ReasonLabel {
                reason: (*k).to_owned(),
            });
        }
        registry.register(
            "risk_rejects",
            "Orders refused by the pre-trade risk checks, by reason",
            risk_rejects.clone(),
        );
        let realized_pnl = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "realized_pnl",
            "Realized PnL of the run, in the account's currency",
            realized_pnl.clone(),
        );
        let unrealized_pnl = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "unrealized_pnl",
            "Unrealized PnL at the last marks, in the account's currency",
            unrealized_pnl.clone(),
        );
        let equity = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "equity",
            "Equity as the engine accounts it, in the account's currency",
            equity.clone(),
        );
        let authenticated = Gauge::default();
        registry.register(
            "authenticated",
            "1 when the gateway last reported the brokerage session authenticated",
            authenticated.clone(),
        );
        let ws_alive = Gauge::default();
        registry.register(
            "ws_alive",
            "1 while the websocket is connected",
            ws_alive.clone(),
        );
        let last_message_unix = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "ws_last_message_timestamp_seconds",
            "Unix time of the last websocket frame (heartbeats included); 0 before the first",
            last_message_unix.clone(),
        );
        let uptime = Gauge::default();
        registry.register(
            "uptime_seconds",
            "Seconds since the bot started",
            uptime.clone(),
        );
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                ws_messages,
                decode_errors,
                ws_reconnects,
                http_429,
                session_reinits,
                round_trip,
                orders,
                risk_rejects,
                risk_rejects_total: AtomicU64::new(0),
                reasons: Mutex::new(RISK_KINDS.iter().map(|k| (*k).to_owned()).collect()),
                realized_pnl,
                unrealized_pnl,
                equity,
                authenticated,
                ws_alive,
                ws_ever_up: AtomicBool::new(false),
                last_message_unix,
                last_message_ms: AtomicU64::new(0),
                uptime,
                started: Instant::now(),
                status: Mutex::new(StatusSnapshot::default()),
                client: Mutex::new(None),
            }),
        }
    }

    // ------------------------------------------------------------ engine

    /// An order left for the gateway (counts `outcome="sent"`).
    pub fn order_sent(&self) {
        self.order_outcome(OrderOutcome::Sent);
    }

    /// The gateway acknowledged an order `round_trip` after it was sent
    /// (counts `outcome="acked"` and observes the latency histogram).
    pub fn order_acked(&self, round_trip: Duration) {
        self.order_outcome(OrderOutcome::Acked);
        self.inner.round_trip.observe(round_trip.as_secs_f64());
    }

    /// Count one order under `outcome`.
    pub fn order_outcome(&self, outcome: OrderOutcome) {
        self.inner
            .orders
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// The risk checks refused an order for `reject`: counted under its
    /// kind ([`RiskReject::kind`]).
    pub fn risk_rejected(&self, reject: &RiskReject) {
        self.risk_reject(reject.kind());
    }

    /// The risk checks refused an order. `reason` should be a short kind
    /// (`max_position`, `daily_loss`), not a message: it becomes a label,
    /// reduced to `[a-z0-9_]` and 40 characters, and past
    /// [`MAX_REASONS`] distinct reasons it is counted as `other`.
    pub fn risk_reject(&self, reason: &str) {
        self.risk_rejects(reason, 1);
    }

    /// `n` refusals for `reason` at once (see [`Telemetry::risk_reject`]).
    pub fn risk_rejects(&self, reason: &str, n: u64) {
        self.inner
            .risk_rejects_total
            .fetch_add(n, Ordering::Relaxed);
        let mut slug = slug(reason);
        {
            let mut seen = self
                .inner
                .reasons
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !seen.contains(&slug) {
                if seen.len() < MAX_REASONS {
                    seen.insert(slug.clone());
                } else {
                    slug = "other".to_owned();
                }
            }
        }
        self.inner
            .risk_rejects
            .get_or_create(&ReasonLabel { reason: slug })
            .inc_by(n);
    }

    /// The run's realized and unrealized PnL now.
    pub fn set_pnl(&self, realized: Decimal, unrealized: Decimal) {
        self.inner.realized_pnl.set(to_f64(realized));
        self.inner.unrealized_pnl.set(to_f64(unrealized));
    }

    /// The equity now.
    pub fn set_equity(&self, equity: Decimal) {
        self.inner.equity.set(to_f64(equity));
    }

    /// Replace the status snapshot `GET /status` answers (the node calls it
    /// every second). The fields [`Telemetry::status`] fills in itself are
    /// ignored.
    pub fn publish_status(&self, snapshot: StatusSnapshot) {
        *self
            .inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// The last published snapshot with connection, session, last message
    /// age, uptime and counters as they are now.
    pub fn status(&self) -> StatusSnapshot {
        let mut s = self
            .inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s.connection = self.connection_state().to_owned();
        s.session = if self.is_authenticated() {
            "authenticated"
        } else {
            "not authenticated"
        }
        .to_owned();
        s.last_message_age_ms = self
            .last_message_age()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        s.uptime_secs = self.uptime().as_secs();
        s.counters = self.counters();
        s
    }

    /// The counters by name, as [`StatusSnapshot::counters`] shows them.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let i = &self.inner;
        let mut c = BTreeMap::new();
        let ws: u64 = TOPICS
            .iter()
            .map(|t| i.ws_messages.get_or_create(&TopicLabel { topic: t }).get())
            .sum();
        c.insert("ws_messages".to_owned(), ws);
        c.insert("ws_decode_errors".to_owned(), i.decode_errors.get());
        c.insert("ws_reconnects".to_owned(), i.ws_reconnects.get());
        c.insert("http_429".to_owned(), i.http_429.get());
        c.insert("session_reinits".to_owned(), i.session_reinits.get());
        for o in OrderOutcome::ALL {
            let n = i
                .orders
                .get_or_create(&OutcomeLabel {
                    outcome: o.as_str(),
                })
                .get();
            c.insert(format!("orders_{}", o.as_str()), n);
        }
        c.insert(
            "risk_rejects".to_owned(),
            i.risk_rejects_total.load(Ordering::Relaxed),
        );
        c
    }

    // ------------------------------------------------------------ health

    /// Whether the bot can trade now: authenticated and the websocket up.
    pub fn health(&self) -> Health {
        let alive = self.inner.ws_alive.get() == 1;
        if !alive && !self.inner.ws_ever_up.load(Ordering::Relaxed) {
            return Health::Connecting;
        }
        match (alive, self.is_authenticated()) {
            (true, true) => Health::Ok,
            (false, _) => Health::Unhealthy("websocket down (reconnecting)".to_owned()),
            (true, false) => Health::Unhealthy("brokerage session not authenticated".to_owned()),
        }
    }

    /// True when the gateway last said the brokerage session is
    /// authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.inner.authenticated.get() == 1
    }

    /// True while the websocket is connected.
    pub fn is_ws_alive(&self) -> bool {
        self.inner.ws_alive.get() == 1
    }

    /// Time since the last websocket frame; `None` before the first.
    pub fn last_message_age(&self) -> Option<Duration> {
        match self.inner.last_message_ms.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let at = Duration::from_millis(at - 1);
                Some(self.inner.started.elapsed().saturating_sub(at))
            }
        }
    }

    /// Time since this handle was made (the run started).
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// `connecting`, `connected` or `reconnecting`.
    fn connection_state(&self) -> &'static str {
        if self.is_ws_alive() {
            "connected"
        } else if self.inner.ws_ever_up.load(Ordering::Relaxed) {
            "reconnecting"
        } else {
            "connecting"
        }
    }

    // ------------------------------------------------------------ export

    /// Every metric in the Prometheus text format (version 0.0.4; serve
    /// it with [`METRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        self.inner
            .uptime
            .set(i64::try_from(self.uptime().as_secs()).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave
        // a partial text, which a scraper reports.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    // ------------------------------------------------ this crate's hooks

    /// A websocket frame arrived (any kind, heartbeats and pings too).
    pub(crate) fn ws_frame_seen(&self) {
        let ms = u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.inner
            .last_message_ms
            .store(ms.saturating_add(1), Ordering::Relaxed);
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.inner.last_message_unix.set(unix);
    }

    /// A text frame arrived: count it under its topic prefix.
    pub(crate) fn ws_message(&self, text: &str) {
        self.inner
            .ws_messages
            .get_or_create(&TopicLabel {
                topic: topic_label(text),
            })
            .inc();
    }

    /// A message could not be decoded.
    pub(crate) fn ws_decode_error(&self) {
        self.inner.decode_errors.inc();
    }

    /// The websocket task tries again after losing the socket.
    pub(crate) fn ws_reconnect(&self) {
        self.inner.ws_reconnects.inc();
    }

    /// The websocket came up (`true`) or went down (`false`).
    pub(crate) fn set_ws_alive(&self, alive: bool) {
        if alive {
            self.inner.ws_ever_up.store(true, Ordering::Relaxed);
        }
        self.inner.ws_alive.set(i64::from(alive));
    }

    /// The gateway answered 429.
    pub(crate) fn http_429(&self) {
        self.inner.http_429.inc();
    }

    /// `/iserver/auth/ssodh/init` was called.
    pub(crate) fn session_reinit(&self) {
        self.inner.session_reinits.inc();
    }

    /// What the gateway last said of the brokerage session.
    pub(crate) fn set_authenticated(&self, authenticated: bool) {
        self.inner.authenticated.set(i64::from(authenticated));
    }

    /// Remember `client` as the bot's client, unless a live one is
    /// already remembered (the first client built from the config is the
    /// node's).
    pub(crate) fn register_client(&self, client: &Arc<crate::rest::ClientInner>) {
        let mut slot = self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().and_then(Weak::upgrade).is_none() {
            *slot = Some(Arc::downgrade(client));
        }
    }

    /// The REST client of the bot: the first client built from a config
    /// carrying this handle that is still alive (the one
    /// [`crate::node::LiveNode::connect`] builds), with its pacer and
    /// cookies. `None` before the node connected and after it finished.
    ///
    /// Why: the control endpoint serves read-only gateway queries of other
    /// processes (`ibflow orders` next to a running bot) through this
    /// client, so they wait in the bot's pacer instead of adding requests
    /// the bot's pacer does not see (the gateway counts per IP address, and
    /// one 429 stops the bot for 15 minutes).
    pub fn bot_client(&self) -> Option<crate::IbkrClient> {
        let slot = self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .and_then(Weak::upgrade)
            .map(crate::IbkrClient::from_inner)
    }
}

/// The bounded label of a websocket text frame: the prefix of its `topic`
/// before `+`, when it is one of [`TOPICS`]; `tic` for the bare echo; else
/// `other`. A cheap scan, not a parse: it runs on every frame.
fn topic_label(text: &str) -> &'static str {
    const KEY: &str = "\"topic\"";
    let t = text.trim_start();
    if t.starts_with("tic") {
        return "tic";
    }
    let Some(at) = t.find(KEY) else {
        return "other";
    };
    let rest = t[at + KEY.len()..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return "other";
    };
    let Some(rest) = rest.trim_start().strip_prefix('"') else {
        return "other";
    };
    let end = rest.find(['+', '"']).unwrap_or(rest.len());
    let prefix = &rest[..end];
    TOPICS
        .iter()
        .find(|k| **k == prefix)
        .copied()
        .unwrap_or("other")
}

/// `reason` as a label value: lower case `[a-z0-9_]`, runs of anything
/// else as one `_`, at most 40 characters; `unknown` when nothing is left.
fn slug(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(40));
    for ch in reason.chars() {
        if out.len() >= 40 {
            break;
        }
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() {
        "unknown".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A Decimal as a gauge value; NaN when it does not fit (never: Decimal's
/// range is well within f64's).
fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Every line of the exposition is a comment or `name{labels} value`.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').unwrap();
            out.insert(key.to_owned(), value.parse::<f64>().unwrap());
        }
        out
    }

    #[test]
    fn topics_are_bounded_prefixes() {
        assert_eq!(topic_label(r#"{"topic":"smd+265598","31":"1"}"#), "smd");
        assert_eq!(topic_label(r#"{"31":"1","topic" : "smd+5"}"#), "smd");
        assert_eq!(topic_label(r#"{"topic":"system","hb":1}"#), "system");
        assert_eq!(topic_label(r#"{"topic":"sor","args":[]}"#), "sor");
        assert_eq!(topic_label(r#"{"topic":"zzz+1"}"#), "other");
        assert_eq!(topic_label("garbage"), "other");
        assert_eq!(topic_label(r#"{"topic":"#), "other");
        assert_eq!(topic_label(r#"{"topic":"sts"#), "sts");
        assert_eq!(topic_label("tic"), "tic");
    }

    #[test]
    fn engine_metrics_reach_the_exposition_and_the_counters() {
        let t = Telemetry::new();
        t.order_sent();
        t.order_sent();
        t.order_acked(Duration::from_millis(30));
        t.order_outcome(OrderOutcome::Filled);
        t.order_outcome(OrderOutcome::Rejected);
        t.risk_reject("Max Position!");
        t.risk_reject("max position");
        t.risk_rejected(&RiskReject::Rate(10));
        t.set_pnl(dec!(12.5), dec!(-3.25));
        t.set_equity(dec!(100012.5));
        t.ws_message(r#"{"topic":"smd+1"}"#);
        t.ws_decode_error();
        t.http_429();
        t.session_reinit();
        t.ws_reconnect();
        let text = t.encode();
        let s = samples(&text);
        assert_eq!(s[r#"ibflow_orders_total{outcome="sent"}"#], 2.0, "{text}");
        assert_eq!(s[r#"ibflow_orders_total{outcome="acked"}"#], 1.0);
        assert_eq!(s[r#"ibflow_orders_total{outcome="filled"}"#], 1.0);
        assert_eq!(s[r#"ibflow_orders_total{outcome="cancelled"}"#], 0.0);
        assert_eq!(
            s[r#"ibflow_risk_rejects_total{reason="max_position"}"#],
            2.0
        );
        assert_eq!(s["ibflow_realized_pnl"], 12.5);
        assert_eq!(s["ibflow_unrealized_pnl"], -3.25);
        assert_eq!(s["ibflow_equity"], 100012.5);
        assert_eq!(s[r#"ibflow_ws_messages_total{topic="smd"}"#], 1.0);
        assert_eq!(s["ibflow_ws_decode_errors_total"], 1.0);
        assert_eq!(s["ibflow_http_429_total"], 1.0);
        assert_eq!(s["ibflow_session_reinits_total"], 1.0);
        assert_eq!(s["ibflow_ws_reconnects_total"], 1.0);
        assert_eq!(s["ibflow_order_round_trip_seconds_count"], 1.0);
        assert_eq!(
            s[r#"ibflow_order_round_trip_seconds_bucket{le="0.05"}"#],
            1.0
        );
        assert_eq!(
            s[r#"ibflow_order_round_trip_seconds_bucket{le="0.025"}"#],
            0.0
        );
        let c = t.counters();
        assert_eq!(c["orders_sent"], 2);
        assert_eq!(c["orders_rejected"], 1);
        assert_eq!(c["risk_rejects"], 3);
        assert_eq!(s[r#"ibflow_risk_rejects_total{reason="rate"}"#], 1.0);
        assert_eq!(s[r#"ibflow_risk_rejects_total{reason="collar"}"#], 0.0);
        assert_eq!(c["ws_messages"], 1);
        assert_eq!(c["http_429"], 1);
    }

    #[test]
    fn risk_reasons_are_bounded() {
        let t = Telemetry::new();
        let free = MAX_REASONS - RISK_KINDS.len();
        for i in 0..(free + 10) {
            t.risk_reject(&format!("reason {i}"));
        }
        t.risk_reject("");
        t.risk_reject("halted");
        let s = samples(&t.encode());
        let series = s
            .keys()
            .filter(|k| k.starts_with("ibflow_risk_rejects"))
            .count();
        assert_eq!(series, MAX_REASONS + 1, "the first reasons and `other`");
        assert_eq!(s[r#"ibflow_risk_rejects_total{reason="other"}"#], 11.0);
        assert_eq!(s[r#"ibflow_risk_rejects_total{reason="halted"}"#], 1.0);
        assert_eq!(slug("  Daily-Loss  limit "), "daily_loss_limit");
        assert_eq!(slug("%%%"), "unknown");
        assert!(slug(&"x".repeat(100)).len() <= 40);
    }

    #[test]
    fn health_follows_the_websocket_and_the_session() {
        let t = Telemetry::new();
        assert_eq!(t.health(), Health::Connecting);
        assert_eq!(t.status().connection, "connecting");
        t.set_authenticated(true);
        t.set_ws_alive(true);
        assert_eq!(t.health(), Health::Ok);
        t.set_authenticated(false);
        assert!(matches!(t.health(), Health::Unhealthy(r) if r.contains("authenticated")));
        t.set_authenticated(true);
        t.set_ws_alive(false);
        assert!(matches!(t.health(), Health::Unhealthy(r) if r.contains("websocket")));
        assert_eq!(t.status().connection, "reconnecting");
        assert_eq!(t.last_message_age(), None);
        t.ws_frame_seen();
        assert!(t.last_message_age().is_some());
        assert!(samples(&t.encode())["ibflow_ws_last_message_timestamp_seconds"] > 1.0e9);
    }

    #[test]
    fn status_json_keeps_decimals_as_strings_and_round_trips() {
        let t = Telemetry::new();
        t.publish_status(StatusSnapshot {
            account: Some("DU1".into()),
            trading_state: "Active".into(),
            positions: vec![PositionRow {
                conid: 265598,
                quantity: dec!(10),
                avg_price: dec!(192.2600000000000000000000001),
            }],
            working_orders: vec![WorkingOrderRow {
                coid: "b.r.0.1".into(),
                conid: 265598,
                side: "BUY".into(),
                quantity: dec!(5),
                filled: dec!(0),
                status: "Submitted".into(),
                price: Some(dec!(190.5)),
            }],
            realized_pnl: dec!(1.10),
            equity: dec!(100000),
            // Overwritten by status().
            connection: "bogus".into(),
            ..StatusSnapshot::default()
        });
        let s = t.status();
        assert_eq!(s.connection, "connecting");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["positions"][0]["avg_price"],
            "192.2600000000000000000000001"
        );
        assert_eq!(v["realized_pnl"], "1.10");
        assert_eq!(v["working_orders"][0]["price"], "190.5");
        assert!(v["counters"]["orders_sent"].is_u64());
        let back: StatusSnapshot = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
