//! Shared helpers of the gateway tests: start a simulator on 127.0.0.1 and
//! talk to it with a real HTTP client and a real websocket.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures_util::{SinkExt, StreamExt};
use gateway_sim::{Gateway, GatewayConfig, GatewayHandle, PacingConfig};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// 2023-06-01 14:00 UTC: a third into the daily bar of both sample
/// contracts, with years of history behind it.
pub(crate) fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap()
}

/// A paused simulator (speed 0, time moves only through `advance`) without
/// pacing, on a free port.
pub(crate) async fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> GatewayHandle {
    let mut cfg = GatewayConfig {
        speed: 0.0,
        start: Some(start_time()),
        pacing: PacingConfig::off(),
        ..GatewayConfig::default()
    };
    tweak(&mut cfg);
    Gateway::start(cfg).await.expect("simulator starts")
}

pub(crate) struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub(crate) fn new(gw: &GatewayHandle) -> Self {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: gw.base_url(),
        }
    }

    async fn read(r: reqwest::Response) -> (StatusCode, Value) {
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        Self::read(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        Self::read(
            self.http
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        Self::read(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        Self::read(
            self.http
                .delete(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET that must answer 200.
    pub(crate) async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// POST that must answer 200.
    pub(crate) async fn ok_post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert_eq!(s, StatusCode::OK, "POST {path}: {v}");
        v
    }

    /// Snapshot after the pre-flight: the second request's answer.
    pub(crate) async fn snapshot(&self, conid: i64, fields: &str) -> Value {
        let path = format!("/iserver/marketdata/snapshot?conids={conid}&fields={fields}");
        self.ok(&path).await;
        self.ok(&path).await[0].clone()
    }
}

/// Open the websocket with the session's `api` cookie.
pub(crate) async fn connect_ws(gw: &GatewayHandle) -> Ws {
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("api={}", gw.session_token()).parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    ws
}

/// The next JSON text message, within `within`.
pub(crate) async fn next_json(ws: &mut Ws, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Wait for a message whose `topic` satisfies `pred`, skipping others.
pub(crate) async fn wait_topic(
    ws: &mut Ws,
    pred: impl Fn(&str) -> bool,
    within: Duration,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = next_json(ws, left).await?;
        if v.get("topic").and_then(Value::as_str).is_some_and(&pred) {
            return Some(v);
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .unwrap();
}

/// The account the simulator runs by default.
pub(crate) const ACCT: &str = "DU1234567";
pub(crate) const AAPL: i64 = 265598;
pub(crate) const IBM: i64 = 8314;
