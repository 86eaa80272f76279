//! Session keeping: `/tickle` about every minute (the session times out
//! after about 5-6 minutes without requests), watching `authenticated`,
//! `connected` and `competing`, and re-opening the brokerage session with
//! `/iserver/auth/ssodh/init` when the gateway is connected but the
//! brokerage session is gone.
//!
//! The servers reset daily at local midnight of the connecting region
//! (spec, "Regular Server Maintenance": 00:00 US/Eastern, 00:00 CEST,
//! 00:00 HKT). Around that time a disconnect is expected: it is logged as
//! information, not as an error, and the keeper re-establishes the session
//! after it.
//!
//! Assumptions: the spec's UTC row of the reset table (20:00/02:00/08:00)
//! does not match its local row for US/Eastern, so the local row is used
//! with chrono-tz (daylight saving included); "CEST" is Europe/Zurich (the
//! spec's FAQ names Zug); a reset disconnect is expected for
//! [`SessionConfig::reset_grace`] after midnight.

use std::time::Duration;

use chrono::Datelike;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::IbkrError;
use crate::rest::IbkrClient;
use cpapi::messages::AuthStatus;
use engine::event::SessionStatus;

pub use cpapi::reset::ResetRegion;

/// Settings of the keeper.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How often `/tickle` is called (default 60 s, as the spec recommends).
    pub tickle_every: Duration,
    /// `compete` flag of `/iserver/auth/ssodh/init`: take over a competing
    /// session. Off by default: a competing session is reported, not killed.
    pub compete: bool,
    /// Whose daily reset to expect (default North America).
    pub region: ResetRegion,
    /// How long after the reset a disconnect is logged as expected rather than
    /// as an error (default 15 minutes).
    pub reset_grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            tickle_every: Duration::from_secs(60),
            compete: false,
            region: ResetRegion::NorthAmerica,
            reset_grace: Duration::from_secs(15 * 60),
        }
    }
}

/// What one check found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCheck {
    /// The brokerage session as the gateway reported it (after a re-init, as
    /// the re-init or the status endpoint reported it).
    pub status: SessionStatus,
    /// `/iserver/auth/ssodh/init` was called.
    pub reinitialized: bool,
    /// `ssoExpires` of the `/tickle` answer: milliseconds until the SSO session
    /// expires; `None` when `/tickle` answered 401 or left it out.
    pub sso_expires_ms: Option<i64>,
}

/// One keeper step: tickle, evaluate, re-init when connected but not
/// authenticated. A 401 from `/tickle` is reported as a lost session, not
/// an error, so the keeper keeps going.
pub async fn check_once(
    client: &IbkrClient,
    config: &SessionConfig,
) -> Result<SessionCheck, IbkrError> {
    let (mut auth, expires) = match client.tickle().await {
        Ok(t) => (t.auth_status(), t.sso_expires_ms),
        Err(IbkrError::Unauthorized { message, .. }) => (
            AuthStatus {
                message: Some(message),
                ..AuthStatus::default()
            },
            None,
        ),
        Err(e) => return Err(e),
    };
    let telemetry = &client.config().telemetry;
    telemetry.set_authenticated(auth.authenticated);
    let mut reinitialized = false;
    if auth.competing {
        tracing::error!(
            "COMPETING brokerage session: another login (TWS, Client Portal, mobile) holds the \
             brokerage session for this username; trading is blocked until it logs out"
        );
    } else if auth.connected && !auth.authenticated {
        tracing::warn!(
            "brokerage session not authenticated; re-opening it with /iserver/auth/ssodh/init"
        );
        telemetry.session_reinit();
        auth = client.ssodh_init(config.compete).await?;
        reinitialized = true;
        if !auth.authenticated {
            // The init answer can lag; the status endpoint is authoritative.
            auth = client.auth_status().await.unwrap_or(auth);
        }
        telemetry.set_authenticated(auth.authenticated);
    }
    Ok(SessionCheck {
        status: auth.to_session_status(),
        reinitialized,
        sso_expires_ms: expires,
    })
}

/// Run the keeper in the background; every status change is sent on `tx`.
/// It checks every [`SessionConfig::tickle_every`], and at once when
/// `nudge` is notified: the websocket said the session is gone (`sts`) or
/// closed (a reset), and waiting up to a minute to re-open the session
/// would hold trading that long.
pub fn spawn_keeper(
    client: IbkrClient,
    config: SessionConfig,
    tx: mpsc::Sender<SessionStatus>,
    nudge: std::sync::Arc<tokio::sync::Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<SessionStatus> = None;
        let mut every = tokio::time::interval(config.tickle_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = nudge.notified() => {}
            }
            let now = chrono::Utc::now();
            let expected = config.region.in_reset_window(now, config.reset_grace);
            let status = match check_once(&client, &config).await {
                Ok(c) if c.reinitialized && c.status.authenticated => {
                    // Found lost and re-opened within one check: the
                    // session was gone meanwhile, and whoever listens
                    // must hear it went (to catch up with what happened
                    // while it was), then that it is back.
                    let lost = SessionStatus {
                        authenticated: false,
                        ..c.status.clone()
                    };
                    if tx.send(lost.clone()).await.is_err() {
                        return;
                    }
                    last = Some(lost);
                    c.status
                }
                Ok(c) => c.status,
                Err(e) => {
                    client.config().telemetry.set_authenticated(false);
                    if expected {
                        tracing::info!(error = %e, "gateway unreachable during the daily server reset (expected)");
                    } else {
                        tracing::error!(error = %e, "session check failed");
                    }
                    SessionStatus {
                        authenticated: false,
                        connected: false,
                        competing: false,
                        message: Some(e.to_string()),
                    }
                }
            };
            if last.as_ref() != Some(&status) {
                if !status.authenticated && expected {
                    tracing::info!(
                        day = now.with_timezone(&config.region.tz()).day(),
                        "session down after the daily reset; re-establishing"
                    );
                }
                if tx.send(status.clone()).await.is_err() {
                    return;
                }
                last = Some(status);
            }
        }
    })
}
