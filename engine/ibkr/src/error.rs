//! The one error type of the CP Web API client.
//!
//! The gateway fails in several distinct ways that callers handle
//! differently: a 401 means "re-authenticate", a 429 means "stop for the
//! penalty box", a 200 with `{"error": ...}` is a refusal the strategy should
//! see, an HTML page is the gateway's login or warm-up page. Each gets its own
//! variant and keeps the server's message. Nothing here ever carries a cookie
//! or a session token: messages are taken from response bodies only, and
//! bodies are cut to a short snippet.

use std::time::Duration;

/// Longest body excerpt kept in an error.
const SNIPPET: usize = 300;

/// Why a call to the gateway (or the client's own setup) failed. The
/// variant says what to do about it; see the module documentation and
/// [`IbkrError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum IbkrError {
    /// A 2xx response whose JSON body is `{"error": ...}`.
    #[error("{endpoint}: gateway refused the request: {message}")]
    Api {
        /// The path called, relative to the base URL (`/iserver/accounts`).
        endpoint: String,
        /// The `error` value (a string as is, anything else as JSON text).
        message: String,
    },
    /// The body is an HTML page, not JSON (login page, or the 404 page the
    /// first `/hmds/history` call of a session returns).
    #[error("{endpoint}: HTTP {status} with an HTML body, not JSON: {snippet}")]
    Html {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The HTTP status (404 for the history warm-up page, 200 for a
        /// login page served in place of JSON).
        status: u16,
        /// The start of the page, whitespace collapsed (at most 300 bytes).
        snippet: String,
    },
    /// 401: no authenticated session.
    #[error("{endpoint}: 401 not authenticated: {message}")]
    Unauthorized {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The body's `error`, `message` or `msg`, else its start.
        message: String,
    },
    /// 429: the IP is in the penalty box.
    #[error("{endpoint}: 429 too many requests (penalty box): {message}")]
    TooManyRequests {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The body's `error`, `message` or `msg`, else its start.
        message: String,
    },
    /// The client itself is backing off after a 429 and refuses to send.
    #[error("{endpoint}: not sent, backing off after a 429 for another {remaining:?}")]
    PenaltyBox {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// Time left until the client's penalty ends.
        remaining: Duration,
    },
    /// Order entry refused by the client itself: the kill switch was
    /// pulled, or the session is gone (see [`crate::control`]).
    #[error("{endpoint}: not sent, order entry halted: {reason}")]
    Halted {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// Why (the kill switch's reason).
        reason: String,
    },
    /// A 3xx the client did not follow: redirects are followed only within
    /// the gateway's own scheme, host and port, and never with an
    /// unverified certificate (`--insecure`), so a loopback endpoint cannot
    /// send the client elsewhere with certificate checks off.
    #[error("{endpoint}: HTTP {status} redirect to {location} not followed (redirects leave neither the gateway's host nor, with an unverified certificate, the request)")]
    Redirect {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The HTTP status (301, 302, 307, ...).
        status: u16,
        /// Where it pointed: scheme, host and port only (a path or query
        /// could carry a token), or what the header held when unreadable.
        location: String,
    },
    /// 500 internal server error.
    #[error("{endpoint}: 500 server error: {message}")]
    ServerError {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The body's `error`, `message` or `msg`, else its start.
        message: String,
    },
    /// 503 service unavailable.
    #[error("{endpoint}: 503 service unavailable: {message}")]
    Unavailable {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The body's `error`, `message` or `msg`, else its start.
        message: String,
    },
    /// Any other non-success status.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Status {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The body's `error`, `message` or `msg`, else its start.
        message: String,
    },
    /// Connection, TLS or timeout failure.
    #[error("{endpoint}: transport error: {message}")]
    Transport {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// The HTTP library's error, without the URL.
        message: String,
    },
    /// The body is JSON but not the shape we expect.
    #[error("{endpoint}: cannot decode response: {message}; body: {snippet}")]
    Decode {
        /// The path called, relative to the base URL.
        endpoint: String,
        /// What did not fit, with the path of the field when the decoder
        /// knows it.
        message: String,
        /// The start of the body (empty when a request body could not be
        /// encoded).
        snippet: String,
    },
    /// The configuration is unusable (bad URL, insecure TLS for a remote host).
    #[error("configuration: {0}")]
    Config(String),
    /// Websocket failure.
    #[error("websocket: {0}")]
    Websocket(String),
    /// Local file I/O (history downloader).
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's error.
        message: String,
    },
    /// A reply-prompt chain that did not end (guards against loops).
    #[error("order reply chain did not settle: {0}")]
    ReplyChain(String),
}

impl IbkrError {
    /// True when retrying later may succeed (transport failures, 500, 503).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IbkrError::Transport { .. }
                | IbkrError::ServerError { .. }
                | IbkrError::Unavailable { .. }
        )
    }

    /// Build the error for a non-success status from its body.
    pub(crate) fn from_status(endpoint: &str, status: u16, body: &[u8]) -> IbkrError {
        let endpoint = endpoint.to_owned();
        if looks_like_html(body) {
            return IbkrError::Html {
                endpoint,
                status,
                snippet: snippet(body),
            };
        }
        let message = body_message(body);
        match status {
            401 => IbkrError::Unauthorized { endpoint, message },
            429 => IbkrError::TooManyRequests { endpoint, message },
            500 => IbkrError::ServerError { endpoint, message },
            503 => IbkrError::Unavailable { endpoint, message },
            _ => IbkrError::Status {
                endpoint,
                status,
                message,
            },
        }
    }

    /// Transport error from reqwest, with the URL (which may hold query
    /// parameters but never cookies) stripped to keep messages short.
    pub(crate) fn transport(endpoint: &str, e: reqwest::Error) -> IbkrError {
        // The chain down to the OS error ("Connection refused (os error
        // 111)", "certificate has expired"): "error sending request" alone
        // does not tell an operator what is wrong. The URL stays out (the
        // caller names the gateway; a query could carry a token).
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        IbkrError::Transport {
            endpoint: endpoint.to_owned(),
            message,
        }
    }
}

/// The HTML check used for every body: the gateway's pages start with `<`.
pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// A short, printable excerpt of a body.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message of an error body: its `error` or `message` field when it is
/// JSON, else the body excerpt.
pub(crate) fn body_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["error", "message", "msg"] {
            match m.get(key) {
                Some(serde_json::Value::String(s)) => return s.clone(),
                Some(v) if !v.is_null() => return v.to_string(),
                _ => {}
            }
        }
    }
    snippet(body)
}

/// The `{"error": ...}` of a 200 response, if it is one.
pub(crate) fn api_error(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct E {
        error: Option<serde_json::Value>,
    }
    // Only an object can be an error body (serde would read an array
    // positionally into the struct).
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let e: E = serde_json::from_slice(body).ok()?;
    match e.error? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        v => Some(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants() {
        let b = br#"{"error":"slow down"}"#;
        assert!(matches!(
            IbkrError::from_status("/x", 429, b),
            IbkrError::TooManyRequests { ref message, .. } if message == "slow down"
        ));
        assert!(matches!(
            IbkrError::from_status("/x", 401, b""),
            IbkrError::Unauthorized { .. }
        ));
        assert!(matches!(
            IbkrError::from_status("/x", 500, b"oops"),
            IbkrError::ServerError { ref message, .. } if message == "oops"
        ));
        assert!(matches!(
            IbkrError::from_status("/x", 503, b""),
            IbkrError::Unavailable { .. }
        ));
        assert!(matches!(
            IbkrError::from_status("/x", 404, b"  <html><body>Not found</body></html>"),
            IbkrError::Html { status: 404, .. }
        ));
    }

    #[test]
    fn api_error_detects_error_objects() {
        assert_eq!(api_error(br#"{"error":"no"}"#).as_deref(), Some("no"));
        assert_eq!(api_error(br#"{"error":null,"a":1}"#), None);
        assert_eq!(api_error(br#"[1,2]"#), None);
        assert_eq!(api_error(br#"[{"id":"p1","message":["?"]}]"#), None);
    }
}
