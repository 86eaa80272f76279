//! The brokerage session: token, authentication, idle timeout, competing
//! logins, the session endpoints and the guard every request passes.
//!
//! States (spec "Authentication"): *authenticated* (brokerage session up);
//! *timed out* (no request for `idle_timeout`: `connected` true,
//! `authenticated` false, `/iserver` refused until `ssodh/init`);
//! *competing* (another login took the brokerage session: `competing` true);
//! *logged out* (`/logout`: `connected` false, everything but the session
//! endpoints refused until `ssodh/init`, which issues a new token).
//!
//! Assumptions where the spec is silent: refused requests get 401 with
//! `{"error": "not authenticated"}`; any HTTP request (not only `/tickle`)
//! resets the idle timer, as the spec says the session times out "without
//! sending new requests"; a request arriving after the timeout does not
//! revive the session.
//!
//! The daily reset and the session's maximum age (24 hours) run on the
//! replay clock (`reset.rs`); a transition to authenticated through
//! `ssodh/init` or `reauthenticate` starts a new maximum age.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use engine::model::Conid;

use super::state::{Push, Shared};
use super::wire::{error, ok};

pub(crate) const MAC: &str = "98:F2:B3:23:BF:A0";
pub(crate) const SERVER_NAME: &str = "IbflowSim1";
pub(crate) const SERVER_VERSION: &str = "Build 10.25.0p, Dec 5, 2023 5:48:12 PM";
const USER_ID: i64 = 123456789;

/// The one session of the simulated user.
#[derive(Debug)]
pub(crate) struct Session {
    token: String,
    authenticated: bool,
    connected: bool,
    competing: bool,
    idle: Duration,
    last_activity: Instant,
    last_activity_ms: i64,
    auth_time_ms: i64,
    /// `/hmds/history` has answered its first call with the 404 page.
    pub hmds_ready: bool,
    /// Conids whose snapshot pre-flight happened.
    pub preflight: HashSet<Conid>,
    /// Conids `/portfolio/{acct}/position/{conid}` has answered once (the
    /// first answer carries the position only, later ones contract info too).
    pub position_seen: HashSet<Conid>,
    /// `/iserver/account/orders` has answered its pre-flight (empty) call.
    pub orders_ready: bool,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// 32 hex digits, like the real `session` value. Unpredictable enough for a
/// loopback simulator: std's per-process random hasher keys plus the clock.
fn new_token() -> String {
    let mut out = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_i64(wall_ms());
        h.write_u128(Instant::now().elapsed().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl Session {
    pub(crate) fn new(idle: Duration) -> Self {
        let now = wall_ms();
        Session {
            token: new_token(),
            authenticated: true,
            connected: true,
            competing: false,
            idle,
            last_activity: Instant::now(),
            last_activity_ms: now,
            auth_time_ms: now,
            hmds_ready: false,
            preflight: HashSet::new(),
            position_seen: HashSet::new(),
            orders_ready: false,
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn connected(&self) -> bool {
        self.connected
    }

    /// Time out the brokerage session if it has been idle too long. True
    /// when this call timed it out.
    pub(crate) fn check_idle(&mut self, now: Instant) -> bool {
        if self.authenticated && now.duration_since(self.last_activity) >= self.idle {
            self.authenticated = false;
            return true;
        }
        false
    }

    /// A request arrived: check the timeout first, then reset the timer.
    /// True when the session timed out just now.
    pub(crate) fn touch(&mut self) -> bool {
        let now = Instant::now();
        let timed_out = self.check_idle(now);
        self.last_activity = now;
        self.last_activity_ms = wall_ms();
        timed_out
    }

    /// Admin: time out now. True if it was authenticated.
    pub(crate) fn expire(&mut self) -> bool {
        std::mem::replace(&mut self.authenticated, false)
    }

    /// Admin: the gateway restarted. A new session (new token, the
    /// first-call quirks again), brokerage authenticated or not.
    pub(crate) fn restart(&mut self, authenticated: bool) {
        *self = Session::new(self.idle);
        self.authenticated = authenticated;
    }

    /// Admin: another login took the brokerage session.
    pub(crate) fn compete_elsewhere(&mut self) {
        self.authenticated = false;
        self.competing = true;
    }

    fn ms_left(&self) -> i64 {
        let left = self.idle.saturating_sub(self.last_activity.elapsed());
        left.as_millis() as i64
    }

    /// `ssodh/init`: (re)open the brokerage session. A logged-out user gets
    /// a new token and fresh per-session state.
    fn init(&mut self, compete: bool) {
        if self.competing && !compete {
            return;
        }
        if !self.connected {
            self.token = new_token();
            self.hmds_ready = false;
            self.preflight.clear();
            self.position_seen.clear();
            self.orders_ready = false;
        }
        self.connected = true;
        self.competing = false;
        self.authenticated = true;
        self.auth_time_ms = wall_ms();
    }

    fn logout(&mut self) -> bool {
        let was = self.connected;
        self.connected = false;
        self.authenticated = false;
        was
    }

    /// The `/iserver/auth/status` object. Unauthenticated sessions answer
    /// the spec's "Alternate Response Object" shape, plus `message` when
    /// there is something to say (a competing session).
    pub(crate) fn auth_status(&self, full: bool) -> Value {
        if self.authenticated {
            let mut v = json!({
                "authenticated": true,
                "competing": false,
                "connected": true,
                "message": "",
                "MAC": MAC,
                "serverInfo": {
                    "serverName": SERVER_NAME,
                    "serverVersion": SERVER_VERSION,
                },
            });
            if full {
                v["hardware_info"] = json!("3b0679ee|98:A2:B3:23:BC:A0");
                v["fail"] = json!("");
            }
            v
        } else {
            let mut v = json!({
                "authenticated": false,
                "competing": self.competing,
                "connected": self.connected,
                "MAC": MAC,
            });
            if self.competing {
                v["message"] = json!("competing session");
            }
            v
        }
    }

    fn tickle(&self) -> Value {
        json!({
            "session": self.token,
            "ssoExpires": self.ms_left(),
            "collission": false,
            "userId": USER_ID,
            "hmds": { "error": "no bridge" },
            "iserver": { "authStatus": self.auth_status(false) },
        })
    }

    fn validate(&self, username: &str) -> Value {
        json!({
            "USER_ID": USER_ID,
            "USER_NAME": username,
            "RESULT": self.connected,
            "AUTH_TIME": self.auth_time_ms,
            "SF_ENABLED": false,
            "IS_FREE_TRIAL": false,
            "CREDENTIAL": username,
            "IP": "127.0.0.1",
            "EXPIRES": self.ms_left(),
            "QUALIFIED_FOR_MOBILE_AUTH": null,
            "LANDING_APP": "UNIVERSAL",
            "IS_MASTER": false,
            "lastAccessed": self.last_activity_ms,
            "LOGIN_TYPE": 2,
            "PAPER_USER_NAME": username,
            "features": {
                "env": "PROD",
                "wlms": true,
                "realtime": true,
                "bond": false,
                "optionChains": false,
                "calendar": true,
                "newMf": true
            },
            "region": "NJ"
        })
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/tickle", get(tickle).post(tickle))
        .route("/iserver/auth/status", get(auth_status).post(auth_status))
        .route("/iserver/auth/ssodh/init", post(ssodh_init))
        .route("/iserver/reauthenticate", post(reauthenticate))
        .route("/logout", post(logout))
        .route("/sso/validate", get(sso_validate))
}

async fn tickle(State(sh): State<Arc<Shared>>) -> Response {
    ok(sh.lock().session.tickle())
}

async fn auth_status(State(sh): State<Arc<Shared>>) -> Response {
    ok(sh.lock().session.auth_status(true))
}

/// Body `{"publish": true, "compete": true}`. `publish` false answers 500,
/// as the spec warns; a missing or unreadable body counts as
/// `publish: true, compete: true` (assumption).
async fn ssodh_init(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let publish = v.get("publish").and_then(Value::as_bool).unwrap_or(true);
    let compete = v.get("compete").and_then(Value::as_bool).unwrap_or(true);
    if !publish {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "publish must be true");
    }
    let mut st = sh.lock();
    let was = st.session.authenticated();
    st.session.init(compete);
    let now = st.session.authenticated();
    if now != was {
        sh.push(Push::Sts { authenticated: now });
    }
    if now && !was {
        // A new brokerage session: a new maximum age (`reset.rs`).
        let t = st.clock.now();
        st.schedule.authenticated(t);
    }
    ok(st.session.auth_status(false))
}

async fn reauthenticate(State(sh): State<Arc<Shared>>) -> Response {
    let mut st = sh.lock();
    if st.session.connected() && !st.session.authenticated() {
        st.session.init(false);
        if st.session.authenticated() {
            sh.push(Push::Sts {
                authenticated: true,
            });
            let t = st.clock.now();
            st.schedule.authenticated(t);
        }
    }
    ok(json!({ "message": "triggered" }))
}

async fn logout(State(sh): State<Arc<Shared>>) -> Response {
    let ended = sh.lock().session.logout();
    if ended {
        sh.push(Push::Sts {
            authenticated: false,
        });
        sh.push(Push::Disconnect);
    }
    ok(json!({ "status": ended }))
}

async fn sso_validate(State(sh): State<Arc<Shared>>) -> Response {
    ok(sh.lock().session.validate(&sh.cfg.username))
}

/// What a path needs: nothing (session endpoints), the read-only session
/// (`connected`), or the brokerage session (`/iserver`).
enum Needs {
    Nothing,
    Connected,
    Brokerage,
}

fn needs(path: &str) -> Needs {
    let p = path.strip_prefix("/v1/api").unwrap_or(path);
    if matches!(p, "/tickle" | "/logout" | "/sso/validate" | "/ws")
        || p.starts_with("/iserver/auth/")
        || p == "/iserver/reauthenticate"
    {
        Needs::Nothing
    } else if p.starts_with("/iserver/") {
        Needs::Brokerage
    } else {
        Needs::Connected
    }
}

/// Every request: note the activity (timing out an idle session first),
/// then refuse what the session state does not allow.
pub(crate) async fn guard(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let refused = {
        let mut st = sh.lock();
        if st.session.touch() {
            sh.push(Push::Sts {
                authenticated: false,
            });
        }
        match needs(req.uri().path()) {
            Needs::Nothing => false,
            Needs::Connected => !st.session.connected(),
            Needs::Brokerage => !st.session.authenticated(),
        }
    };
    if refused {
        return error(StatusCode::UNAUTHORIZED, "not authenticated");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeout_then_init() {
        let mut s = Session::new(Duration::from_millis(0));
        assert!(s.touch(), "zero idle time times out at once");
        assert!(!s.authenticated());
        assert!(s.connected());
        let token = s.token().to_owned();
        s.init(false);
        assert!(s.authenticated());
        assert_eq!(s.token(), token, "a timed-out session keeps its token");
        assert!(s.logout());
        s.init(true);
        assert_ne!(s.token(), token, "a new login gets a new token");
        assert_eq!(s.token().len(), 32);
    }

    #[test]
    fn competing_needs_compete() {
        let mut s = Session::new(Duration::from_secs(60));
        s.compete_elsewhere();
        s.init(false);
        assert!(!s.authenticated());
        assert_eq!(s.auth_status(false)["competing"], json!(true));
        s.init(true);
        assert!(s.authenticated());
    }
}
