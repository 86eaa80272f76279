//! What the network may not make the client do (issue 12), over real
//! sockets on 127.0.0.1:
//!
//! * follow a redirect away from the gateway: a loopback endpoint answering
//!   302 to another host and port gets an [`IbkrError::Redirect`] naming
//!   it, and the other port never sees a connection; with `--insecure`
//!   (an unverified certificate) no redirect is followed at all, and the
//!   websocket upgrade does not follow one either;
//! * reconnect the websocket forever after `/logout` (unless told to wait
//!   for a login, when a login brings it back): against the
//!   simulator, the task gives up after a bounded number of attempts that
//!   found the session gone, says why ([`WsMessage::SessionEnded`]), closes
//!   its channel, and halts order entry.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ibkr::ws::{self, ReconnectLimits, Subscription, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient, IbkrError};
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Long enough for anything a loaded machine delays; only reached when a
/// test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A listener that counts the connections it accepts and closes them.
async fn elsewhere() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

/// A tiny HTTP/1.1 server: `answer(path)` gives each request's whole
/// response (one request per connection).
async fn serve(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let _ = s.write_all(answer(&path).as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

fn json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The issue's case: `--insecure` toward a loopback endpoint that answers
/// 302 to an `https://` URL elsewhere. The client stops there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_client_follows_no_redirect() {
    let (other, connections) = elsewhere().await;
    let target = format!("https://127.0.0.1:{other}/v1/api/iserver/accounts?token=secret123");
    let front = serve(move |_| redirect(&target)).await;
    let c = IbkrClient::new(ClientConfig {
        accept_invalid_certs: true,
        ..ClientConfig::with_base_url(format!("http://127.0.0.1:{front}/v1/api"))
    })
    .unwrap();
    let e = c
        .call::<Value>(Method::GET, "/iserver/accounts", &[], None)
        .await
        .unwrap_err();
    match &e {
        IbkrError::Redirect {
            status, location, ..
        } => {
            assert_eq!(*status, 302);
            assert_eq!(location, &format!("https://127.0.0.1:{other}"));
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("redirect") && text.contains("not followed"),
        "{text}"
    );
    assert!(!text.contains("secret123"), "{text}");
    // Even a redirect to the same host and port is not followed with an
    // unverified certificate.
    let same = serve(move |p| {
        if p.ends_with("/x") {
            redirect("/v1/api/y")
        } else {
            json("{}")
        }
    })
    .await;
    let c = IbkrClient::new(ClientConfig {
        accept_invalid_certs: true,
        ..ClientConfig::with_base_url(format!("http://127.0.0.1:{same}/v1/api"))
    })
    .unwrap();
    assert!(matches!(
        c.call::<Value>(Method::GET, "/x", &[], None).await,
        Err(IbkrError::Redirect { status: 302, .. })
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the client went elsewhere"
    );
}

/// Without `--insecure`: a redirect within the gateway's scheme, host and
/// port is followed; one to another port (another origin) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_do_not_leave_the_gateway() {
    let (other, connections) = elsewhere().await;
    let front = serve(move |p| {
        if p.ends_with("/x") {
            redirect("/v1/api/y")
        } else if p.ends_with("/y") {
            json(r#"{"followed":true}"#)
        } else {
            redirect(&format!("http://127.0.0.1:{other}/v1/api/z"))
        }
    })
    .await;
    let c = IbkrClient::new(ClientConfig::with_base_url(format!(
        "http://127.0.0.1:{front}/v1/api"
    )))
    .unwrap();
    let v: Value = c.call(Method::GET, "/x", &[], None).await.unwrap();
    assert_eq!(v["followed"], true);
    match c.call::<Value>(Method::GET, "/away", &[], None).await {
        Err(IbkrError::Redirect { location, .. }) => {
            assert_eq!(location, format!("http://127.0.0.1:{other}"))
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the client went elsewhere"
    );
}

/// The websocket upgrade answered with a 302 elsewhere: a failed attempt,
/// never a connection there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_follows_no_redirect() {
    let (other, connections) = elsewhere().await;
    let front = serve(move |p| {
        if p.ends_with("/tickle") {
            json(
                r#"{"session":"abc","iserver":{"authStatus":{"authenticated":true,"connected":true}}}"#,
            )
        } else {
            redirect(&format!("https://127.0.0.1:{other}/v1/api/ws"))
        }
    })
    .await;
    let c = IbkrClient::new(ClientConfig {
        accept_invalid_certs: true,
        ..ClientConfig::with_base_url(format!("http://127.0.0.1:{front}/v1/api"))
    })
    .unwrap();
    let (h, mut rx) = ws::spawn(c, quick_ws(), 64);
    let m = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an answer")
        .expect("a message");
    match m {
        WsMessage::Disconnected { reason } => assert!(reason.contains("302"), "{reason}"),
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the upgrade went elsewhere"
    );
}

fn quick_ws() -> WsConfig {
    WsConfig {
        dead_after: Duration::from_secs(60),
        tic_every: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

/// After `/logout` the websocket stops reconnecting after the configured
/// number of attempts that found the session gone, reports it as the last
/// message, closes its channel, and order entry is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_gives_up_after_logout() {
    let g = support::start(|_| {}).await;
    let c = IbkrClient::new(ClientConfig {
        reconnect: ReconnectLimits {
            session_gone_attempts: Some(3),
            down_for: None,
        },
        ..ClientConfig::for_simulator(g.base_url())
    })
    .unwrap();
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();
    let (h, mut rx) = ws::spawn(c.clone(), quick_ws(), 256);
    h.subscribe(Subscription::Orders);
    let first = tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap();
    assert!(
        matches!(first, Some(WsMessage::Connected { .. })),
        "{first:?}"
    );

    assert!(c.logout().await.unwrap().status);
    let mut disconnects = 0;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await {
                Some(WsMessage::SessionEnded { reason }) => return reason,
                Some(WsMessage::Disconnected { .. }) => disconnects += 1,
                Some(_) => {}
                None => panic!("channel closed without SessionEnded"),
            }
        }
    })
    .await
    .expect("the websocket gives up within the bound");
    assert!(ended.contains("logged out"), "{ended}");
    // The socket the logout closed, then the failed attempts short of the
    // limit.
    assert!((1..=3).contains(&disconnects), "{disconnects}");
    // Nothing follows: the channel is closed.
    let after = tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap();
    assert!(after.is_none(), "{after:?}");
    assert_eq!(c.control().session_ended().as_deref(), Some(ended.as_str()));
    assert!(c.control().orders_halted().is_some());
    // Order entry is refused by the client itself, without a request.
    let body = serde_json::json!({"orders": []});
    assert!(matches!(
        c.place_orders(&acct, &body).await,
        Err(IbkrError::Halted { .. })
    ));
    h.shutdown().await;
    g.shutdown().await;
}

/// Configured to wait for a login (`ReconnectLimits::wait_forever`, the
/// bot's `--wait-for-login`): past the default limit of attempts it keeps
/// reconnecting, and a new login (`ssodh/init` with its new token) brings
/// the socket back with nothing halted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_waits_for_a_login_when_told_to() {
    let g = support::start(|_| {}).await;
    let c = IbkrClient::new(ClientConfig {
        reconnect: ReconnectLimits::wait_forever(),
        ..ClientConfig::for_simulator(g.base_url())
    })
    .unwrap();
    let (h, mut rx) = ws::spawn(c.clone(), quick_ws(), 256);
    let first = tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap();
    assert!(
        matches!(first, Some(WsMessage::Connected { .. })),
        "{first:?}"
    );
    assert!(c.logout().await.unwrap().status);
    let default_limit = ReconnectLimits::default()
        .session_gone_attempts
        .unwrap_or(5) as usize;
    let mut disconnects = 0;
    tokio::time::timeout(PATIENCE, async {
        while disconnects <= default_limit + 1 {
            match rx.recv().await {
                Some(WsMessage::Disconnected { .. }) => disconnects += 1,
                Some(WsMessage::SessionEnded { reason }) => panic!("gave up: {reason}"),
                Some(_) => {}
                None => panic!("channel closed"),
            }
        }
    })
    .await
    .expect("it keeps trying");
    assert!(c.ssodh_init(true).await.unwrap().authenticated);
    let back = tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await {
                Some(WsMessage::Connected { .. }) => return,
                Some(WsMessage::SessionEnded { reason }) => panic!("gave up: {reason}"),
                Some(_) => {}
                None => panic!("channel closed"),
            }
        }
    })
    .await;
    assert!(back.is_ok(), "no reconnect after the login");
    assert!(c.control().session_ended().is_none());
    assert!(c.control().orders_halted().is_none());
    h.shutdown().await;
    g.shutdown().await;
}
