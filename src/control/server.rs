//! The control endpoint's server: the axum routes of the module
//! documentation ([`super`]), on a loopback address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use cpapi::endpoints::{self, HttpMethod};
use ibkr::telemetry::Health;
use ibkr::{BearerToken, ClientControl, IbkrError, Telemetry};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The longest a proxied gateway query waits in the bot's pacer and for
/// the gateway's answer: an operator's query must not hold a queue for
/// the 15 minutes of the slowest endpoint rows.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(60);

/// The most proxied queries at once: the bot's own requests share its
/// pacer's queues with them, and an operator's loop must not crowd them.
pub const PROXY_IN_FLIGHT: usize = 4;

/// Rows the proxy refuses although they are GETs: the websocket upgrade,
/// and a GET that changes the bot's market data subscriptions.
const NOT_PROXIED: &[&str] = &["/ws", "/iserver/marketdata/unsubscribeall"];

/// The longest kill reason kept (it is logged and shown by `/status`).
const MAX_REASON: usize = 200;

/// What the routes act on: the bot's telemetry and control handle, the
/// kill channel the engine listens to, and the token.
#[derive(Debug, Clone)]
pub struct ControlState {
    /// The bot's metrics, health, status and (once connected) its client.
    pub telemetry: Telemetry,
    /// The bot's client control: `halt_orders` for the kill switch, the
    /// penalty box and the lost session for `/health`.
    pub control: ClientControl,
    /// The kill switch's channel to the engine (the one SIGUSR1 feeds).
    pub kill: mpsc::UnboundedSender<String>,
    /// The bearer token every route asks for; `None`: no authentication.
    pub token: Option<BearerToken>,
}

/// A running control endpoint. Dropping it stops the server (so every
/// exit path of a run does); [`ControlServer::shutdown`] stops it and
/// waits.
#[derive(Debug)]
pub struct ControlServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Bind `addr` (a loopback address; see [`super::loopback_addr`]) and
    /// serve. Binding errors (the port is taken) are returned here, before
    /// the bot does anything else.
    pub async fn start(addr: SocketAddr, state: ControlState) -> Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(anyhow!("control address {addr} is not a loopback address"));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the control endpoint on {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the control endpoint's address")?;
        let app = router(state);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "control endpoint stopped");
            }
        });
        Ok(ControlServer {
            addr,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The address it listens on (the actual port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let requests in progress finish (at most a few
    /// seconds), and end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The routes, behind the token check.
pub fn router(state: ControlState) -> Router {
    let state = Arc::new(Served {
        state,
        proxy_slots: tokio::sync::Semaphore::new(PROXY_IN_FLIGHT),
    });
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/kill", post(kill))
        .route("/gateway/{*path}", any(gateway))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .with_state(state)
}

/// The routes' state: the caller's, and the proxy's slots.
#[derive(Debug)]
struct Served {
    state: ControlState,
    /// Proxied queries in flight; beyond [`PROXY_IN_FLIGHT`] a query is
    /// answered 503 instead of queueing in front of the bot's own requests.
    proxy_slots: tokio::sync::Semaphore,
}

impl std::ops::Deref for Served {
    type Target = ControlState;

    fn deref(&self) -> &ControlState {
        &self.state
    }
}

type Shared = Arc<Served>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Every route: the bearer token, when one is set. The answer never
/// says more than "missing or wrong".
async fn authorize(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .unwrap_or_default();
        if !super::token_matches(token.expose().as_bytes(), presented) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer ...)",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

/// The credentials of an `Authorization: Bearer <token>` value (the
/// scheme's case does not matter, RFC 9110).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

async fn health(State(s): State<Shared>) -> Response {
    let reason = if let Some(r) = s.control.session_ended() {
        Some(format!("gateway session ended: {r}"))
    } else if let Some(left) = s.control.penalty_remaining() {
        Some(format!(
            "in the gateway's 429 penalty box for another {}s",
            left.as_secs()
        ))
    } else {
        match s.telemetry.health() {
            Health::Ok => None,
            Health::Connecting => Some("connecting".to_owned()),
            Health::Unhealthy(r) => Some(r),
        }
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "ok": true }))).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ok": false, "reason": reason })),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, ibkr::telemetry::METRICS_CONTENT_TYPE)],
        s.telemetry.encode(),
    )
        .into_response()
}

async fn status(State(s): State<Shared>) -> Response {
    let mut snap = s.telemetry.status();
    snap.orders_halted = s.control.orders_halted();
    Json(snap).into_response()
}

/// The kill switch: the transport refuses order entry now, and the
/// engine hears the reason on the channel SIGUSR1 uses.
async fn kill(State(s): State<Shared>, body: Bytes) -> Response {
    let given = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(clean));
    let reason = match given.filter(|r| !r.is_empty()) {
        Some(r) => format!("kill switch (control endpoint): {r}"),
        None => "kill switch (control endpoint)".to_owned(),
    };
    eprintln!("{reason}: cancelling every working order, trading halted");
    s.control.halt_orders(&reason);
    // Closed only when the run is over: then there is nothing to cancel.
    let _ = s.kill.send(reason);
    (StatusCode::ACCEPTED, Json(json!({ "killed": true }))).into_response()
}

/// A reason as it may be logged: printable, on one line, bounded.
fn clean(r: &str) -> String {
    r.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The gateway proxy: a read-only query sent by the bot's own client.
async fn gateway(State(s): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().strip_prefix("/gateway").unwrap_or_default();
    let path = match check_path(path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let row = match endpoints::lookup(method.as_str(), path) {
        Some(m)
            if m.endpoint.methods.contains(&HttpMethod::Get)
                && !NOT_PROXIED.contains(&m.endpoint.path) =>
        {
            m
        }
        Some(_) => return not_a_read(&method, path),
        None => {
            let known = ["GET", "POST", "PUT", "DELETE"]
                .iter()
                .any(|m| endpoints::lookup(m, path).is_some());
            return if known {
                not_a_read(&method, path)
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    format!("{path} is not a gateway endpoint ibflow knows"),
                )
            };
        }
    };
    let Ok(_slot) = s.proxy_slots.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the bot is already serving {PROXY_IN_FLIGHT} gateway queries; try again shortly"
            ),
        );
    };
    let Some(client) = s.telemetry.bot_client() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the bot has no gateway client (still connecting, or finished)",
        );
    };
    if let Some(left) = client.control().penalty_remaining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the bot is in the gateway's 429 penalty box for another {}s; nothing is sent",
                left.as_secs()
            ),
        );
    }
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let json_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("request body is not JSON: {e}"),
                )
            }
        }
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return not_a_read(&method, path);
    };
    tracing::debug!(%method, endpoint = row.endpoint.path, "proxied gateway query");
    let sent = tokio::time::timeout(
        PROXY_TIMEOUT,
        client.send(method, path, &query, json_body.as_ref()),
    )
    .await;
    match sent {
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{path}: no answer within {}s (waiting in the bot's pacer or for the gateway)",
                PROXY_TIMEOUT.as_secs()
            ),
        ),
        Ok(Ok(bytes)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => proxied_error(e),
    }
}

fn not_a_read(method: &Method, path: &str) -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} {path}: the bot serves read-only gateway queries only"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    r
}

/// The API path, if it is one: `/`-separated segments of URL-safe
/// characters, none empty, `.` or `..`.
#[allow(clippy::result_large_err)] // an axum Response, built once per refusal
fn check_path(path: &str) -> Result<&str, Response> {
    let ok = path.starts_with('/')
        && path.len() <= 512
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@,~".contains(&b))
        });
    if ok {
        Ok(path)
    } else {
        Err(error(StatusCode::NOT_FOUND, "not a gateway API path"))
    }
}

/// The client's error as the gateway's answer would have been, so the
/// calling process's client makes the same error of it: the status, and
/// `{"error": message}` (an HTML page as its snippet).
fn proxied_error(e: IbkrError) -> Response {
    let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY);
    match e {
        IbkrError::Api { message, .. } => error(StatusCode::OK, message),
        IbkrError::Html {
            status: s, snippet, ..
        } => (
            status(s),
            [(header::CONTENT_TYPE, "text/html")],
            if snippet.starts_with('<') {
                snippet
            } else {
                format!("<html>{snippet}")
            },
        )
            .into_response(),
        IbkrError::Unauthorized { message, .. } => error(StatusCode::UNAUTHORIZED, message),
        IbkrError::TooManyRequests { message, .. } => error(StatusCode::TOO_MANY_REQUESTS, message),
        IbkrError::ServerError { message, .. } => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        IbkrError::Unavailable { message, .. } => error(StatusCode::SERVICE_UNAVAILABLE, message),
        IbkrError::Status {
            status: s, message, ..
        } => error(status(s), message),
        IbkrError::PenaltyBox { remaining, .. } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the bot is in the gateway's 429 penalty box for another {}s; nothing is sent",
                remaining.as_secs()
            ),
        ),
        other => error(
            StatusCode::BAD_GATEWAY,
            format!("the bot's client: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert!(check_path("/iserver/account/orders").is_ok());
        assert!(check_path("/portfolio/DU1/positions/0").is_ok());
        for bad in ["", "/", "//x", "/a/../b", "/a/./b", "/a%2e", "/a b", "x"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abcdef"), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(clean(" a\nb\tc "), "a b c");
        assert_eq!(clean(&"x".repeat(500)).len(), MAX_REASON);
    }
}
