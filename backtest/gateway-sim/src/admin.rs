//! The admin API: the simulator's fault hooks over HTTP, so that tests and
//! users can provoke a bad day against a separately running bot (`ibflow
//! sim-gateway --admin`). Served only with [`super::GatewayConfig::admin`];
//! without it every path below is 404 like any unknown path. Loopback
//! only: the simulator binds 127.0.0.1, and a request from any other
//! address is refused 403 all the same.
//!
//! Everything is under `/sim/admin`, beside `/v1/api` rather than in it, so
//! it can never collide with a CP API path and passes none of the API's
//! layers (pacing, session, faults). Bodies are JSON; every answer is JSON,
//! `{"ok": true, ...}` on success and `400 {"error": ...}` for a body it
//! cannot read.
//!
//! | Method and path | Body | Effect |
//! |---|---|---|
//! | `GET /sim/admin` | | the state: session, websockets, faults |
//! | `GET /sim/admin/ledger` | | the venue's truth: every order the desk took (`orders`, as the live orders list shows each), every execution it remembers (`executions`, as `/iserver/account/trades` shows each, whatever its day), and the positions (`positions`, conid to quantity) |
//! | `POST /sim/admin/clock` | `{"speed"?, "advance_ms"?}` | the replay clock: set its speed (0 pauses), then move it forward `advance_ms` replay milliseconds (bars completed meanwhile are processed); answers `replay_time` |
//! | `POST /sim/admin/faults/status` | `{"path", "status", "message"?, "times"?}` | answer requests whose path (after `/v1/api`) starts with `path` with `status` (4xx/5xx) and `{"error": message}`, `times` times or until cleared |
//! | `POST /sim/admin/faults/delay` | `{"path", "ms"}` | hold answers on `path` for `ms` (until cleared) |
//! | `POST /sim/admin/faults/clear` | | remove every fault |
//! | `POST /sim/admin/websockets/drop` | | close every websocket (the session stays) |
//! | `POST /sim/admin/session/expire` | | time out the brokerage session: `/tickle` and `/iserver/auth/status` say unauthenticated; `ssodh/init` recovers |
//! | `POST /sim/admin/session/compete` | | another login takes the session |
//! | `POST /sim/admin/daily-reset` | | IBKR's nightly reset: websockets close and the brokerage session times out |
//! | `POST /sim/admin/restart` | `{"down_ms"?, "authenticated"?}` | a gateway restart (see below) |
//! | `POST /sim/admin/notify` | `{"id", "title", "text", "url"?}` | an information-only `ntf` to every websocket |
//! | `POST /sim/admin/bulletin` | `{"id"?, "message"}` | a `blt` bulletin to every websocket (`id` default `bltN`) |
//!
//! `GET /sim/admin` also reports the replay-clock schedule (`reset.rs`):
//! `next_reset` and `session_expires_at` (RFC 3339 UTC, or null when off),
//! `resets` (scheduled resets, midnights crossed, and admin `daily-reset`s)
//! and `held_orders` (order ids behind an unanswered `ntf` prompt).
//!
//! Restart: websockets close, every HTTP connection is closed (requests in
//! flight are answered first, within 2 s), new connections are closed at
//! once for `down_ms` (default 1000), and the session starts afresh: a new
//! token, the first-call quirks again (snapshot pre-flight, the 404 of the
//! first `/hmds/history`), authenticated unless `"authenticated": false`
//! (assumption: a restarted gateway that logs in on its own, as IBeam-style
//! setups do; `false` leaves `ssodh/init` to the client). Orders,
//! positions, executions and the replay clock are kept, as they are the
//! venue's, not the gateway's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::{Answer, Scope};
use super::state::{Push, Shared};
use super::wire::{bad_request, error, ok};

/// The admin routes, to be nested under `/sim/admin`.
pub(crate) fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(state))
        .route("/ledger", get(ledger))
        .route("/clock", post(clock))
        .route("/faults/status", post(fault_status))
        .route("/faults/delay", post(fault_delay))
        .route("/faults/clear", post(clear))
        .route("/websockets/drop", post(drop_websockets))
        .route("/session/expire", post(expire))
        .route("/session/compete", post(compete))
        .route("/daily-reset", post(daily_reset))
        .route("/restart", post(restart))
        .route("/notify", post(notify))
        .route("/bulletin", post(bulletin))
        .layer(axum::middleware::from_fn_with_state(shared, loopback_only))
}

/// Refuse any client that is not on this machine.
async fn loopback_only(State(_): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(ip) if ip.is_loopback() => next.run(req).await,
        _ => error(StatusCode::FORBIDDEN, "the admin API is loopback only"),
    }
}

/// A body read as `T`, or why not (answered 400). An empty body reads as
/// `{}`.
fn body<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, String> {
    let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| format!("body: {e}"))
}

fn done(extra: Value) -> Response {
    let mut v = json!({ "ok": true });
    if let (Value::Object(m), Value::Object(x)) = (&mut v, extra) {
        m.extend(x);
    }
    ok(v)
}

async fn state(State(sh): State<Arc<Shared>>) -> Response {
    let st = sh.lock();
    let rfc = |t: Option<engine::model::Timestamp>| match t {
        Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => Value::Null,
    };
    ok(json!({
        "authenticated": st.session.authenticated(),
        "connected": st.session.connected(),
        "websocket_connections_accepted": st.log.ws_connections,
        "path_faults": st.faults.answers.len(),
        "delays": st.faults.delay.len(),
        "replay_time": st.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "next_reset": rfc(st.schedule.next_reset()),
        "resets": st.schedule.resets(),
        "session_expires_at": rfc(st.schedule.session_expires_at()),
        "held_orders": st.desk.held.iter().map(|h| h.order_id.to_string()).collect::<Vec<_>>(),
    }))
}

/// What the venue holds, for a test or an operator to check a bot's store
/// against: the trades list is limited to 7 days, this is not.
async fn ledger(State(sh): State<Arc<Shared>>) -> Response {
    let st = sh.lock();
    let orders: Vec<Value> = st
        .desk
        .orders
        .values()
        .map(|o| super::order_json::order_json(o, &sh, false))
        .collect();
    let executions: Vec<Value> = st
        .desk
        .trades
        .iter()
        .map(|e| super::order_json::trade_json(e, st.desk.user_ref(e), &sh))
        .collect();
    let positions: serde_json::Map<String, Value> = st
        .desk
        .venue
        .books()
        .map(|b| {
            b.positions()
                .filter(|p| !p.is_flat())
                .map(|p| (p.conid.to_string(), json!(p.quantity.to_string())))
                .collect()
        })
        .unwrap_or_default();
    ok(json!({ "orders": orders, "executions": executions, "positions": positions }))
}

/// `{"speed": 0, "advance_ms": 86400000}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    speed: Option<f64>,
    advance_ms: Option<u64>,
}

/// Longest single move of the clock: ten years, far past any data set.
const MAX_ADVANCE_MS: u64 = 10 * 366 * 86_400_000;
/// Fastest replay: a thousand days a second.
const MAX_SPEED: f64 = 86_400_000.0;

/// Pause, resume or move the replay clock, so a test can hold the market
/// still while a bot restarts, or make a day pass at once.
async fn clock(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let c: ClockChange = match body(&b) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    if let Some(s) = c.speed {
        if !s.is_finite() || !(0.0..=MAX_SPEED).contains(&s) {
            return bad_request(format!("speed must be between 0 and {MAX_SPEED}"));
        }
        sh.lock().clock.set_speed(s);
    }
    if let Some(ms) = c.advance_ms {
        if ms > MAX_ADVANCE_MS {
            return bad_request(format!("advance_ms must be at most {MAX_ADVANCE_MS}"));
        }
        sh.advance(Duration::from_millis(ms));
    }
    let now = sh.lock().clock.now();
    done(json!({ "replay_time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) }))
}

/// `{"path": "/iserver", "status": 429, "message": "...", "times": 3}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusFault {
    path: String,
    status: u16,
    message: Option<String>,
    times: Option<u32>,
}

async fn fault_status(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let f: StatusFault = match body(&b) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let Some(status) = StatusCode::from_u16(f.status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
    else {
        return bad_request(format!("status {} is not a 4xx or 5xx", f.status));
    };
    if f.times == Some(0) {
        return bad_request("times must be at least 1 (leave it out: until cleared)");
    }
    let message = f.message.unwrap_or_else(|| match f.status {
        429 => "Too many requests".to_owned(),
        _ => format!("injected fault: {}", f.status),
    });
    sh.lock().faults.answers.push((
        Scope::Prefix(f.path.clone()),
        Answer::Error(status, message),
        f.times,
    ));
    done(json!({ "path": f.path, "status": f.status, "times": f.times }))
}

/// `{"path": "/iserver", "ms": 500}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayFault {
    path: String,
    ms: u64,
}

async fn fault_delay(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let f: DelayFault = match body(&b) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    // An hour at most: longer is a typo, and a huge value must not
    // overflow the timer.
    if f.ms > 3_600_000 {
        return bad_request("ms must be at most 3600000 (an hour)");
    }
    sh.lock()
        .faults
        .delay
        .push((f.path.clone(), Duration::from_millis(f.ms)));
    done(json!({ "path": f.path, "ms": f.ms }))
}

async fn clear(State(sh): State<Arc<Shared>>) -> Response {
    sh.lock().faults = Default::default();
    done(json!({}))
}

async fn drop_websockets(State(sh): State<Arc<Shared>>) -> Response {
    sh.push(Push::Disconnect);
    done(json!({}))
}

async fn expire(State(sh): State<Arc<Shared>>) -> Response {
    sh.expire_session();
    done(json!({}))
}

async fn compete(State(sh): State<Arc<Shared>>) -> Response {
    sh.trigger_competing();
    done(json!({}))
}

/// IBKR's nightly reset as a client sees it: the websockets close and the
/// brokerage session times out (a client must `ssodh/init` again).
async fn daily_reset(State(sh): State<Arc<Shared>>) -> Response {
    let mut st = sh.lock();
    sh.daily_reset(&mut st);
    st.schedule.count_reset();
    done(json!({ "resets": st.schedule.resets() }))
}

/// `{"down_ms": 1000, "authenticated": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Restart {
    down_ms: Option<u64>,
    authenticated: Option<bool>,
}

async fn restart(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let r: Restart = match body(&b) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let down_ms = r.down_ms.unwrap_or(1000);
    if down_ms > 3_600_000 {
        return bad_request("down_ms must be at most 3600000 (an hour)");
    }
    sh.push(Push::Disconnect);
    {
        let mut st = sh.lock();
        let authenticated = r.authenticated.unwrap_or(true);
        st.session.restart(authenticated);
        let t = st.clock.now();
        if authenticated {
            st.schedule.authenticated(t);
        } else {
            st.schedule.deauthenticated();
        }
    }
    sh.conns.restart(Duration::from_millis(down_ms));
    done(json!({ "down_ms": down_ms }))
}

/// `{"id": "...", "title": "...", "text": "...", "url": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Notify {
    id: String,
    title: String,
    text: String,
    url: Option<String>,
}

/// An information-only `ntf` (the spec's Notifications shape), to every
/// websocket.
async fn notify(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let n: Notify = match body(&b) {
        Ok(n) => n,
        Err(e) => return bad_request(e),
    };
    let mut args = json!({ "id": n.id, "title": n.title, "text": n.text });
    if let Some(url) = n.url {
        args["url"] = json!(url);
    }
    sh.push(Push::Ntf(args));
    done(json!({ "id": n.id }))
}

/// `{"id": "...", "message": "..."}`; `id` optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bulletin {
    id: Option<String>,
    message: String,
}

/// A `blt` bulletin to every websocket.
async fn bulletin(State(sh): State<Arc<Shared>>, b: Bytes) -> Response {
    let n: Bulletin = match body(&b) {
        Ok(n) => n,
        Err(e) => return bad_request(e),
    };
    let mut st = sh.lock();
    let id = sh.bulletin(&mut st, n.id, &n.message);
    done(json!({ "id": id }))
}
