//! Before a bot connects: is there a gateway, and is someone logged in?
//!
//! A headless bot is often started before its gateway (a reboot, a
//! container ordering) or while nobody has logged in yet. Connecting then
//! failed with "transport error: error sending request" and the bot exited.
//! [`wait_until_ready`] asks `/iserver/auth/status` and says what is wrong
//! in terms an operator can act on: the URL that does not answer with the
//! operating system's reason, or the page to log in at. Waiting (with
//! backoff, 2 s doubling to 30 s) is the caller's choice; without it the
//! first answer decides.
//!
//! Assumptions (the spec describes the logged-in gateway only; these are
//! what the real gateway does): before a login every `/iserver` endpoint
//! answers 401, and `connected: false` means no brokerage login at all
//! (only the gateway's web page can make one), while `connected: true,
//! authenticated: false` is a session the client can re-open itself with
//! `/iserver/auth/ssodh/init` (the websocket's connect does).

use std::time::Duration;

use crate::error::IbkrError;
use crate::rest::IbkrClient;

/// Why the gateway is not ready for a bot.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// Nothing answers at the gateway's address, or it answers with
    /// server errors or HTML.
    #[error(
        "the gateway at {url} does not answer: {source}. Start the Client Portal Gateway \
         (or check the gateway URL)"
    )]
    Unreachable {
        /// The base URL asked.
        url: String,
        /// What the request ran into (the OS error included).
        source: IbkrError,
    },
    /// The gateway answers but nobody is logged in.
    #[error("the gateway at {url} has no brokerage login: log in at {login} in a browser")]
    NeedsLogin {
        /// The base URL asked.
        url: String,
        /// The gateway's login page: its scheme, host and port.
        login: String,
    },
    /// Another answer that waiting will not change (a configuration
    /// error, a 4xx other than 401).
    #[error("the gateway at {url} refused: {source}")]
    Refused {
        /// The base URL asked.
        url: String,
        /// The refusal.
        source: IbkrError,
    },
}

impl NotReady {
    /// Whether waiting can help: the gateway may start, someone may log in.
    pub fn is_transient(&self) -> bool {
        !matches!(self, NotReady::Refused { .. })
    }
}

/// The gateway's login page for its API base URL: `https://localhost:5000/`
/// for `https://localhost:5000/v1/api`.
pub fn login_page(base_url: &str) -> String {
    match url::Url::parse(base_url) {
        Ok(mut u) => {
            u.set_path("/");
            u.set_query(None);
            u.to_string()
        }
        Err(_) => base_url.to_owned(),
    }
}

/// Ask once: `Ok` when a bot can connect (logged in, or a session the
/// client can re-open).
pub async fn probe(client: &IbkrClient) -> Result<(), NotReady> {
    let url = client.config().base_url.clone();
    match client.auth_status().await {
        Ok(s) if s.authenticated || s.connected => Ok(()),
        Ok(_) | Err(IbkrError::Unauthorized { .. }) => Err(NotReady::NeedsLogin {
            login: login_page(&url),
            url,
        }),
        Err(
            e @ (IbkrError::Transport { .. }
            | IbkrError::ServerError { .. }
            | IbkrError::Unavailable { .. }
            | IbkrError::Html { .. }
            | IbkrError::TooManyRequests { .. }
            | IbkrError::PenaltyBox { .. }),
        ) => Err(NotReady::Unreachable { url, source: e }),
        Err(e) => Err(NotReady::Refused { url, source: e }),
    }
}

/// [`probe`] until the gateway is ready. With `wait` false the first
/// answer decides; with it, a transient answer is logged (ERROR, saying
/// what to do) and asked again after a backoff of 2 s doubling to 30 s,
/// for as long as it takes (the caller stops it, e.g. on Ctrl-C). Returns
/// how many answers were not ready.
pub async fn wait_until_ready(client: &IbkrClient, wait: bool) -> Result<u32, NotReady> {
    let mut pause = Duration::from_secs(2);
    let mut failures = 0u32;
    loop {
        match probe(client).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(after = failures, "the gateway is ready");
                }
                return Ok(failures);
            }
            Err(e) if wait && e.is_transient() => {
                failures = failures.saturating_add(1);
                tracing::error!(retry_in_s = pause.as_secs(), "{e}; waiting");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_is_the_gateways_root() {
        assert_eq!(
            login_page("https://localhost:5000/v1/api"),
            "https://localhost:5000/"
        );
        assert_eq!(
            login_page("http://127.0.0.1:41234/v1/api?x=1"),
            "http://127.0.0.1:41234/"
        );
        assert_eq!(login_page("not a url"), "not a url");
    }
}
