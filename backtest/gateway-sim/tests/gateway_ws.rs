//! The simulator's websocket over a real connection on 127.0.0.1.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn upgrade_needs_the_session_cookie() {
    let gw = start(|_| {}).await;
    assert!(tokio_tungstenite::connect_async(gw.ws_url()).await.is_err());
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", "api=wrong".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    // The spec's Python example sends the tickle JSON as the cookie value.
    let mut req = gw.ws_url().into_client_request().unwrap();
    let v = format!("api={{\"session\":\"{}\"}}", gw.session_token());
    req.headers_mut().insert("cookie", v.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn hello_heartbeat_and_garbage_tolerance() {
    let gw = start(|c| c.heartbeat = Duration::from_millis(200)).await;
    let mut ws = connect_ws(&gw).await;
    let sys = next_json(&mut ws, T).await.unwrap();
    assert_eq!(sys, json!({"topic": "system", "success": "simuser1"}));
    let act = next_json(&mut ws, T).await.unwrap();
    assert_eq!(act["args"]["accounts"], json!([ACCT]));
    let sts = next_json(&mut ws, T).await.unwrap();
    assert_eq!(
        sts,
        json!({"topic": "sts", "args": {"authenticated": true}})
    );
    for junk in [
        "",
        "xyz",
        "smd",
        "smd+abc+{",
        "smd+999999+{}",
        "str+{not json",
        "sor+",
        "+++",
        "tic",
        "umd+",
        "\u{1F600}",
    ] {
        send(&mut ws, junk).await;
    }
    let hb = wait_topic(&mut ws, |t| t == "system", T).await.unwrap();
    assert!(hb["hb"].as_i64().unwrap() > 1_600_000_000_000, "{hb}");
    // Still serving after the garbage.
    send(&mut ws, r#"smd+8314+{"fields":["31"]}"#).await;
    let md = wait_topic(&mut ws, |t| t == "smd+8314", T).await.unwrap();
    assert!(md["31"].is_string());
}

#[tokio::test]
async fn smd_sends_deltas_as_the_clock_moves() {
    let gw = start(|c| c.tick = Duration::from_millis(20)).await;
    let mut ws = connect_ws(&gw).await;
    send(
        &mut ws,
        r#"smd+265598+{"fields":["31","84","86","55","7295"]}"#,
    )
    .await;
    let first = wait_topic(&mut ws, |t| t == "smd+265598", T).await.unwrap();
    for f in ["31", "84", "86", "55", "7295"] {
        assert!(first[f].is_string(), "{f} in {first}");
    }
    let mut deltas: Vec<Value> = Vec::new();
    for _ in 0..5 {
        gw.advance(Duration::from_secs(2 * 3600));
        if let Some(m) = wait_topic(&mut ws, |t| t == "smd+265598", Duration::from_secs(2)).await {
            deltas.push(m);
        }
    }
    assert!(!deltas.is_empty(), "the quote moved");
    for d in &deltas {
        // Symbol and open do not change within the bar: never resent.
        assert!(d.get("55").is_none() && d.get("7295").is_none(), "{d}");
        assert!(
            d.get("31").is_some() || d.get("84").is_some() || d.get("86").is_some(),
            "{d}"
        );
    }
    send(&mut ws, "umd+265598+{}").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.advance(Duration::from_secs(6 * 3600));
    assert!(
        wait_topic(&mut ws, |t| t == "smd+265598", Duration::from_millis(500))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn orders_and_trades_stream() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, "sor+{}").await;
    send(&mut ws, "str+{}").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.ok_post(
        &format!("/iserver/account/{ACCT}/orders"),
        json!({"orders": [{"conid": IBM, "cOID": "ws-1", "orderType": "MKT", "side": "SELL", "tif": "DAY", "quantity": 3}]}),
    )
    .await;
    let sub = wait_topic(&mut ws, |t| t == "sor", T).await.unwrap();
    assert_eq!(sub["args"][0]["status"], "Submitted");
    assert_eq!(sub["args"][0]["order_ref"], "ws-1");
    gw.advance(Duration::from_secs(2 * 86_400));
    let trade = wait_topic(&mut ws, |t| t == "str", T).await.unwrap();
    assert_eq!(
        (
            trade["args"][0]["side"].clone(),
            trade["args"][0]["size"].clone()
        ),
        (json!("S"), json!(3.0))
    );
    let filled = wait_topic(&mut ws, |t| t == "sor", T).await.unwrap();
    assert_eq!(filled["args"][0]["status"], "Filled");
    // A second socket asking for past trades gets them at once.
    let mut ws2 = connect_ws(&gw).await;
    send(&mut ws2, r#"str+{"days":7}"#).await;
    let past = wait_topic(&mut ws2, |t| t == "str", T).await.unwrap();
    assert_eq!(past["args"][0]["order_ref"], "ws-1");
    // utr/uor stop the streams.
    send(&mut ws, "uor+{}").await;
    send(&mut ws, "utr+{}").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.ok_post(
        &format!("/iserver/account/{ACCT}/orders"),
        json!({"orders": [{"conid": IBM, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 3}]}),
    )
    .await;
    assert!(wait_topic(
        &mut ws,
        |t| t == "sor" || t == "str",
        Duration::from_millis(500)
    )
    .await
    .is_none());
}

#[tokio::test]
async fn session_changes_reach_the_socket() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    gw.trigger_competing_session();
    let sts = wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    assert_eq!(sts["args"]["authenticated"], false);
    c.ok_post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": true}),
    )
    .await;
    let sts = wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    assert_eq!(sts["args"]["authenticated"], true);
    // Logout closes the socket.
    c.ok_post("/logout", json!({})).await;
    let deadline = tokio::time::Instant::now() + T;
    while next_json(&mut ws, T).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socket stays open after logout"
        );
    }
}

#[tokio::test]
async fn tic_keeps_the_session_alive() {
    let gw = start(|c| c.idle_timeout = Duration::from_millis(1000)).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    // 1.5 s of tics, well past the idle timeout.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        send(&mut ws, "tic").await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = c.ok_post("/iserver/auth/status", json!({})).await;
    assert_eq!(s["authenticated"], true);
}

#[tokio::test]
async fn injected_faults() {
    let gw = start(|c| c.heartbeat = Duration::from_millis(100)).await;
    let c = Client::new(&gw);
    // Failing and slow paths.
    gw.fail_path("/iserver/account", 503);
    let (status, body) = c.get("/iserver/account/orders").await;
    assert_eq!(status.as_u16(), 503);
    assert!(body["error"].as_str().unwrap().contains("injected"));
    c.ok("/iserver/secdef/search?symbol=AAPL").await;
    gw.delay_path("/tickle", Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    c.ok("/tickle").await;
    assert!(t0.elapsed() >= Duration::from_millis(300));
    gw.clear_faults();
    c.ok("/iserver/account/orders").await;
    // Heartbeats stop and resume; malformed frames arrive as sent.
    let mut ws = connect_ws(&gw).await;
    wait_topic(&mut ws, |t| t == "system", T).await.unwrap();
    gw.stop_heartbeats(true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    while next_json(&mut ws, Duration::from_millis(50))
        .await
        .is_some()
    {}
    assert!(
        wait_topic(&mut ws, |t| t == "system", Duration::from_millis(400))
            .await
            .is_none()
    );
    gw.stop_heartbeats(false);
    assert!(wait_topic(&mut ws, |t| t == "system", T).await.is_some());
    gw.send_raw_ws("{not json");
    let raw = loop {
        match futures_util::StreamExt::next(&mut ws).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))
                if !t.as_str().starts_with("{\"topic\"") =>
            {
                break t
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    };
    assert_eq!(raw.as_str(), "{not json");
    // Dropped sockets close; the session survives and a new socket works.
    gw.drop_websockets();
    let deadline = tokio::time::Instant::now() + T;
    while next_json(&mut ws, T).await.is_some() {
        assert!(tokio::time::Instant::now() < deadline);
    }
    let mut ws2 = connect_ws(&gw).await;
    assert!(wait_topic(&mut ws2, |t| t == "sts", T).await.is_some());
}

#[tokio::test]
async fn tls_serves_https_and_wss_with_a_self_signed_certificate() {
    let gw = start(|c| c.tls = true).await;
    assert!(gw.base_url().starts_with("https://"));
    assert!(gw.ws_url().starts_with("wss://"));
    let der = gw.certificate_der().unwrap().to_vec();
    // Plain HTTP against the TLS port fails; HTTPS trusting the certificate works.
    let plain = reqwest::get(format!("http://{}/v1/api/tickle", gw.addr())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_der(&der).unwrap())
        .build()
        .unwrap();
    let t: Value = http
        .get(format!("{}/tickle", gw.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["session"], gw.session_token());
    // Without trusting it, verification fails, as against the real gateway.
    assert!(reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .unwrap()
        .get(format!("{}/tickle", gw.base_url()))
        .send()
        .await
        .is_err());
    // WSS with the same certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("api={}", gw.session_token()).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            cfg,
        ))),
    )
    .await
    .unwrap();
    let sys = next_json(&mut ws, T).await.unwrap();
    assert_eq!(sys["topic"], "system");
}

#[tokio::test]
async fn restart_keeps_state() {
    let mut gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let placed = c
        .ok_post(
            &format!("/iserver/account/{ACCT}/orders"),
            json!({"orders": [{"conid": AAPL, "cOID": "keep", "orderType": "LMT", "price": 1, "side": "BUY", "tif": "GTC", "quantity": 1}]}),
        )
        .await;
    let id = placed[0]["order_id"].as_str().unwrap().to_owned();
    let token = gw.session_token();
    let mut ws = connect_ws(&gw).await;
    wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    let base = gw.base_url();
    let probe = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        reqwest::Client::new()
            .get(format!("{base}/tickle"))
            .send()
            .await
            .is_err()
    });
    gw.restart(Duration::from_millis(400)).await.unwrap();
    assert!(probe.await.unwrap(), "the port refuses while down");
    // The old socket was closed.
    let deadline = tokio::time::Instant::now() + T;
    while next_json(&mut ws, T).await.is_some() {
        assert!(tokio::time::Instant::now() < deadline);
    }
    // Same session, same orders, websockets work again.
    assert_eq!(gw.session_token(), token);
    let c = Client::new(&gw);
    let st = c.ok(&format!("/iserver/account/order/status/{id}")).await;
    assert_eq!(st["order_status"], "Submitted");
    let mut ws = connect_ws(&gw).await;
    assert!(wait_topic(&mut ws, |t| t == "sts", T).await.is_some());
}

#[tokio::test]
async fn smh_answers_history_once() {
    let gw = start(|_| {}).await;
    let mut ws = connect_ws(&gw).await;
    send(
        &mut ws,
        r#"smh+265598+{"period":"1m","bar":"1d","outsideRth":false}"#,
    )
    .await;
    let h = wait_topic(&mut ws, |t| t == "smh+265598", T).await.unwrap();
    assert_eq!(h["symbol"], "AAPL");
    let n = h["data"].as_array().unwrap().len();
    assert!(n >= 19, "{n} bars");
    assert_eq!(h["points"], json!(n - 1));
    send(&mut ws, r#"smh+265598+{"period":"nonsense"}"#).await;
    send(&mut ws, "umh+1").await;
    assert!(wait_topic(
        &mut ws,
        |t| t.starts_with("smh"),
        Duration::from_millis(400)
    )
    .await
    .is_none());
}
