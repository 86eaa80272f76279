//! The real client over real HTTP and websocket on 127.0.0.1 against the
//! CP Gateway simulator, with its fault hooks for what a gateway does on a
//! bad day:
//!
//! * error bodies: the Order Reject Object (200 with `{"error": ...}`), an
//!   HTML page with status 200, a body cut short, bare-text 429/503, JSON
//!   errors with the gateway's own text (`typed_errors_keep_the_message`);
//! * the request headers and cookies as received (`headers_and_cookies`,
//!   through the simulator's request log);
//! * a websocket that drops after its first quote and re-delivers the same
//!   execution on every connection (binary frames, as the real gateway
//!   sends them), and one that goes silent.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

mod support;

use std::time::Duration;

use cpapi::messages::PlaceOutcome;
use cpapi::order_ticket::OrdersBody;
use engine::event::Event;
use engine::model::{Conid, OrderRequest, OrderType, Side};
use gateway_sim::GatewayHandle;
use ibkr::ws::{self, Subscription, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient, IbkrError};
use reqwest::Method;
use serde_json::Value;
use support::{client, order, start};

const AAPL: Conid = Conid(265598);

/// Long enough for anything a loaded machine delays; only reached when a
/// test fails.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors_keep_the_message() {
    let g = start(|_| {}).await;
    g.record_requests(true);
    let c = client(&g);
    // The client holds the session token from here on: no error text may
    // show it.
    let token = c.tickle().await.unwrap().session.expose().to_owned();
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();
    let orders = format!("/iserver/account/{acct}/orders");
    g.fail_path_with(
        &orders,
        200,
        "We cannot accept an order at the limit price you selected.",
    );
    g.html_page_path("/portfolio/accounts", 200);
    g.fail_path_with("/iserver/account/trades", 500, "System error");
    g.plain_text_path("/trsrv/stocks", 503, "Service Unavailable");
    g.truncate_path("/sso/validate");
    g.plain_text_path(
        "/iserver/marketdata/unsubscribeall",
        429,
        "Too many requests",
    );
    let texts = std::sync::Mutex::new(Vec::new());
    let err = |method: Method, path: &str| {
        let (c, path, texts) = (c.clone(), path.to_owned(), &texts);
        async move {
            let e = c.call::<Value>(method, &path, &[], None).await.unwrap_err();
            texts.lock().unwrap().push(format!("{e:?}"));
            e
        }
    };
    match err(Method::POST, &orders).await {
        IbkrError::Api { message, .. } => assert!(message.contains("limit price")),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        err(Method::GET, "/portfolio/accounts").await,
        IbkrError::Html { status: 200, .. }
    ));
    // The brokerage session timed out: `/iserver` answers 401 with the
    // gateway's text until it is re-opened.
    g.expire_session();
    assert!(
        matches!(err(Method::GET, "/iserver/accounts").await, IbkrError::Unauthorized { message, .. } if message == "not authenticated")
    );
    c.ssodh_init(true).await.unwrap();
    assert!(
        matches!(err(Method::GET, "/iserver/account/trades").await, IbkrError::ServerError { message, .. } if message == "System error")
    );
    assert!(
        matches!(err(Method::GET, "/trsrv/stocks").await, IbkrError::Unavailable { message, .. } if message == "Service Unavailable")
    );
    assert!(matches!(
        err(Method::GET, "/sso/validate").await,
        IbkrError::Decode { .. }
    ));
    // A 429 puts the client in the penalty box: the next call is not sent.
    assert!(matches!(
        err(Method::GET, "/iserver/marketdata/unsubscribeall").await,
        IbkrError::TooManyRequests { .. }
    ));
    assert!(c.pacer().penalty_remaining().unwrap() > Duration::from_secs(14 * 60));
    let received = g.received_requests().len();
    assert!(matches!(
        err(Method::POST, &orders).await,
        IbkrError::PenaltyBox { .. }
    ));
    assert_eq!(g.received_requests().len(), received, "nothing was sent");
    // Transport error: nothing listens there.
    let dead = IbkrClient::new(ClientConfig::for_simulator("http://127.0.0.1:9/v1/api")).unwrap();
    let e = dead.auth_status().await.unwrap_err();
    assert!(matches!(e, IbkrError::Transport { .. }), "{e:?}");
    texts.lock().unwrap().push(format!("{e:?}"));
    // No secret ever in an error text.
    for e in texts.lock().unwrap().iter() {
        assert!(!e.contains(&token), "{e}");
    }
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_cookies() {
    let g = start(|_| {}).await;
    g.record_requests(true);
    // A session cookie the gateway sets, which the client must send back.
    g.set_cookie_path("/tickle", "x-sess-uuid=abc123; Path=/");
    let c = client(&g);
    c.tickle().await.unwrap();
    // A POST without a body.
    c.auth_status().await.unwrap();
    let got = g.received_requests();
    let h = got
        .iter()
        .rev()
        .find(|r| r.method == "POST" && r.path == "/iserver/auth/status")
        .unwrap();
    assert_eq!(h.header("accept"), Some("*/*"));
    assert_eq!(h.header("content-length"), Some("2"));
    assert_eq!(h.body, b"{}");
    assert!(h.header("user-agent").unwrap().starts_with("ibflow/"));
    assert!(
        h.header("cookie").unwrap().contains("x-sess-uuid=abc123"),
        "cookie store: {:?}",
        h.headers
    );
    g.shutdown().await;
}

/// The client's websocket messages, counting the executions among them.
struct Messages {
    rx: tokio::sync::mpsc::Receiver<WsMessage>,
    executions: usize,
}

impl Messages {
    fn count(&mut self, m: &WsMessage) {
        if matches!(m, WsMessage::Event(Event::Execution(_))) {
            self.executions += 1;
        }
    }

    async fn next_matching(&mut self, f: impl Fn(&WsMessage) -> bool) -> WsMessage {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let m = self.rx.recv().await.expect("channel open");
                self.count(&m);
                if f(&m) {
                    return m;
                }
            }
        })
        .await
        .expect("expected message in time")
    }

    /// Count what is left once the socket task has ended.
    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.count(&m);
        }
    }
}

/// Poll the simulator's log of websocket messages until `f` holds.
async fn wait_received(g: &GatewayHandle, what: &str, f: impl Fn(&[(usize, String)]) -> bool) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let got: Vec<(usize, String)> = g
                .received_ws_messages()
                .into_iter()
                .map(|m| (m.connection, m.text))
                .collect();
            if f(&got) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: {:?}", g.received_ws_messages()));
}

/// Fill one market order, so that there is an execution of today to
/// re-deliver: placed during a day, the order fills with the next day's
/// bar when that completes (midnight New York), and the clock stops two
/// hours later.
async fn one_execution(g: &GatewayHandle, c: &IbkrClient) {
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();
    let req = OrderRequest {
        client_order_id: "ws-dedup-1".into(),
        ..order(1, AAPL, Side::Buy, OrderType::Market)
    };
    let placed = c
        .place_orders(&acct, &OrdersBody::from_batch(&[req], &acct))
        .await
        .unwrap();
    assert!(
        matches!(placed, PlaceOutcome::Acknowledged(_)),
        "{placed:?}"
    );
    g.advance(Duration::from_secs(40 * 3600));
    assert_eq!(c.trades(Some(1)).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_drop_resubscribes_and_dedups_executions() {
    let g = start(|cfg| {
        cfg.prompts.clear();
        cfg.heartbeat = Duration::from_millis(50);
    })
    .await;
    g.record_requests(true);
    let c = client(&g);
    one_execution(&g, &c).await;
    // The last price the gateway has for AAPL now (the clock is paused).
    let rows = c.snapshot(&[AAPL], &["31", "84"]).await.unwrap();
    let last = cpapi::smd::SmdDecoder::new()
        .decode_value(&rows[0])
        .unwrap()
        .quote
        .last
        .expect("a last price");
    g.binary_websocket_frames(true);
    let cfg = WsConfig {
        // The drop is explicit: no silence on a loaded machine may look
        // like one.
        dead_after: Duration::from_secs(60),
        tic_every: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let (h, rx) = ws::spawn(c.clone(), cfg, 64);
    let mut rx = Messages { rx, executions: 0 };
    h.subscribe(Subscription::Trades {
        realtime_only: false,
        days: Some(1),
    });
    h.subscribe(Subscription::MarketData {
        conid: AAPL,
        fields: vec!["31".into(), "84".into()],
    });
    let m = rx
        .next_matching(|m| matches!(m, WsMessage::Event(Event::Quote(_))))
        .await;
    match m {
        // Read from a binary frame.
        WsMessage::Event(Event::Quote(q)) => assert_eq!(q.last, Some(last)),
        _ => unreachable!(),
    }
    // The socket drops after its first quote.
    g.drop_websockets();
    rx.next_matching(|m| matches!(m, WsMessage::Disconnected { .. }))
        .await;
    rx.next_matching(|m| matches!(m, WsMessage::Connected { reconnects: 1 }))
        .await;
    // The quote arrives again: the subscription was restored.
    rx.next_matching(|m| matches!(m, WsMessage::Event(Event::Quote(_))))
        .await;
    // Both subscriptions were sent on both connections.
    wait_received(&g, "smd and str on connections 0 and 1", |got| {
        [0, 1].iter().all(|idx| {
            got.iter()
                .any(|(i, t)| i == idx && t.starts_with("smd+265598+"))
                && got.iter().any(|(i, t)| i == idx && t.starts_with("str+"))
        })
    })
    .await;
    // The gateway answered `str` on the second connection with the same
    // execution before anything it sends later: a frame sent now arrives
    // after it.
    g.send_raw_ws("{fence");
    rx.next_matching(|m| matches!(m, WsMessage::Malformed { .. }))
        .await;
    // `tic` is sent.
    wait_received(&g, "tic", |got| got.iter().any(|(_, t)| t == "tic")).await;
    h.shutdown().await;
    // The execution was delivered on both connections, published once.
    rx.drain();
    assert_eq!(rx.executions, 1, "the execution published exactly once");
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_heartbeat_loss_is_detected() {
    let g = start(|cfg| cfg.heartbeat = Duration::from_millis(50)).await;
    // The first connection goes silent after its greeting.
    g.stop_heartbeats(true);
    let cfg = WsConfig {
        dead_after: Duration::from_millis(400),
        tic_every: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let (h, rx) = ws::spawn(client(&g), cfg, 64);
    let mut rx = Messages { rx, executions: 0 };
    rx.next_matching(|m| matches!(m, WsMessage::Connected { reconnects: 0 }))
        .await;
    let m = rx
        .next_matching(|m| matches!(m, WsMessage::Disconnected { .. }))
        .await;
    match m {
        WsMessage::Disconnected { reason } => assert!(reason.contains("dead"), "{reason}"),
        _ => unreachable!(),
    }
    g.stop_heartbeats(false);
    rx.next_matching(|m| matches!(m, WsMessage::Connected { reconnects: 1 }))
        .await;
    h.shutdown().await;
    assert!(g.websocket_connections() >= 2);
    g.shutdown().await;
}
