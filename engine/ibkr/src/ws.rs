//! The websocket client: `/v1/api/ws` with the `api` cookie from `/tickle`.
//!
//! One background task owns the connection. It subscribes with the spec's
//! `TOPIC+TARGET+{PARAMS}` messages, sends `tic` at least once a minute,
//! watches for a dead connection (no message, heartbeat included, within
//! [`WsConfig::dead_after`]; the gateway sends a `system` heartbeat every
//! 10 s), reconnects with exponential backoff and jitter, and sends every
//! active subscription again after a reconnect. Decoded messages go out on
//! a tokio mpsc channel as [`WsMessage`]; the ones the engine's bus knows
//! are [`engine::event::Event`]s. An execution delivered twice (a `str`
//! replay after a reconnect) is published once, keyed by `execution_id`.
//!
//! Reconnecting is bounded ([`ReconnectLimits`], in
//! [`crate::ClientConfig::reconnect`]): when the gateway says the session
//! is gone (`/tickle` refused or reporting it not connected or competing,
//! the upgrade refused with 401/403) several times in a row, or the socket
//! has been down too long, the task logs an ERROR, records the reason in
//! the client's [`crate::control::ClientControl`] (which halts order
//! entry), sends [`WsMessage::SessionEnded`] and ends, closing the
//! channel. After `/logout` a login in the browser is needed; reconnecting
//! forever would only hide that.
//!
//! Assumptions (the spec shows placeholders only): the heartbeat is
//! `{"topic":"system","hb":<epoch ms>}`; `sor` and `str` carry an `args`
//! array of the same objects as `/iserver/account/orders` and
//! `/iserver/account/trades`; `spl` carries `args` keyed `"{acct}.Core"`
//! with `dpl`, `upl`, `nl`; text and binary frames both carry JSON text.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

use crate::error::IbkrError;
use crate::rest::{is_loopback, IbkrClient};
use cpapi::messages::{LiveOrder, SessionToken, Trade};
use cpapi::smd::SmdDecoder;
use engine::event::{Event, PnlUpdate, SessionStatus};
use engine::model::Conid;
use engine::seen::SeenIds;

/// A subscription, as the spec's topics define them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subscription {
    /// `smd+CONID+{"fields":[...]}`.
    MarketData {
        /// The contract.
        conid: Conid,
        /// Market data field ids (`31` last price, `84` bid, ...), as strings.
        fields: Vec<String>,
    },
    /// `smh+CONID+{params}` (period, bar, outsideRth, source, format).
    History {
        /// The contract (SMART routing).
        conid: Conid,
        /// The JSON parameter object, sent as is; empty means `{}`.
        params: String,
    },
    /// `sbd+ACCT+CONID` (BookTrader price ladder).
    BookTrader {
        /// The account id.
        account: String,
        /// The contract.
        conid: Conid,
    },
    /// `sor+{}` live order updates.
    Orders,
    /// `str+{"realtimeUpdatesOnly":..,"days":..}`.
    Trades {
        /// `realtimeUpdatesOnly`: only executions from now on, no history.
        realtime_only: bool,
        /// Days of past executions to replay; `None` leaves it out (the
        /// gateway's default is 1).
        days: Option<u8>,
    },
    /// `spl+{}` profit and loss.
    Pnl,
    /// `ssd+ACCT+{params}` account summary.
    AccountSummary {
        /// The account id.
        account: String,
        /// The JSON parameter object (`keys`, `fields`), sent as is; empty
        /// means `{}` (everything).
        params: String,
    },
    /// `sld+ACCT+{params}` account ledger.
    Ledger {
        /// The account id.
        account: String,
        /// The JSON parameter object (`keys`, `fields`), sent as is; empty
        /// means `{}` (everything).
        params: String,
    },
}

impl Subscription {
    /// Market data for `conid` with every field a quote is decoded from
    /// ([`cpapi::smd::field::QUOTE`]).
    pub fn quote(conid: Conid) -> Subscription {
        Subscription::MarketData {
            conid,
            fields: cpapi::smd::field::QUOTE
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
        }
    }

    /// The subscribe message.
    pub fn subscribe_msg(&self) -> String {
        match self {
            Subscription::MarketData { conid, fields } => {
                let f = serde_json::json!({ "fields": fields });
                format!("smd+{conid}+{f}")
            }
            Subscription::History { conid, params } => format!("smh+{conid}+{}", or_empty(params)),
            Subscription::BookTrader { account, conid } => format!("sbd+{account}+{conid}"),
            Subscription::Orders => "sor+{}".into(),
            Subscription::Trades {
                realtime_only,
                days,
            } => {
                let mut p = serde_json::json!({ "realtimeUpdatesOnly": realtime_only });
                if let Some(d) = days {
                    p["days"] = serde_json::json!(d);
                }
                format!("str+{p}")
            }
            Subscription::Pnl => "spl+{}".into(),
            Subscription::AccountSummary { account, params } => {
                format!("ssd+{account}+{}", or_empty(params))
            }
            Subscription::Ledger { account, params } => {
                format!("sld+{account}+{}", or_empty(params))
            }
        }
    }

    /// The unsubscribe message (topic `u..`).
    pub fn unsubscribe_msg(&self) -> String {
        match self {
            Subscription::MarketData { conid, .. } => format!("umd+{conid}+{{}}"),
            // The spec cancels history by the serverId of its first answer;
            // the websocket task uses that once known (`State`); before the
            // stream has answered, the conid is the best target we have.
            Subscription::History { conid, .. } => format!("umh+{conid}"),
            Subscription::BookTrader { account, .. } => format!("ubd+{account}"),
            Subscription::Orders => "uor+{}".into(),
            Subscription::Trades { .. } => "utr".into(),
            Subscription::Pnl => "upl{}".into(),
            Subscription::AccountSummary { account, .. } => format!("usd+{account}+{{}}"),
            Subscription::Ledger { account, .. } => format!("uld+{account}+{{}}"),
        }
    }
}

fn or_empty(p: &str) -> &str {
    if p.trim().is_empty() {
        "{}"
    } else {
        p
    }
}

/// Everything the websocket task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WsMessage {
    /// Decoded data the bus knows: Quote, Execution, Session, Pnl.
    Event(Event),
    /// A `sor` order update (the execution module maps it to its orders).
    OrderUpdate(LiveOrder),
    /// `blt`.
    Bulletin {
        /// The bulletin's unique id (empty when missing).
        id: String,
        /// Its text (empty when missing).
        message: String,
    },
    /// `ntf`; `raw` keeps prompt options for `/iserver/notification`.
    Notification {
        /// The notification's id (empty when missing).
        id: String,
        /// Its headline (empty when missing).
        title: String,
        /// Its body text (empty when missing).
        text: String,
        /// The whole `args` object.
        raw: serde_json::Value,
    },
    /// `sbd`: a BookTrader price ladder.
    PriceLadder(cpapi::messages::PriceLadder),
    /// `act`, `ssd`, `sld`, `smh` and anything else: topic and body.
    Other {
        /// The frame's `topic`, in full (`smh+265598`, `act`); empty when
        /// the frame had none.
        topic: String,
        /// The whole frame.
        body: serde_json::Value,
    },
    /// The socket is open (after every reconnect too).
    Connected {
        /// Reconnect attempts since the task started (0 on the first
        /// connection; failed attempts count too).
        reconnects: u32,
    },
    /// The socket was lost; a reconnect follows.
    Disconnected {
        /// Why: the connect error, a close, a read error or silence beyond
        /// [`WsConfig::dead_after`].
        reason: String,
    },
    /// The task gave up reconnecting (see [`ReconnectLimits`]): the last
    /// message before the channel closes.
    SessionEnded {
        /// Why: what the gateway last said, and for how long.
        reason: String,
    },
    /// A message that could not be decoded (kept, never a panic).
    Malformed {
        /// The decode error, prefixed with the topic when known.
        error: String,
    },
}

/// Settings of the websocket task.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// No message at all within this window means the connection is dead.
    pub dead_after: Duration,
    /// How often to send `tic` (the spec asks for at least once a minute).
    pub tic_every: Duration,
    /// Wait before the first reconnect attempt, and again after every
    /// successful connection; each actual wait is drawn from half to all of
    /// the current value.
    pub backoff_initial: Duration,
    /// Ceiling of the wait, which doubles after each failed attempt.
    pub backoff_max: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            dead_after: Duration::from_secs(35),
            tic_every: Duration::from_secs(50),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// When the websocket task stops reconnecting and reports the session as
/// ended. `None` in a field lifts that limit; with both `None` it waits
/// for a login forever (logging each failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectLimits {
    /// Give up after this many attempts in a row on which the gateway said
    /// the session is gone (logged out, competing, 401/403). Default 5
    /// (about 15 s with the default backoff): a logged-out session does
    /// not come back without a login in the browser.
    pub session_gone_attempts: Option<u32>,
    /// Give up when the socket has been down this long, whatever the
    /// reason (default 15 minutes: longer than a gateway restart).
    pub down_for: Option<Duration>,
}

impl Default for ReconnectLimits {
    fn default() -> Self {
        ReconnectLimits {
            session_gone_attempts: Some(5),
            down_for: Some(Duration::from_secs(15 * 60)),
        }
    }
}

impl ReconnectLimits {
    /// No limit: keep reconnecting until a login brings the session back.
    pub fn wait_forever() -> Self {
        ReconnectLimits {
            session_gone_attempts: None,
            down_for: None,
        }
    }
}

enum Command {
    Subscribe(Subscription),
    Unsubscribe(Subscription),
    Shutdown,
}

/// Control of the background task. Dropping it stops the task.
#[derive(Debug)]
pub struct WsHandle {
    cmd: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

impl WsHandle {
    /// Subscribe now and after every reconnect.
    pub fn subscribe(&self, sub: Subscription) {
        let _ = self.cmd.send(Command::Subscribe(sub));
    }

    /// Send the topic's unsubscribe message now and stop re-subscribing
    /// it after reconnects; `sub` must equal the subscribed value.
    pub fn unsubscribe(&self, sub: Subscription) {
        let _ = self.cmd.send(Command::Unsubscribe(sub));
    }

    /// Close the socket and wait for the task to end.
    pub async fn shutdown(mut self) {
        let _ = self.cmd.send(Command::Shutdown);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for WsHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Start the websocket task. Messages arrive on the returned receiver.
pub fn spawn(
    client: IbkrClient,
    config: WsConfig,
    buffer: usize,
) -> (WsHandle, mpsc::Receiver<WsMessage>) {
    let (tx, rx) = mpsc::channel(buffer.max(16));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(client, config, tx, cmd_rx));
    (
        WsHandle {
            cmd: cmd_tx,
            task: Some(task),
        },
        rx,
    )
}

#[derive(Default)]
struct State {
    subs: BTreeSet<Subscription>,
    smd: SmdDecoder,
    /// Executions published (bounded: see [`SeenIds`]).
    seen_executions: SeenIds,
    /// `serverId` of each conid's historical stream (from its first
    /// `smh` answer): the spec cancels a stream with `umh+{serverId}`.
    history_servers: BTreeMap<Conid, String>,
}

impl State {
    /// The message that ends `sub`: for history, by the stream's serverId
    /// when it has answered (the spec's form), else by conid.
    fn unsubscribe_msg(&self, sub: &Subscription) -> String {
        match sub {
            Subscription::History { conid, .. } => match self.history_servers.get(conid) {
                Some(id) => format!("umh+{id}"),
                None => sub.unsubscribe_msg(),
            },
            other => other.unsubscribe_msg(),
        }
    }
}

async fn run(
    client: IbkrClient,
    config: WsConfig,
    tx: mpsc::Sender<WsMessage>,
    mut cmd: mpsc::UnboundedReceiver<Command>,
) {
    let mut st = State::default();
    let mut backoff = config.backoff_initial;
    let mut reconnects = 0u32;
    let limits = client.config().reconnect.clone();
    let tel = client.config().telemetry.clone();
    let _down = AliveGuard(&tel);
    // Attempts in a row on which the gateway said the session is gone, and
    // since when the socket is down.
    let mut gone_in_a_row = 0u32;
    let mut down_since: Option<Instant> = None;
    loop {
        let attempt = loop {
            // A connect waits on the pacer and the network: commands are
            // served meanwhile, and a shutdown does not wait behind it.
            tokio::select! {
                r = connect(&client) => break r,
                c = cmd.recv() => match c {
                    None | Some(Command::Shutdown) => return,
                    Some(Command::Subscribe(s)) => { st.subs.insert(s); }
                    Some(Command::Unsubscribe(s)) => { st.subs.remove(&s); }
                },
            }
        };
        let (reason, gone) = match attempt {
            Ok(socket) => {
                backoff = config.backoff_initial;
                gone_in_a_row = 0;
                down_since = None;
                tel.set_ws_alive(true);
                if tx.send(WsMessage::Connected { reconnects }).await.is_err() {
                    return;
                }
                let ended = session(socket, &config, &tx, &mut cmd, &mut st, &tel).await;
                tel.set_ws_alive(false);
                match ended {
                    Ended::Shutdown => return,
                    Ended::Lost(r) => (r, false),
                }
            }
            Err(Failed {
                error,
                session_gone,
            }) => (error.to_string(), session_gone),
        };
        let since = *down_since.get_or_insert_with(Instant::now);
        gone_in_a_row = if gone { gone_in_a_row + 1 } else { 0 };
        let give_up = match (limits.session_gone_attempts, limits.down_for) {
            (Some(n), _) if gone_in_a_row >= n => Some(format!(
                "{reason} ({gone_in_a_row} attempts in a row found the session gone)"
            )),
            (_, Some(d)) if since.elapsed() >= d => Some(format!(
                "{reason} (the websocket has been down for {}s)",
                since.elapsed().as_secs()
            )),
            _ => None,
        };
        if let Some(reason) = give_up {
            tracing::error!(%reason, "gateway session ended: websocket gave up reconnecting; order entry halted; log in again");
            client.control().end_session(&reason);
            let _ = tx.send(WsMessage::SessionEnded { reason }).await;
            return;
        }
        if gone {
            tracing::error!(reason = %reason, retry_in_ms = backoff.as_millis() as u64, attempts = gone_in_a_row, "gateway session gone (logged out or taken); reconnecting");
        } else {
            tracing::warn!(reason = %reason, retry_in_ms = backoff.as_millis() as u64, "websocket lost; reconnecting");
        }
        if tx
            .send(WsMessage::Disconnected {
                reason: reason.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
        // Full jitter in [backoff/2, backoff], so many clients do not
        // reconnect in step after a gateway restart.
        let jitter = rand::rng().random_range(0.5..=1.0);
        let wait = backoff.mul_f64(jitter);
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                c = cmd.recv() => match c {
                    None | Some(Command::Shutdown) => return,
                    Some(Command::Subscribe(s)) => { st.subs.insert(s); }
                    Some(Command::Unsubscribe(s)) => { st.subs.remove(&s); }
                },
            }
        }
        backoff = (backoff * 2).min(config.backoff_max);
        reconnects += 1;
        tel.ws_reconnect();
    }
}

/// Marks the websocket down in the telemetry however the task ends
/// (shutdown, give-up, abort).
struct AliveGuard<'a>(&'a crate::telemetry::Telemetry);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.set_ws_alive(false);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A failed connection attempt, and whether the gateway said the session
/// itself is gone (not a network or server fault).
struct Failed {
    error: IbkrError,
    session_gone: bool,
}

impl From<IbkrError> for Failed {
    fn from(error: IbkrError) -> Self {
        let session_gone = matches!(error, IbkrError::Unauthorized { .. });
        Failed {
            error,
            session_gone,
        }
    }
}

/// `/tickle` for the session value, then open the socket with the cookie.
async fn connect(client: &IbkrClient) -> Result<Socket, Failed> {
    let mut tickle = client.tickle().await?;
    let mut auth = tickle.auth_status();
    if auth.connected && !auth.authenticated && !auth.competing {
        // The daily reset or the 24-hour limit ended the brokerage session
        // while the gateway stayed logged in: re-open it here, or every
        // attempt would be refused until the session keeper's next round.
        tracing::warn!(
            "brokerage session not authenticated; re-opening it with /iserver/auth/ssodh/init \
             before reconnecting the websocket"
        );
        match client.ssodh_init(false).await {
            Ok(a) if a.authenticated => {
                tracing::info!("brokerage session re-established");
                tickle = client.tickle().await?;
                auth = tickle.auth_status();
            }
            Ok(_) => tracing::warn!("ssodh/init answered; the session is not authenticated yet"),
            Err(e) => tracing::warn!(error = %e, "ssodh/init failed"),
        }
    }
    client
        .config()
        .telemetry
        .set_authenticated(auth.authenticated);
    // The gateway says so itself: logged out (not connected) or another
    // login holds the session. The socket is still tried (a login may
    // have happened since), but the attempt counts as "session gone".
    let gone_because = if auth.competing {
        Some("a competing login holds the brokerage session")
    } else if !auth.connected {
        Some("the gateway reports no session (logged out)")
    } else {
        None
    };
    let token: SessionToken = tickle.session;
    let url = client.ws_url()?;
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| IbkrError::Websocket(format!("bad websocket URL: {e}")))?;
    let cookie = HeaderValue::from_str(&format!("api={}", token.expose()))
        .map_err(|_| IbkrError::Websocket("session token is not a valid cookie value".into()))?;
    req.headers_mut().insert("Cookie", cookie);
    // An unverified certificate only ever for the loopback gateway the
    // client was built for (the client refuses the switch otherwise);
    // tokio-tungstenite does not follow redirects, so the upgrade cannot
    // be sent elsewhere with it.
    let connector =
        if url.scheme() == "wss" && client.config().accept_invalid_certs && is_loopback(&url) {
            Some(insecure_loopback_connector()?)
        } else {
            None
        };
    // The upgrade request counts against the gateway's global limit like
    // any other request.
    let _permit = client.pacer().acquire("GET", "/ws").await?;
    match tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector).await {
        Ok((socket, _)) => Ok(socket),
        Err(e) => {
            use tokio_tungstenite::tungstenite::Error as WsError;
            let refused =
                matches!(&e, WsError::Http(r) if matches!(r.status().as_u16(), 401 | 403));
            if matches!(&e, WsError::Http(r) if r.status().as_u16() == 429) {
                client.config().telemetry.http_429();
            }
            let error = match gone_because {
                Some(why) => IbkrError::Websocket(format!("connect failed: {e}; {why}")),
                None => IbkrError::Websocket(format!("connect failed: {e}")),
            };
            Err(Failed {
                error,
                session_gone: refused || gone_because.is_some(),
            })
        }
    }
}

enum Ended {
    Shutdown,
    Lost(String),
}

async fn session(
    socket: Socket,
    config: &WsConfig,
    tx: &mpsc::Sender<WsMessage>,
    cmd: &mut mpsc::UnboundedReceiver<Command>,
    st: &mut State,
    tel: &crate::telemetry::Telemetry,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    for s in &st.subs {
        if let Err(e) = sink.send(Message::text(s.subscribe_msg())).await {
            return Ended::Lost(format!("resubscribe failed: {e}"));
        }
    }
    let mut last_seen = Instant::now();
    let mut tic = tokio::time::interval_at(Instant::now() + config.tic_every, config.tic_every);
    let check_every = (config.dead_after / 4).max(Duration::from_millis(10));
    let mut check = tokio::time::interval(check_every);
    loop {
        tokio::select! {
            m = stream.next() => {
                let m = match m {
                    None => return Ended::Lost("socket closed by the gateway".into()),
                    Some(Err(e)) => return Ended::Lost(format!("socket error: {e}")),
                    Some(Ok(m)) => m,
                };
                last_seen = Instant::now();
                tel.ws_frame_seen();
                let text: Cow<'_, str> = match &m {
                    Message::Text(t) => Cow::Borrowed(t.as_str()),
                    Message::Binary(b) => String::from_utf8_lossy(b),
                    Message::Close(_) => return Ended::Lost("close frame from the gateway".into()),
                    _ => continue,
                };
                tel.ws_message(&text);
                for out in handle_text(&text, st) {
                    if matches!(out, WsMessage::Malformed { .. }) {
                        tel.ws_decode_error();
                    }
                    if tx.send(out).await.is_err() {
                        return Ended::Shutdown;
                    }
                }
            }
            c = cmd.recv() => match c {
                None | Some(Command::Shutdown) => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ended::Shutdown;
                }
                Some(Command::Subscribe(s)) => {
                    let msg = s.subscribe_msg();
                    st.subs.insert(s);
                    if let Err(e) = sink.send(Message::text(msg)).await {
                        return Ended::Lost(format!("send failed: {e}"));
                    }
                }
                Some(Command::Unsubscribe(s)) => {
                    let msg = st.unsubscribe_msg(&s);
                    if let Subscription::History { conid, .. } = &s {
                        st.history_servers.remove(conid);
                    }
                    st.subs.remove(&s);
                    if let Subscription::MarketData { conid, .. } = &s {
                        st.smd.remove(*conid);
                    }
                    if let Err(e) = sink.send(Message::text(msg)).await {
                        return Ended::Lost(format!("send failed: {e}"));
                    }
                }
            },
            _ = tic.tick() => {
                if let Err(e) = sink.send(Message::text("tic")).await {
                    return Ended::Lost(format!("tic failed: {e}"));
                }
            }
            _ = check.tick() => {
                if last_seen.elapsed() > config.dead_after {
                    return Ended::Lost(format!(
                        "no message or heartbeat for {:?}: connection considered dead",
                        config.dead_after
                    ));
                }
            }
        }
    }
}

/// The websocket task's frame decoder on its own: the exact code that
/// turns a received frame into [`WsMessage`]s, with the state it keeps
/// (market data fields per conid, execution ids seen, history stream ids).
/// Public so tests can drive it with any input (fuzzing) without a socket.
#[derive(Default)]
pub struct FrameDecoder {
    st: State,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder").finish_non_exhaustive()
    }
}

impl FrameDecoder {
    /// A decoder with no state yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A text frame: zero or more messages, never a panic (what cannot be
    /// decoded is a [`WsMessage::Malformed`]).
    pub fn text(&mut self, frame: &str) -> Vec<WsMessage> {
        handle_text(frame, &mut self.st)
    }

    /// A binary frame (the gateway sends JSON text in binary frames too):
    /// read as UTF-8 with invalid bytes replaced, as the task does.
    pub fn binary(&mut self, frame: &[u8]) -> Vec<WsMessage> {
        handle_text(&String::from_utf8_lossy(frame), &mut self.st)
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
}

/// Decode one frame into zero or more messages.
fn handle_text(text: &str, st: &mut State) -> Vec<WsMessage> {
    // Market data first: an smd frame is parsed once, straight into its
    // quote state.
    if let Some(r) = st.smd.decode_smd(text) {
        return match r {
            Ok(s) => vec![WsMessage::Event(Event::Quote(s.quote.clone()))],
            Err(e) => vec![WsMessage::Malformed {
                error: e.to_string(),
            }],
        };
    }
    let head: Head<'_> = match serde_json::from_str(text) {
        Ok(h) => h,
        Err(e) => {
            return vec![WsMessage::Malformed {
                error: format!("not JSON ({e}): {}", crate::error::snippet(text.as_bytes())),
            }]
        }
    };
    let topic = head.topic.as_deref().unwrap_or("");
    if topic.starts_with("smd") {
        // Only an smd frame the pair reader could not take gets here.
        return match st.smd.decode(text) {
            Ok(s) => vec![WsMessage::Event(Event::Quote(s.quote.clone()))],
            Err(e) => vec![WsMessage::Malformed {
                error: e.to_string(),
            }],
        };
    }
    let body: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![WsMessage::Malformed {
                error: e.to_string(),
            }]
        }
    };
    if topic.starts_with("sbd+") {
        return match cpapi::messages::parse_price_ladder(&body) {
            Ok(l) => vec![WsMessage::PriceLadder(l)],
            Err(e) => vec![WsMessage::Malformed {
                error: format!("sbd: {e}"),
            }],
        };
    }
    let args = body.get("args").cloned().unwrap_or(serde_json::Value::Null);
    match topic {
        "system" => Vec::new(),
        "sts" => {
            let authenticated = args
                .get("authenticated")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let competing = args
                .get("competing")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let connected = args
                .get("connected")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true);
            let message = args
                .get("message")
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if competing {
                tracing::error!("competing brokerage session reported over the websocket");
            }
            vec![WsMessage::Event(Event::Session(SessionStatus {
                authenticated,
                connected,
                competing,
                message,
            }))]
        }
        "sor" => items(&args)
            .map(|v| match serde_json::from_value::<LiveOrder>(v.clone()) {
                Ok(o) => WsMessage::OrderUpdate(o),
                Err(e) => WsMessage::Malformed {
                    error: format!("sor: {e}"),
                },
            })
            .collect(),
        "str" => {
            let mut out = Vec::new();
            for v in items(&args) {
                match Trade::execution_from_value(v) {
                    Ok(e) => {
                        if st.seen_executions.insert(&e.execution_id) {
                            out.push(WsMessage::Event(Event::Execution(e)));
                        }
                    }
                    Err(e) => out.push(WsMessage::Malformed {
                        error: format!("str: {e}"),
                    }),
                }
            }
            out
        }
        "spl" => {
            let mut out = Vec::new();
            if let serde_json::Value::Object(m) = &args {
                for (key, v) in m {
                    let account = key.split('.').next().unwrap_or(key).to_owned();
                    let num = |k: &str| {
                        v.get(k)
                            .and_then(|x| cpapi::lenient::opt_decimal(x).ok().flatten())
                    };
                    out.push(WsMessage::Event(Event::Pnl(PnlUpdate {
                        account,
                        daily_pnl: num("dpl").unwrap_or_default(),
                        unrealized_pnl: num("upl").unwrap_or_default(),
                        net_liquidation: num("nl"),
                    })));
                }
            }
            out
        }
        "blt" => vec![WsMessage::Bulletin {
            id: str_field(&args, "id"),
            message: str_field(&args, "message"),
        }],
        "ntf" => vec![WsMessage::Notification {
            id: str_field(&args, "id"),
            title: str_field(&args, "title"),
            text: str_field(&args, "text"),
            raw: args,
        }],
        _ => {
            // Remember each historical stream's serverId for `umh`.
            if let Some(conid) = topic
                .strip_prefix("smh+")
                .and_then(|c| c.parse::<i64>().ok())
            {
                if let Some(id) = body.get("serverId").and_then(serde_json::Value::as_str) {
                    st.history_servers.insert(Conid(conid), id.to_owned());
                }
            }
            vec![WsMessage::Other {
                topic: topic.to_owned(),
                body,
            }]
        }
    }
}

fn items(args: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    let v: Vec<&serde_json::Value> = match args {
        serde_json::Value::Array(a) => a.iter().collect(),
        o @ serde_json::Value::Object(_) => vec![o],
        _ => Vec::new(),
    };
    v.into_iter()
}

fn str_field(v: &serde_json::Value, k: &str) -> String {
    match v.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A TLS connector that accepts any certificate: only ever built for a
/// loopback gateway with the explicit switch on (the CP Gateway's
/// self-signed certificate).
fn insecure_loopback_connector() -> Result<Connector, IbkrError> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| IbkrError::Config(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_strings() {
        let s = Subscription::MarketData {
            conid: Conid(265598),
            fields: vec!["31".into(), "84".into()],
        };
        assert_eq!(s.subscribe_msg(), r#"smd+265598+{"fields":["31","84"]}"#);
        assert_eq!(s.unsubscribe_msg(), "umd+265598+{}");
        let t = Subscription::Trades {
            realtime_only: true,
            days: Some(2),
        };
        assert_eq!(
            t.subscribe_msg(),
            r#"str+{"days":2,"realtimeUpdatesOnly":true}"#
        );
        assert_eq!(Subscription::Orders.subscribe_msg(), "sor+{}");
        assert_eq!(Subscription::Pnl.unsubscribe_msg(), "upl{}");
    }

    pub(super) fn state() -> State {
        State::default()
    }

    #[test]
    fn unsolicited_topics() {
        let mut st = state();
        assert!(handle_text(r#"{"topic":"system","success":"user1"}"#, &mut st).is_empty());
        assert!(handle_text(r#"{"topic":"system","hb":1702334859712}"#, &mut st).is_empty());
        let m = handle_text(r#"{"topic":"sts","args":{"authenticated":false}}"#, &mut st);
        assert!(matches!(&m[0], WsMessage::Event(Event::Session(s)) if !s.authenticated));
        let m = handle_text(
            r#"{"topic":"blt","args":{"id":"7","message":"halt"}}"#,
            &mut st,
        );
        assert_eq!(
            m[0],
            WsMessage::Bulletin {
                id: "7".into(),
                message: "halt".into()
            }
        );
        let m = handle_text(
            r#"{"topic":"ntf","args":{"id":"1","text":"t","title":"T","url":"u"}}"#,
            &mut st,
        );
        assert!(matches!(&m[0], WsMessage::Notification { title, .. } if title == "T"));
        let m = handle_text(r#"{"topic":"act","args":{"accounts":["U1"]}}"#, &mut st);
        assert!(matches!(&m[0], WsMessage::Other { topic, .. } if topic == "act"));
        let m = handle_text("garbage", &mut st);
        assert!(matches!(&m[0], WsMessage::Malformed { .. }));
        let m = handle_text(
            r#"{"topic":"sbd+U1+265598","data":[{"row":0,"focus":1,"price":"100 @ 192.26","ask":"300"}]}"#,
            &mut st,
        );
        assert!(
            matches!(&m[0], WsMessage::PriceLadder(l) if l.conid == Conid(265598) && l.rows.len() == 1),
            "{m:?}"
        );
        let m = handle_text(
            r#"{"topic":"sbd+U1+265598","data":[{"row":0,"focus":0,"price":"abc"}]}"#,
            &mut st,
        );
        assert!(matches!(&m[0], WsMessage::Malformed { error } if error.starts_with("sbd")));
    }

    #[test]
    fn executions_once_and_pnl() {
        let mut st = state();
        let t = r#"{"topic":"str","args":[{"execution_id":"x1","conid":1,"account":"U1","side":"B","size":"2","price":"10.5","trade_time_r":1702317649000}]}"#;
        assert_eq!(handle_text(t, &mut st).len(), 1);
        assert!(
            handle_text(t, &mut st).is_empty(),
            "duplicate execution dropped"
        );
        let m = handle_text(
            r#"{"topic":"spl","args":{"U1.Core":{"rowType":1,"dpl":15.7,"nl":10000.0,"upl":607.0,"el":1,"mv":0}}}"#,
            &mut st,
        );
        match &m[0] {
            WsMessage::Event(Event::Pnl(p)) => {
                assert_eq!(p.account, "U1");
                assert_eq!(p.daily_pnl.to_string(), "15.7");
            }
            other => panic!("{other:?}"),
        }
        let m = handle_text(r#"{"topic":"smd+5","conid":5,"31":"1.5"}"#, &mut st);
        assert!(matches!(&m[0], WsMessage::Event(Event::Quote(q)) if q.conid == Conid(5)));
    }
}

#[cfg(test)]
mod history_cancel_tests {
    use super::*;

    #[test]
    fn history_streams_are_cancelled_by_server_id() {
        let mut st = State {
            subs: BTreeSet::new(),
            smd: SmdDecoder::new(),
            seen_executions: SeenIds::default(),
            history_servers: BTreeMap::new(),
        };
        let sub = Subscription::History {
            conid: Conid(265598),
            params: String::new(),
        };
        // Before the stream answers: by conid.
        assert_eq!(st.unsubscribe_msg(&sub), "umh+265598");
        let msgs = handle_text(
            r#"{"serverId":"20477","symbol":"AAPL","data":[],"topic":"smh+265598"}"#,
            &mut st,
        );
        assert!(matches!(&msgs[..], [WsMessage::Other { topic, .. }] if topic == "smh+265598"));
        assert_eq!(st.unsubscribe_msg(&sub), "umh+20477");
    }
}

#[cfg(test)]
mod trade_source_tests {
    use super::tests::state;
    use super::*;

    /// One trade, three sources, one execution: the same record as a
    /// websocket `str` message, as a `/iserver/account/trades` row (decoded
    /// as the REST client decodes it) and as a row of an executions import
    /// file (a saved trades response, and a `str` capture line) gives the
    /// identical `Execution`. The record uses the loose forms each source
    /// may send (size as a string and signed, commission with a thousands
    /// separator, conid only in `conidEx`, account only in `accountCode`).
    #[test]
    fn one_trade_from_str_rest_and_import_is_one_execution() {
        let record = serde_json::json!({
            "execution_id": "0000e0d5.6576fd38.01.01", "symbol": "AAPL", "side": "S",
            "order_description": "Sold 5 @ 192.26 on ISLAND", "trade_time": "20231211-18:00:49",
            "trade_time_r": 1702317649000i64, "size": "-5", "price": "192.26",
            "order_ref": " Order123 ", "exchange": "ISLAND", "commission": "1,001.01",
            "net_amount": 961.3, "accountCode": "U1234567", "sec_type": "STK",
            "conidEx": "265598@SMART", "open_close": "???", "is_event_trading": "0"
        });
        let str_line = serde_json::json!({"topic": "str", "args": [record]}).to_string();
        let rest_body = serde_json::json!([record]).to_string();

        let from_ws = match handle_text(&str_line, &mut state()).as_slice() {
            [WsMessage::Event(Event::Execution(e))] => e.clone(),
            other => panic!("{other:?}"),
        };
        let rows: Vec<Trade> =
            crate::rest::decode("/iserver/account/trades", rest_body.as_bytes()).unwrap();
        let from_rest = rows[0].to_execution().unwrap();
        let file: Vec<serde_json::Value> = serde_json::from_str(&rest_body).unwrap();
        let from_file = store::import::records(&file).remove(0).unwrap().0;
        let store::import::Message::Trades(args) = store::import::parse_message(&str_line).unwrap()
        else {
            panic!("a str line holds trades");
        };
        let from_capture = store::import::execution_from_record(&args[0]).unwrap();

        assert_eq!(from_ws, from_rest);
        assert_eq!(from_ws, from_file);
        assert_eq!(from_ws, from_capture);
        assert_eq!(from_ws.conid, Conid(265598));
        assert_eq!(from_ws.account, "U1234567");
        assert_eq!(from_ws.side, engine::model::ExecSide::Sold);
        assert_eq!(from_ws.size, rust_decimal::Decimal::from(5));
        assert_eq!(from_ws.commission.to_string(), "1001.01");
        assert_eq!(from_ws.order_ref.as_deref(), Some("Order123"));
        assert_eq!(from_ws.time.timestamp_millis(), 1702317649000);

        // And one refusal: a record without any account fails every source
        // with the same message.
        let mut bad = record.clone();
        bad.as_object_mut().unwrap().remove("accountCode");
        let ws_err = match handle_text(
            &serde_json::json!({"topic": "str", "args": [bad]}).to_string(),
            &mut state(),
        )
        .as_slice()
        {
            [WsMessage::Malformed { error }] => error.clone(),
            other => panic!("{other:?}"),
        };
        let rows: Vec<Trade> =
            crate::rest::decode("x", serde_json::json!([bad]).to_string().as_bytes()).unwrap();
        let rest_err = rows[0].to_execution().unwrap_err().to_string();
        let file_err = store::import::execution_from_record(&bad)
            .unwrap_err()
            .to_string();
        assert_eq!(ws_err, format!("str: {rest_err}"));
        assert_eq!(rest_err, file_err);
        assert!(rest_err.contains("account"), "{rest_err}");
    }
}
