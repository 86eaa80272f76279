//! The CP Gateway simulator: the Client Portal Web API over real HTTP and a
//! real websocket on 127.0.0.1, backed by the simulated exchange and replayed
//! bars.
//!
//! A client written against the real gateway (`https://localhost:5000/v1/api`)
//! is pointed at [`GatewayHandle::base_url`] instead and sees the same JSON
//! shapes, the same session rules (idle timeout, competing sessions,
//! `ssodh/init`), the same quirks (snapshot pre-flight, the 404 page of the
//! first `/hmds/history` call, order precaution prompts answered through
//! `/iserver/reply/{id}`) and the same pacing limits.
//!
//! Time: the simulator runs a *replay clock* that starts at the first bar of
//! the data (or [`GatewayConfig::start`]) and advances at real time times
//! [`GatewayConfig::speed`]. A bar is "in progress" from its time for one bar
//! length (the most common gap between two bars of its contract); quotes move
//! through its range while it is in progress, and it is handed to the
//! exchange (which fills orders against it) when it completes. Times in
//! market data, orders and executions are replay-clock times; session times
//! (`ssoExpires`, `AUTH_TIME`, heartbeats) are wall-clock times.
//!
//! Admin API: with [`GatewayConfig::admin`], the fault hooks of
//! [`GatewayHandle`] are also served over HTTP under `/sim/admin/...`
//! (`admin.rs`; `docs/sim-gateway-admin.md`), for tests of a bot that runs
//! in another process.
//!
//! Layout: [`config`] (settings and instruments), `state` (the shared state
//! and the replay pump), `session`, `accounts` (accounts and contracts),
//! [`events`] (ForecastEx markets, their endpoints, prices and netting),
//! `market` (bars, quotes, history), `orders` (the order desk on the
//! exchange), `prompts` (`/iserver/reply` precautions), `notifications`
//! (`ntf` server prompts, `POST /iserver/notification`, `blt` bulletins),
//! `reset` (the daily reset and the session's 24 hours on the replay
//! clock), `pacing`, `ws` (the websocket topics), `ladder`
//! (the `sbd` price ladder), `wire` (JSON helpers).

mod accounts;
mod admin;
pub mod config;
mod desk;
pub mod events;
mod faults;
mod ladder;
mod limits;
mod market;
mod notifications;
mod order_handlers;
mod order_json;
mod pacing;
mod portfolio;
mod prompts;
mod reset;
mod server;
mod session;
mod state;
mod tls;
mod wire;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use engine::model::Timestamp;

pub use config::{GatewayConfig, Instrument, PacingConfig, PromptRule, ServerLimits};
pub use events::{EventMarket, EventStrike};
pub use faults::{ReceivedRequest, ReceivedWsMessage};
pub use notifications::NTF_PROMPT_ID;
pub use reset::ResetRegion;

use faults::{Answer, Scope};
use state::Shared;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listening socket could not be opened (port in use, no permission),
    /// or the runtime of [`serve_forever`] could not be built.
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0: any free one).
        port: u16,
        /// The I/O error that stopped it.
        #[source]
        source: std::io::Error,
    },
    /// The bar data could not be read (the path and cause are in the error).
    #[error("cannot load bars: {0}")]
    Data(#[from] backtest::data::DataError),
    /// A setting out of range ([`GatewayConfig`]), data holding no bars, an
    /// inconsistent event market, or a TLS certificate that could not be made.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Entry point: [`Gateway::start`].
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Load the bars, bind 127.0.0.1 and serve `/v1/api/...` until the handle
    /// is shut down or dropped. Must be called inside a tokio runtime.
    pub async fn start(cfg: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
        cfg.validate().map_err(GatewayError::Config)?;
        let shared = Arc::new(Shared::new(cfg)?);
        let port = shared.cfg.port;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| GatewayError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Bind { port, source })?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let (tls, cert_der) = if shared.cfg.tls {
            let t = tls::self_signed().map_err(GatewayError::Config)?;
            (Some(t.acceptor), Some(t.cert_der))
        } else {
            (None, None)
        };
        let (server_stop, server_rx) = watch::channel(false);
        let server = spawn_server(listener, shared.clone(), tls.clone(), server_rx);
        let ticker = tokio::spawn(state::run_ticker(shared.clone(), stop_rx.clone()));
        let scheme = if cert_der.is_some() { "https" } else { "http" };
        tracing::info!("CP Gateway simulator listening on {scheme}://{addr}/v1/api");
        Ok(GatewayHandle {
            addr,
            shared,
            stop: stop_tx,
            server_stop,
            server,
            ticker,
            tls,
            cert_der,
        })
    }
}

/// Serve `listener` (plain or TLS) until `stop` turns true, within the
/// configured connection limits (see `server.rs`).
fn spawn_server(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let limits = shared.cfg.server.clone();
    let ctl = shared.conns.clone();
    let app = router(shared);
    tokio::spawn(server::serve(listener, tls, app, limits, ctl, stop))
}

fn router(shared: Arc<Shared>) -> Router {
    let shared_cfg_body_timeout = shared.cfg.server.body_timeout;
    let api = Router::new()
        .merge(session::routes())
        .merge(accounts::routes())
        .merge(events::routes())
        .merge(market::routes())
        .merge(order_handlers::routes())
        .merge(notifications::routes())
        .merge(portfolio::routes())
        .merge(ws::routes())
        // Paths the simulator does not serve pass the layers too: they count
        // against the global limit, need the session, and take faults.
        .fallback(wire::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            session::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            pacing::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            failed_gate,
        ));
    let mut inner = Router::new().nest("/v1/api", api);
    if shared.cfg.admin {
        inner = inner.nest("/sim/admin", admin::routes(shared.clone()));
    }
    let inner = inner.fallback(wire::not_found).with_state(shared);
    // The real gateway serves `/path/` as `/path`, and clients rely on it
    // (ibind asks for `iserver/account/trades/`): drop trailing slashes
    // before routing.
    let body_timeout = shared_cfg_body_timeout;
    Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
        let inner = inner.clone();
        async move {
            let req = match whole_body(req, body_timeout).await {
                Ok(r) => r,
                Err(refused) => return Ok(refused),
            };
            inner.oneshot(without_trailing_slash(req)).await
        }
    }))
}

/// `req` with its body read whole within `limit` (at most
/// [`server::MAX_BODY`] bytes), or the answer that refuses it: 408 for a
/// body that does not arrive in time (a client that opened a request and
/// stalls), 413 for one too large. Both close the connection.
async fn whole_body(
    req: axum::extract::Request,
    limit: Duration,
) -> Result<axum::extract::Request, axum::response::Response> {
    use axum::http::{header, HeaderValue, StatusCode};
    let (parts, body) = req.into_parts();
    let closing = |status: StatusCode, msg: String| {
        let mut r = wire::error(status, msg);
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    match tokio::time::timeout(limit, axum::body::to_bytes(body, server::MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        )),
        Ok(Err(e)) => Err(closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body could not be read (at most {} bytes): {e}",
                server::MAX_BODY
            ),
        )),
        Err(_) => Err(closing(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )),
    }
}

/// A simulator that declared itself failed ([`state::Shared::fail`])
/// answers every request 503 with the reason, `/tickle` included: a wedged
/// exchange behind a healthy-looking session is what issue 12 found.
async fn failed_gate(
    axum::extract::State(sh): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match sh.failure() {
        Some(why) => wire::error(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("simulator failed: {why}"),
        ),
        None => next.run(req).await,
    }
}

fn without_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let uri = req.uri();
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match uri.query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(new) = rebuilt.parse::<axum::http::Uri>() {
            *req.uri_mut() = new;
        }
    }
    req
}

/// A running simulator. Dropping it stops the server and closes websockets.
///
/// Besides the address, the handle is the admin interface tests use to
/// provoke what a real gateway does on its own: session expiry, a competing
/// login, the passage of (replay) time, and the faults of a bad day (failing,
/// slow, malformed or foreign answers, silent or dropped websockets); and to
/// see what clients sent ([`GatewayHandle::record_requests`]).
pub struct GatewayHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the ticker (and everything) on shutdown.
    stop: watch::Sender<bool>,
    /// Stops only the HTTP server (restart).
    server_stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cert_der: Option<Vec<u8>>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// The address the simulator listens on (127.0.0.1 and the actual port,
    /// also when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1/api` (`https` with TLS): what a client
    /// uses in place of `https://localhost:5000/v1/api`.
    pub fn base_url(&self) -> String {
        let scheme = if self.cert_der.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/v1/api", self.addr)
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS): the server's root, under
    /// which `/v1/api` and, with [`GatewayConfig::admin`], `/sim/admin` are.
    pub fn root_url(&self) -> String {
        let scheme = if self.cert_der.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The ForecastEx markets the event contract endpoints list.
    pub fn event_markets(&self) -> &[EventMarket] {
        self.shared.forecast.markets()
    }

    /// `ws://127.0.0.1:PORT/v1/api/ws` (`wss` with TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.cert_der.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/v1/api/ws", self.addr)
    }

    /// With TLS: the self-signed certificate (DER) the server presents, for
    /// clients that want to trust exactly it.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.cert_der.as_deref()
    }

    /// The current session token (the `session` value of `/tickle`, and the
    /// `api` cookie the websocket requires).
    pub fn session_token(&self) -> String {
        self.shared.lock().session.token().to_owned()
    }

    /// Time out the brokerage session now, as ~6 idle minutes would:
    /// `authenticated` false, `connected` still true; `ssodh/init` recovers.
    pub fn expire_session(&self) {
        self.shared.expire_session();
    }

    /// Another login took the brokerage session: `competing` true,
    /// `authenticated` false, websockets get `sts`. `ssodh/init` with
    /// `compete: true` takes it back.
    pub fn trigger_competing_session(&self) {
        self.shared.trigger_competing();
    }

    /// The replay clock's current time.
    pub fn sim_time(&self) -> Timestamp {
        self.shared.lock().clock.now()
    }

    /// Move the replay clock forward by `by` (replay time) and process the
    /// bars that completed meanwhile.
    pub fn advance(&self, by: Duration) {
        self.shared.advance(by);
    }

    /// Change the replay speed (0 pauses the clock).
    pub fn set_speed(&self, speed: f64) {
        self.shared.lock().clock.set_speed(speed);
    }

    /// Answer every request whose path (after `/v1/api`) starts with
    /// `prefix` with `status` and `{"error": "injected fault: ..."}`.
    pub fn fail_path(&self, prefix: &str, status: u16) {
        let status = status_or_500(status);
        self.fail_path_with(
            prefix,
            status.as_u16(),
            &format!("injected fault: {}", status.as_u16()),
        );
    }

    /// Answer every request whose path starts with `prefix` with `status`
    /// and `{"error": message}`: the error object of the spec with the
    /// gateway's own text (`500 System Error` with `"System error"`, a 401
    /// saying why), and with status 200 the spec's *Order Reject Object*,
    /// the 200 whose `error` tells why an order cannot be accepted (price,
    /// permissions, funds).
    pub fn fail_path_with(&self, prefix: &str, status: u16, message: &str) {
        self.answer(
            Scope::Prefix(prefix.to_owned()),
            Answer::Error(status_or_500(status), message.to_owned()),
        );
    }

    /// Answer every request whose path starts with `prefix` with `status`
    /// and an HTML page where JSON was expected: the gateway's web front
    /// serves its login page (HTML, 200) to a client whose login has lapsed
    /// (an HTTP client following the redirect sees a 200 page), and its
    /// HTML error pages with other statuses.
    pub fn html_page_path(&self, prefix: &str, status: u16) {
        self.answer(
            Scope::Prefix(prefix.to_owned()),
            Answer::Body {
                status: status_or_500(status),
                content_type: "text/html",
                body: "<html><head><title>Client Portal</title></head>\
                       <body><h1>Login</h1></body></html>"
                    .to_owned(),
            },
        );
    }

    /// Answer every request whose path starts with `prefix` with `status`
    /// and `text` as a bare `text/plain` body: what the gateway's web
    /// server answers on its own, without the API's JSON, such as `429`
    /// with `Too many requests` or `503` with `Service Unavailable` while
    /// the gateway has no brokerage backend.
    pub fn plain_text_path(&self, prefix: &str, status: u16, text: &str) {
        self.answer(
            Scope::Prefix(prefix.to_owned()),
            Answer::Body {
                status: status_or_500(status),
                content_type: "text/plain",
                body: text.to_owned(),
            },
        );
    }

    /// Serve requests whose path starts with `prefix` as usual but cut the
    /// answer's body to its first half, status unchanged: a 200 whose JSON
    /// ends early, as a gateway that loses its upstream connection in the
    /// middle of an answer sends it.
    pub fn truncate_path(&self, prefix: &str) {
        self.answer(Scope::Prefix(prefix.to_owned()), Answer::Truncated);
    }

    /// Answer `method path` (exactly this path after `/v1/api`, any query)
    /// with 200 and `body` as given (JSON text) instead of the simulator's
    /// own answer: the real gateway's answer exactly as a spec example
    /// shows it, with accounts, contracts and asset classes the
    /// simulator's state does not hold, and for endpoints it does not serve.
    pub fn answer_path(&self, method: &str, path: &str, body: &str) {
        self.answer(
            Scope::Exact(method.to_ascii_uppercase(), path.to_owned()),
            Answer::Body {
                status: axum::http::StatusCode::OK,
                content_type: "application/json",
                body: body.to_owned(),
            },
        );
    }

    /// Serve requests whose path starts with `prefix` as usual and add
    /// `Set-Cookie: cookie` to the answer: the gateway passes on the
    /// session cookies IBKR's web front sets (such as `x-sess-uuid`), which
    /// a client must keep and send back.
    pub fn set_cookie_path(&self, prefix: &str, cookie: &str) {
        self.answer(
            Scope::Prefix(prefix.to_owned()),
            Answer::SetCookie(cookie.to_owned()),
        );
    }

    fn answer(&self, scope: Scope, answer: Answer) {
        self.shared
            .lock()
            .faults
            .answers
            .push((scope, answer, None));
    }

    /// Hold every response whose path starts with `prefix` for `by`.
    pub fn delay_path(&self, prefix: &str, by: Duration) {
        self.shared
            .lock()
            .faults
            .delay
            .push((prefix.to_owned(), by));
    }

    /// Serve requests whose path starts with `prefix` at once but hold the
    /// answer for `by`: the request took effect and the answer is late (or
    /// lost when the client gives up), as when a connection drops after
    /// the gateway placed an order.
    pub fn delay_answer_path(&self, prefix: &str, by: Duration) {
        self.shared
            .lock()
            .faults
            .delay_answer
            .push((prefix.to_owned(), by));
    }

    /// Remove every fault set through this handle: path answers, failures
    /// and delays; heartbeats resume, websocket frames are text again.
    pub fn clear_faults(&self) {
        self.shared.lock().faults = Default::default();
    }

    /// Stop (or resume) the websocket `system` heartbeats.
    pub fn stop_heartbeats(&self, stopped: bool) {
        self.shared.lock().faults.heartbeats_stopped = stopped;
    }

    /// Close every websocket (the session stays).
    pub fn drop_websockets(&self) {
        self.shared.push(state::Push::Disconnect);
    }

    /// Send `text` as is to every websocket (malformed messages on demand).
    pub fn send_raw_ws(&self, text: &str) {
        self.shared.push(state::Push::Raw(text.to_owned()));
    }

    /// Send websocket messages as binary frames (the UTF-8 JSON text as
    /// bytes) instead of text frames, or (false) as text again: the real
    /// gateway sends much of its data, market data among it, in binary
    /// frames, and a client must read both kinds.
    pub fn binary_websocket_frames(&self, on: bool) {
        self.shared.lock().faults.binary_frames = on;
    }

    /// Start (true) or stop keeping a log of what clients send: every
    /// request under `/v1/api` as it arrived (before pacing or the session
    /// could refuse it) and every websocket text message. Not a fault: the
    /// gateway's access log, for tests that check what a client sent
    /// (headers, query strings, bodies). Off at start, so a long-running
    /// simulator does not grow.
    pub fn record_requests(&self, on: bool) {
        self.shared.lock().log.on = on;
    }

    /// The requests received while recording, oldest first.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().log.http.clone()
    }

    /// The websocket messages received while recording, oldest first.
    pub fn received_ws_messages(&self) -> Vec<ReceivedWsMessage> {
        self.shared.lock().log.ws.clone()
    }

    /// How many websocket connections the simulator has accepted since it
    /// started (recording or not).
    pub fn websocket_connections(&self) -> usize {
        self.shared.lock().log.ws_connections
    }

    /// A gateway restart that keeps its state: websockets close, the port
    /// refuses connections for `down_for`, then the same port serves again
    /// with the same session, orders, positions and replay clock.
    pub async fn restart(&mut self, down_for: Duration) -> Result<(), GatewayError> {
        self.shared.push(state::Push::Disconnect);
        let _ = self.server_stop.send(true);
        // Upgraded connections can outlive a graceful stop; do not wait on them.
        if tokio::time::timeout(Duration::from_secs(2), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        tokio::time::sleep(down_for).await;
        let port = self.addr.port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| GatewayError::Bind { port, source })?;
        let (tx, rx) = watch::channel(false);
        self.server_stop = tx;
        self.server = spawn_server(listener, self.shared.clone(), self.tls.clone(), rx);
        Ok(())
    }

    /// Stop serving and wait for the server task to finish.
    pub async fn shutdown(mut self) {
        let _ = self.server_stop.send(true);
        let _ = self.stop.send(true);
        let _ = (&mut self.server).await;
        let _ = (&mut self.ticker).await;
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        let _ = self.server_stop.send(true);
        let _ = self.stop.send(true);
        self.server.abort();
        self.ticker.abort();
    }
}

/// `status` as a status code; one out of range is a 500.
fn status_or_500(status: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// Serve until the process ends: builds its own runtime (two worker
/// threads), starts the simulator and calls `ready` with the handle. For
/// command-line front ends that have no runtime of their own.
pub fn serve_forever(
    cfg: GatewayConfig,
    ready: impl FnOnce(&GatewayHandle),
) -> Result<(), GatewayError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| GatewayError::Bind {
            port: cfg.port,
            source,
        })?;
    rt.block_on(async move {
        let gw = Gateway::start(cfg).await?;
        ready(&gw);
        std::future::pending::<()>().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulator that declared itself failed answers 503 with the reason
    /// on every path, `/tickle` included, instead of a healthy-looking 200
    /// in front of a wedged exchange.
    #[tokio::test]
    async fn a_failed_simulator_answers_503_everywhere() {
        let shared = Arc::new(Shared::new(GatewayConfig::default()).unwrap());
        let app = router(shared.clone());
        let get = |path: &str| {
            axum::extract::Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        shared.fail("the replay ticker failed 50 times in a row: boom".to_owned());
        for path in ["/v1/api/tickle", "/v1/api/iserver/accounts"] {
            let r = app.clone().oneshot(get(path)).await.unwrap();
            assert_eq!(r.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(
                text.contains("simulator failed") && text.contains("boom"),
                "{text}"
            );
        }
    }
}
