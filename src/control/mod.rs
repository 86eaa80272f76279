//! The control endpoint of a running bot: watching it and stopping it from
//! outside, over HTTP on a loopback address.
//!
//! # Turning it on
//!
//! Off by default. `ibflow run --control 127.0.0.1:9464`, or in the config
//! file:
//!
//! ```toml
//! [run]
//! control = "127.0.0.1:9464"
//! control_token = "a long random string"   # or env IBFLOW_CONTROL_TOKEN
//! ```
//!
//! The server starts before the bot connects to the gateway (so `/health`
//! answers 503 `connecting` during start-up, and the kill switch works
//! from the first second) and stops when the run ends.
//!
//! # Routes
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /health` | 200 `{"ok":true}` when the brokerage session is authenticated and the websocket is up; 503 `{"ok":false,"reason":...}` otherwise (`connecting` during start-up, `websocket down (reconnecting)`, `brokerage session not authenticated`, `gateway session ended: ...`) |
//! | `GET /metrics` | every metric of [`ibkr::telemetry`] in the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): websocket messages by topic, decode errors, reconnects, HTTP 429s, session re-inits, order round trip, orders by outcome, risk rejects by reason, PnL, equity, authenticated, websocket alive, last message time, uptime |
//! | `GET /status` | the [`ibkr::telemetry::StatusSnapshot`] as JSON (decimals as strings): account, connection, session, trading state, transport halt, positions, working orders, PnL, equity, last message age, uptime, counters |
//! | `POST /kill` | the kill switch, exactly as SIGUSR1: order entry is refused at the transport at once ([`ibkr::ClientControl::halt_orders`]) and the engine cancels every working order and halts. Optional body `{"reason":"..."}`. 202 `{"killed":true}` |
//! | `GET /gateway/<api path>?<query>` | a read-only gateway query sent through the bot's own paced client (see below) |
//!
//! Anything else is 404 (405 for a known gateway endpoint that is not a
//! read).
//!
//! # Authentication
//!
//! With a token set (`[run] control_token`, or `IBFLOW_CONTROL_TOKEN`,
//! which wins), every route, `/health` and `/metrics` included, asks for
//! `Authorization: Bearer <token>` and answers 401 without it. The token is
//! compared in constant time, and it appears in no log line, error or
//! `Debug` output. Prometheus sends it with `authorization: {credentials:
//! ...}` in its scrape config.
//!
//! # Why loopback only
//!
//! The endpoint can stop trading and reads the account's positions; it has
//! no TLS. Bound to 127.0.0.1 or ::1 it is reachable only from the bot's
//! own machine (users of that machine: hence the token). A non-loopback
//! address is refused at start with an error. To watch from elsewhere,
//! forward the port over SSH or put an authenticating TLS proxy in front.
//!
//! # The gateway proxy, and why
//!
//! The CP Gateway paces by client IP address: 10 requests a second
//! overall and per-endpoint limits such as one `/iserver/account/orders`
//! every 5 seconds, and one violation puts the address in a 15-minute
//! penalty box, during which the bot can neither trade nor cancel. The
//! bot's pacer keeps the bot within the limits, but it cannot see requests
//! of another process: an operator's `ibflow orders` next to a running bot
//! (same machine, same address) could be the request that breaks a limit.
//!
//! So the bot serves read-only queries through its own client:
//! `GET /gateway/iserver/account/orders?filters=...` is sent as
//! `GET /iserver/account/orders?filters=...` by the bot's
//! [`ibkr::IbkrClient::send`], waiting its turn in the bot's pacer, and the
//! gateway's status and body come back. Only endpoints of the
//! `cpapi::endpoints` table whose row lists `GET` are served (with a
//! method the row lists: `POST /tickle` and `POST /iserver/auth/status`
//! are reads too), except `/ws` and `/iserver/marketdata/unsubscribeall`;
//! order entry, cancels, logout and account switches are refused with
//! 405. A query waits at most a minute in the bot's pacer (504 beyond),
//! at most 4 are in flight at once (503 beyond: the bot's own requests
//! share the pacer's queues), and none is sent while the bot sits in a
//! penalty box (503).
//!
//! The gateway commands (`ibflow orders`, `trades`, `positions`, `quote`,
//! `gateway status`, `history fetch`) use it on their own: when a control
//! address is configured (`--control`, `IBFLOW_CONTROL`, or `--config
//! FILE` with `[run] control`) and a bot answers `/health` there, they
//! build their client on `http://ADDR/gateway` with the token, say so in
//! one line on stderr, and otherwise go to the gateway directly as before
//! (`--direct` forces that).
//!
//! # Commands
//!
//! `ibflow status [--json]` prints the bot's `/status`; `ibflow kill
//! [--reason TEXT]` pulls its kill switch. Both find the bot as the
//! gateway commands do and fail with a clear message when no bot answers or
//! the token is refused.

pub mod client;
pub mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context, Result};
use ibkr::BearerToken;

/// The environment variable holding the bearer token of the control
/// endpoint (wins over `[run] control_token`).
pub const TOKEN_ENV: &str = "IBFLOW_CONTROL_TOKEN";

/// The environment variable the client commands read the bot's control
/// address from.
pub const ADDR_ENV: &str = "IBFLOW_CONTROL";

/// `s` as a socket address on a loopback interface: `127.0.0.1:9464`,
/// `[::1]:9464` or `localhost:9464`. Anything else is refused: see the
/// module documentation for why.
pub fn loopback_addr(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    let addr = match s.strip_prefix("localhost:") {
        Some(port) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.parse()
                .with_context(|| format!("control address {s:?}: bad port"))?,
        ),
        None => s.parse::<SocketAddr>().with_context(|| {
            format!("control address {s:?} is not IP:PORT (e.g. 127.0.0.1:9464)")
        })?,
    };
    if !addr.ip().is_loopback() {
        bail!(
            "control address {s} is not a loopback address: the control endpoint (kill switch, \
             status, gateway proxy) only listens on 127.0.0.1 or ::1; forward the port (ssh -L) \
             to reach it from elsewhere"
        );
    }
    Ok(addr)
}

/// The bearer token: `IBFLOW_CONTROL_TOKEN` when set and not empty, else
/// the config's `[run] control_token` when not empty.
pub fn token(config: Option<&BearerToken>) -> Option<BearerToken> {
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.is_empty() => Some(BearerToken::new(t)),
        _ => config.filter(|t| !t.expose().is_empty()).cloned(),
    }
}

/// True when `presented` is `expected`, in time that depends only on the
/// length of `presented` (not on where the two differ, nor on the
/// expected token's length).
pub(crate) fn token_matches(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    for (i, p) in presented.iter().enumerate() {
        let e = expected.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(e ^ p);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses() {
        assert!(loopback_addr("127.0.0.1:9464").is_ok());
        assert!(loopback_addr("[::1]:9464").is_ok());
        assert_eq!(
            loopback_addr("localhost:1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 1)))
        );
        let e = loopback_addr("0.0.0.0:9464").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("not a loopback")));
        assert!(loopback_addr("192.168.1.2:9464").is_err());
        assert!(loopback_addr("example.com:9464").is_err());
        assert!(loopback_addr("127.0.0.1").is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secret", b"secreT"));
        assert!(!token_matches(b"secret", b"secret2"));
        assert!(!token_matches(b"secret", b"secre"));
        assert!(!token_matches(b"secret", b""));
        assert!(!token_matches(b"", b"x"));
    }
}
