//! Faults on demand, for tests of clients: failing, slow, malformed or
//! foreign answers, silent heartbeats, dropped websockets, malformed or
//! binary websocket messages; and the request log, which records what
//! clients sent. Set through [`super::GatewayHandle`], or over HTTP through
//! the admin API (`admin.rs`, only with `GatewayConfig::admin`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::state::Shared;
use super::wire::{bad_request, error};

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scope {
    /// Any method, a path (after `/v1/api`) starting with this.
    Prefix(String),
    /// One method (upper case) and exactly this path.
    Exact(String, String),
}

impl Scope {
    fn matches(&self, method: &Method, path: &str) -> bool {
        match self {
            Scope::Prefix(p) => path.starts_with(p.as_str()),
            Scope::Exact(m, p) => method.as_str().eq_ignore_ascii_case(m) && path == p,
        }
    }
}

/// What a rule answers in place of the simulator, or adds to its answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// `status` with `{"error": message}`.
    Error(StatusCode, String),
    /// `status` with this content type and body, as given.
    Body {
        status: StatusCode,
        content_type: &'static str,
        body: String,
    },
    /// The simulator's own answer with its body cut to the first half.
    Truncated,
    /// The simulator's own answer with this `Set-Cookie` header added.
    SetCookie(String),
}

/// Active faults. Path rules match by prefix of the path after `/v1/api`
/// (answers given as-is match one method and path exactly); the first
/// matching rule of a kind applies.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    /// Path answers; the count, when there is one, is how many more
    /// requests the rule answers before it lapses.
    pub answers: Vec<(Scope, Answer, Option<u32>)>,
    pub delay: Vec<(String, Duration)>,
    /// Handled at once, answered late.
    pub delay_answer: Vec<(String, Duration)>,
    pub heartbeats_stopped: bool,
    /// Websocket messages go out as binary frames.
    pub binary_frames: bool,
}

impl Faults {
    /// The answer of the first rule matching, counting the use of a rule
    /// limited to a number of requests (and dropping it when used up).
    fn answer_for(&mut self, method: &Method, path: &str) -> Option<Answer> {
        let i = self
            .answers
            .iter()
            .position(|(s, _, left)| s.matches(method, path) && *left != Some(0))?;
        let (_, answer, left) = &mut self.answers[i];
        let answer = answer.clone();
        if let Some(n) = left {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.answers.remove(i);
            }
        }
        Some(answer)
    }
}

fn first_match(rules: &[(String, Duration)], path: &str) -> Option<Duration> {
    rules
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, d)| *d)
}

/// The path after `/v1/api`.
fn api_path(req: &Request) -> String {
    let path = req.uri().path();
    path.strip_prefix("/v1/api").unwrap_or(path).to_owned()
}

/// Apply path faults: wait first (a slow gateway), then answer in place of
/// the simulator or alter its answer, then hold the answer if told to.
pub(crate) async fn inject(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = api_path(&req);
    let (answer, delay, late) = {
        let mut st = sh.lock();
        (
            st.faults.answer_for(req.method(), &path),
            first_match(&st.faults.delay, &path),
            first_match(&st.faults.delay_answer, &path),
        )
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let answer = match answer {
        None => next.run(req).await,
        Some(Answer::Error(status, msg)) => return error(status, msg),
        Some(Answer::Body {
            status,
            content_type,
            body,
        }) => return (status, [(header::CONTENT_TYPE, content_type)], body).into_response(),
        Some(Answer::Truncated) => truncated(next.run(req).await).await,
        Some(Answer::SetCookie(cookie)) => {
            let mut answer = next.run(req).await;
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                answer.headers_mut().append(header::SET_COOKIE, v);
            }
            answer
        }
    };
    if let Some(d) = late {
        tokio::time::sleep(d).await;
    }
    answer
}

/// `answer` with its body cut to the first half (at least one byte short).
async fn truncated(answer: Response) -> Response {
    let (mut parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

/// One HTTP request as the simulator received it (see
/// [`super::GatewayHandle::record_requests`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, `DELETE`...
    pub method: String,
    /// The path after `/v1/api` (`/iserver/accounts`), without a trailing
    /// slash.
    pub path: String,
    /// The query string as sent (still percent-encoded); empty without one.
    pub query: String,
    /// The headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body read as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One text message a client sent on a websocket (see
/// [`super::GatewayHandle::record_requests`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedWsMessage {
    /// Which connection it came on: 0 for the first websocket the simulator
    /// accepted, counting on from there.
    pub connection: usize,
    /// The message as sent.
    pub text: String,
}

/// What clients sent, while recording is on; websocket connections are
/// counted always.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub on: bool,
    pub http: Vec<ReceivedRequest>,
    pub ws: Vec<ReceivedWsMessage>,
    pub ws_connections: usize,
}

impl RequestLog {
    /// A websocket was accepted: its connection number.
    pub(crate) fn ws_connected(&mut self) -> usize {
        self.ws_connections += 1;
        self.ws_connections - 1
    }

    /// A client sent `text` on websocket `connection`.
    pub(crate) fn ws_message(&mut self, connection: usize, text: &str) {
        if self.on {
            self.ws.push(ReceivedWsMessage {
                connection,
                text: text.to_owned(),
            });
        }
    }
}

/// Record the request as received, before pacing or the session can refuse
/// it, when recording is on.
pub(crate) async fn record(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if !sh.lock().log.on {
        return next.run(req).await;
    }
    let path = api_path(&req);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return bad_request("the request body could not be read");
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    sh.lock().log.http.push(ReceivedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: bytes.to_vec(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        let unavailable = Answer::Error(StatusCode::SERVICE_UNAVAILABLE, "x".into());
        let mut f = Faults {
            answers: vec![(
                Scope::Prefix("/iserver/account".into()),
                unavailable.clone(),
                None,
            )],
            delay: vec![("/tickle".into(), Duration::from_millis(5))],
            ..Faults::default()
        };
        let get = Method::GET;
        assert_eq!(
            f.answer_for(&get, "/iserver/account/orders"),
            Some(unavailable.clone())
        );
        assert_eq!(f.answer_for(&get, "/iserver/accounts"), Some(unavailable));
        assert_eq!(f.answer_for(&get, "/tickle"), None);
        assert_eq!(
            first_match(&f.delay, "/tickle"),
            Some(Duration::from_millis(5))
        );
        assert_eq!(f.answer_for(&get, "/sso/validate"), None);
        assert_eq!(first_match(&f.delay, "/sso/validate"), None);
    }

    #[test]
    fn counted_rules_lapse() {
        let teapot = Answer::Error(StatusCode::TOO_MANY_REQUESTS, "x".into());
        let mut f = Faults {
            answers: vec![(Scope::Prefix("/a".into()), teapot.clone(), Some(2))],
            ..Faults::default()
        };
        assert_eq!(f.answer_for(&Method::GET, "/a"), Some(teapot.clone()));
        assert_eq!(f.answer_for(&Method::GET, "/b"), None);
        assert_eq!(f.answer_for(&Method::GET, "/a"), Some(teapot));
        assert_eq!(f.answer_for(&Method::GET, "/a"), None);
        assert!(f.answers.is_empty());
    }

    #[test]
    fn exact_rules_match_method_and_whole_path() {
        let s = Scope::Exact("POST".into(), "/iserver/account".into());
        assert!(s.matches(&Method::POST, "/iserver/account"));
        assert!(!s.matches(&Method::GET, "/iserver/account"));
        assert!(!s.matches(&Method::POST, "/iserver/account/U1/orders"));
    }

    #[test]
    fn websocket_connections_are_numbered_and_messages_kept_while_on() {
        let mut log = RequestLog::default();
        assert_eq!(log.ws_connected(), 0);
        log.ws_message(0, "tic");
        log.on = true;
        assert_eq!(log.ws_connected(), 1);
        log.ws_message(1, "tic");
        assert_eq!(
            log.ws,
            vec![ReceivedWsMessage {
                connection: 1,
                text: "tic".into()
            }]
        );
    }
}
