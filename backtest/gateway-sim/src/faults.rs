//! Faults on demand, for tests of clients: failing or slow paths, silent
//! heartbeats, dropped websockets, malformed websocket messages. Set through
//! [`super::GatewayHandle`]; nothing here is reachable over HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::state::Shared;
use super::wire::error;

/// Active faults. Path rules match by prefix of the path after `/v1/api`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    pub fail: Vec<(String, StatusCode)>,
    pub delay: Vec<(String, Duration)>,
    /// Handled at once, answered late.
    pub delay_answer: Vec<(String, Duration)>,
    pub heartbeats_stopped: bool,
}

impl Faults {
    fn rule_for(&self, path: &str) -> (Option<StatusCode>, Option<Duration>) {
        let fail = self
            .fail
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, s)| *s);
        (fail, first_match(&self.delay, path))
    }
}

fn first_match(rules: &[(String, Duration)], path: &str) -> Option<Duration> {
    rules
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, d)| *d)
}

/// Apply path faults: wait first (a slow gateway), then fail if told to.
pub(crate) async fn inject(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let path = path.strip_prefix("/v1/api").unwrap_or(path).to_owned();
    let ((fail, delay), late) = {
        let st = sh.lock();
        (
            st.faults.rule_for(&path),
            first_match(&st.faults.delay_answer, &path),
        )
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(status) = fail {
        return error(status, format!("injected fault: {}", status.as_u16()));
    }
    let answer = next.run(req).await;
    if let Some(d) = late {
        tokio::time::sleep(d).await;
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        let f = Faults {
            fail: vec![("/iserver/account".into(), StatusCode::SERVICE_UNAVAILABLE)],
            delay: vec![("/tickle".into(), Duration::from_millis(5))],
            delay_answer: Vec::new(),
            heartbeats_stopped: false,
        };
        assert_eq!(
            f.rule_for("/iserver/account/orders").0,
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(
            f.rule_for("/iserver/accounts").0,
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(
            f.rule_for("/tickle"),
            (None, Some(Duration::from_millis(5)))
        );
        assert_eq!(f.rule_for("/sso/validate"), (None, None));
    }
}
