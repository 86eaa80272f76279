//! `ibflow sim-gateway` end to end (issue 12): the real binary on a free
//! port of 127.0.0.1, spoken to over real HTTP and a real websocket.
//!
//! The HTTP and websocket clients here are a few lines over `std::net`
//! (one request per connection, `Connection: close`), so the tests need no
//! client library and see exactly the bytes the simulator sends, dropped
//! connections included (axum turns a panicking handler into a dropped
//! connection, which these clients report as an error, not a status).
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

#[path = "support/bin.rs"]
mod bin;

use bin::{free_port, http_support};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ACCT: &str = "DU1234567";
const AAPL: i64 = 265598;

/// A running `ibflow sim-gateway`; killed (by its own process id) on drop.
struct Sim {
    child: Child,
    port: u16,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Start the binary with `args` (after `sim-gateway --port P`) and wait
    /// until it answers `/tickle` (generous: the machine may be loaded).
    fn start(args: &[&str]) -> Sim {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(env!("CARGO_BIN_EXE_ibflow"))
                .args(["sim-gateway", "--port", &port.to_string()])
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn ibflow sim-gateway");
            let mut sim = Sim { child, port };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = sim.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if let Ok((200, _)) = sim.try_call("GET", "/tickle", None) {
                    return sim;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("ibflow sim-gateway did not start");
    }

    /// One request; the status and the body (JSON, or a JSON string of the
    /// text). An error when the connection failed or was dropped without
    /// an answer.
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Value)> {
        let path = if path.starts_with("/sim/") {
            path.to_owned()
        } else {
            format!("/v1/api{path}")
        };
        let (status, text) = http(self.port, method, &path, body)?;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, v))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        self.try_call(method, path, body.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e})"))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body))
    }

    /// Place one order; the answer.
    fn order(&self, order: Value) -> (u16, Value) {
        self.post(
            &format!("/iserver/account/{ACCT}/orders"),
            json!({ "orders": [order] }),
        )
    }

    /// Poll `f` until it gives a value, for up to `secs` seconds.
    fn wait_for<T>(&self, secs: u64, mut f: impl FnMut(&Sim) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(x) = f(self) {
                return Some(x);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    /// The AAPL position, once it is `want` (within `secs`).
    fn position_reaches(&self, want: f64, secs: u64) -> bool {
        self.wait_for(secs, |s| {
            let (st, v) = s.get(&format!("/portfolio/{ACCT}/positions/0"));
            (st == 200
                && v.as_array()?
                    .iter()
                    .any(|p| p["conid"] == AAPL && p["position"].as_f64() == Some(want)))
            .then_some(())
        })
        .is_some()
    }
}

/// A plain HTTP/1.1 request over a new connection; the status and body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let a = http_support::request(port, method, path, &[], body, Duration::from_secs(60))?;
    Ok((a.status, a.body))
}

/// A minimal websocket client: text frames out (masked), text frames in.
struct Ws {
    s: TcpStream,
}

impl Ws {
    fn connect(port: u16, token: &str) -> Ws {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let req = format!(
            "GET /v1/api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nCookie: api={token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        // The answer head byte by byte: a buffered reader could swallow the
        // first frames, which may arrive in the same packet.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.contains(" 101 "), "websocket upgrade refused: {head}");
        Ws { s }
    }

    fn send(&mut self, text: &str) {
        let data = text.as_bytes();
        let mut f = vec![0x81u8];
        match data.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        let mask = [1u8, 2, 3, 4];
        f.extend_from_slice(&mask);
        f.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    /// The next text (or binary) message; `None` when the socket closed or
    /// nothing came for `secs`.
    fn next(&mut self, secs: u64) -> Option<String> {
        self.s
            .set_read_timeout(Some(Duration::from_secs(secs)))
            .unwrap();
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).ok()?;
            let op = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut data = vec![0u8; usize::try_from(len).ok()?];
            self.s.read_exact(&mut data).ok()?;
            match op {
                0x1 | 0x2 => return Some(String::from_utf8_lossy(&data).into_owned()),
                0x8 => return None,
                _ => {}
            }
        }
    }

    /// The next message whose topic starts with `prefix`, within `secs`.
    fn topic(&mut self, prefix: &str, secs: u64) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let m = self.next(secs)?;
            let v: Value = serde_json::from_str(&m).unwrap_or(Value::Null);
            if v["topic"].as_str().is_some_and(|t| t.starts_with(prefix)) {
                return Some(v);
            }
        }
        None
    }
}

fn mkt(side: &str, quantity: &str) -> Value {
    // The quantity as raw JSON text: numbers beyond f64 stay exact.
    let q: Value = serde_json::from_str(quantity).unwrap_or(json!(quantity));
    json!({"conid": AAPL, "orderType": "MKT", "side": side, "tif": "DAY", "quantity": q})
}

/// Issue 12: one order of 10^27 shares was accepted, then panicked the
/// replay ticker when it filled and wedged the exchange for good, while
/// `/tickle` went on answering 200. Now it (and 10^20..10^25, beyond the
/// buying power of 1,000,000) is refused with the spec's order reject (200
/// `{"error": ...}`), and the exchange goes on filling ordinary orders.
#[test]
fn absurd_orders_are_refused_and_the_exchange_keeps_trading() {
    let sim = Sim::start(&["--no-pacing", "--speed", "86400"]);
    for q in [
        "1000000000000000000000000000",
        "100000000000000000000000",
        "100000000000000000000",
        "100000000",
    ] {
        let (st, v) = sim.order(mkt("BUY", q));
        assert_eq!(st, 200, "{q}: {v}");
        let why = v["error"].as_str().unwrap_or_else(|| panic!("{q}: {v}"));
        assert!(
            why.contains("buying power") || why.contains("beyond the limit"),
            "{q}: {why}"
        );
    }
    // Limit and stop prices beyond the limits are refused too.
    let (st, v) = sim.order(json!({"conid": AAPL, "orderType": "LMT", "side": "SELL",
        "tif": "DAY", "quantity": 1, "price": 1e20}));
    assert_eq!(st, 200);
    assert!(
        v["error"].as_str().unwrap().contains("beyond the limit"),
        "{v}"
    );
    // An ordinary order fills: the exchange is not wedged.
    let (st, v) = sim.order(mkt("BUY", "10"));
    assert_eq!(st, 200, "{v}");
    assert!(v[0]["order_id"].is_string(), "{v}");
    assert!(
        sim.position_reaches(10.0, 60),
        "the 10-share order never filled: the exchange is wedged"
    );
    // And the next one too (a wedged ticker fails on the first bar after).
    let (_, v) = sim.order(mkt("BUY", "5"));
    assert!(v[0]["order_id"].is_string(), "{v}");
    assert!(
        sim.position_reaches(15.0, 60),
        "the second order never filled"
    );
    // Selling more than held opens a short, which buying power bounds too.
    let (_, v) = sim.order(mkt("SELL", "10000000"));
    assert!(v["error"].as_str().unwrap().contains("buying power"), "{v}");
    // Closing never needs buying power.
    let (_, v) = sim.order(mkt("SELL", "15"));
    assert!(v[0]["order_id"].is_string(), "{v}");
    assert!(sim.position_reaches_flat(60), "closing order never filled");
}

impl Sim {
    fn position_reaches_flat(&self, secs: u64) -> bool {
        self.wait_for(secs, |s| {
            let (st, v) = s.get(&format!("/portfolio/{ACCT}/positions/0"));
            (st == 200 && !v.as_array()?.iter().any(|p| p["conid"] == AAPL)).then_some(())
        })
        .is_some()
    }
}

/// Whatif with a quantity or price near `Decimal::MAX` panicked its
/// handler (a dropped connection); history with `period=300000y` too. Now
/// each gets an answer: whatif the order reject, history 400.
#[test]
fn whatif_and_history_answer_absurd_numbers() {
    let sim = Sim::start(&["--no-pacing", "--speed", "0", "--start", "2023-06-01"]);
    let whatif = format!("/iserver/account/{ACCT}/orders/whatif");
    let huge = "79228162514264337593543950335";
    for order in [
        format!(
            r#"{{"conid":{AAPL},"orderType":"MKT","side":"BUY","tif":"DAY","quantity":{huge}}}"#
        ),
        format!(
            r#"{{"conid":{AAPL},"orderType":"LMT","side":"BUY","tif":"DAY","quantity":10,"price":{huge}}}"#
        ),
        format!(
            r#"{{"conid":{AAPL},"orderType":"LMT","side":"BUY","tif":"DAY","quantity":"{huge}","price":"{huge}"}}"#
        ),
        format!(
            r#"{{"conid":{AAPL},"orderType":"LMT","side":"BUY","tif":"DAY","quantity":1000000000,"price":1000000000}}"#
        ),
    ] {
        let body = format!(r#"{{"orders":[{order}]}}"#);
        let (st, v) = sim
            .try_call("POST", &whatif, Some(&body))
            .unwrap_or_else(|e| panic!("whatif {order}: no answer ({e})"));
        assert!(st == 200 || st == 400, "{order}: {st} {v}");
        assert!(v["error"].is_string(), "{order}: {v}");
    }
    // An ordinary whatif still previews, with no error.
    let (st, v) = sim.post(&whatif, json!({"orders": [mkt("BUY", "10")]}));
    assert_eq!(st, 200, "{v}");
    assert!(v["error"].is_null(), "{v}");
    assert!(
        v["amount"]["amount"]
            .as_str()
            .unwrap()
            .contains("10 Shares"),
        "{v}"
    );

    // The first /hmds/history call of a session is the 404 page.
    let _ = sim.get(&format!("/hmds/history?conid={AAPL}&period=1d&bar=1d"));
    for period in ["300000y", "99999999y", "9999999999999d", "800w", "16y"] {
        for path in ["/hmds/history", "/iserver/marketdata/history"] {
            let (st, v) = sim.get(&format!("{path}?conid={AAPL}&period={period}&bar=1d"));
            assert_eq!(st, 400, "{path} {period}: {v}");
            assert!(v["error"].as_str().unwrap().contains("period"), "{v}");
        }
    }
    // An absurd bar size is served as the data's own bars (found by the
    // fuzz test: a bar of 856969073 years).
    for path in ["/hmds/history", "/iserver/marketdata/history"] {
        let (st, v) = sim.get(&format!(
            "{path}?conid={AAPL}&period=235052S&bar=856969073y"
        ));
        assert_eq!(st, 200, "{path}: {v}");
    }
    // The largest the spec allows is served.
    let (st, v) = sim.get(&format!(
        "/iserver/marketdata/history?conid={AAPL}&period=15y&bar=1w"
    ));
    assert_eq!(st, 200, "{v}");
    assert!(!v["data"].as_array().unwrap().is_empty(), "{v}");
    let (st, _) = sim.get("/tickle");
    assert_eq!(st, 200);
}

/// `smh+conid+{"period":"99999999y"}` panicked the socket task: the socket
/// went dead. Now it is ignored (and logged) and the same socket answers
/// the next, valid `smh`.
#[test]
fn websocket_survives_an_absurd_history_period() {
    let sim = Sim::start(&["--no-pacing", "--speed", "0"]);
    let (_, tickle) = sim.get("/tickle");
    let token = tickle["session"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect(sim.port, &token);
    ws.send(&format!(
        r#"smh+{AAPL}+{{"period":"99999999y","bar":"1d","outsideRth":false}}"#
    ));
    ws.send(&format!(r#"smh+{AAPL}+{{"period":"300000y","bar":"1d"}}"#));
    ws.send(&format!(r#"smh+{AAPL}+{{"period":"1m","bar":"1d"}}"#));
    let h = ws
        .topic("smh", 30)
        .expect("the socket answers a valid smh after the absurd ones");
    assert_eq!(h["topic"], format!("smh+{AAPL}"));
    assert_eq!(h["timePeriod"], "1m");
}

/// With a reused store, execution ids restarted at `sim.1` and order ids
/// at 1000000000 in every run, so a later run's trades collided with an
/// earlier run's. Two simulators started one after the other never hand
/// out the same ids; order ids stay numeric strings, as on the real
/// gateway.
#[test]
fn ids_are_unique_across_runs() {
    let run = || {
        let sim = Sim::start(&["--no-pacing", "--speed", "86400"]);
        let mut order_ids = Vec::new();
        for _ in 0..2 {
            let (_, v) = sim.order(mkt("BUY", "1"));
            let id = v[0]["order_id"].as_str().unwrap().to_owned();
            assert!(id.parse::<u64>().is_ok(), "order id {id} is not numeric");
            order_ids.push(id);
        }
        let execs = sim
            .wait_for(60, |s| {
                let (_, v) = s.get("/iserver/account/trades?days=7");
                let ids: Vec<String> = v
                    .as_array()?
                    .iter()
                    .filter_map(|t| t["execution_id"].as_str().map(str::to_owned))
                    .collect();
                (ids.len() >= 2).then_some(ids)
            })
            .expect("both orders fill");
        (order_ids, execs)
    };
    let (orders_a, execs_a) = run();
    let (orders_b, execs_b) = run();
    for id in &orders_b {
        assert!(!orders_a.contains(id), "order id {id} again: {orders_a:?}");
    }
    for id in &execs_b {
        assert!(
            !execs_a.contains(id),
            "execution id {id} again: {execs_a:?}"
        );
    }
    // A later run's order ids are above the earlier run's.
    let max_a = orders_a.iter().map(|i| i.parse::<u64>().unwrap()).max();
    let min_b = orders_b.iter().map(|i| i.parse::<u64>().unwrap()).min();
    assert!(min_b > max_a, "{orders_a:?} then {orders_b:?}");
}

/// Without `--admin` the admin paths are unknown paths (404), and nothing
/// about the CP API changes.
#[test]
fn admin_api_is_off_without_the_flag() {
    let sim = Sim::start(&["--no-pacing", "--speed", "0"]);
    for path in [
        "/sim/admin",
        "/sim/admin/faults/clear",
        "/sim/admin/restart",
    ] {
        let (st, _) = sim.call("POST", path, Some(json!({})));
        assert_eq!(st, 404, "{path}");
    }
    let (st, _) = sim.get("/sim/admin");
    assert_eq!(st, 404);
}

/// `--admin`: a 429 injected on a path is what a client sees there (for
/// `times` requests, or until cleared); an expired session says
/// unauthenticated on `/tickle` and `/iserver/auth/status` until
/// `ssodh/init`; delays hold answers; dropping websockets closes them.
#[test]
fn admin_api_injects_faults_a_client_sees() {
    let sim = Sim::start(&["--no-pacing", "--speed", "0", "--admin"]);
    let (st, v) = sim.get("/sim/admin");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["authenticated"], true);

    // 429 until cleared.
    let (st, v) = sim.post(
        "/sim/admin/faults/status",
        json!({"path": "/iserver/accounts", "status": 429}),
    );
    assert_eq!(st, 200, "{v}");
    for _ in 0..3 {
        let (st, v) = sim.get("/iserver/accounts");
        assert_eq!(st, 429, "{v}");
        assert_eq!(v["error"], "Too many requests");
    }
    let (st, _) = sim.get("/tickle");
    assert_eq!(st, 200, "other paths are not affected");
    let (st, _) = sim.post("/sim/admin/faults/clear", json!({}));
    assert_eq!(st, 200);
    let (st, v) = sim.get("/iserver/accounts");
    assert_eq!(st, 200, "{v}");

    // A 503 for two requests only.
    sim.post(
        "/sim/admin/faults/status",
        json!({"path": "/iserver/accounts", "status": 503, "message": "down", "times": 2}),
    );
    assert_eq!(sim.get("/iserver/accounts").0, 503);
    assert_eq!(sim.get("/iserver/accounts").0, 503);
    assert_eq!(sim.get("/iserver/accounts").0, 200);

    // Nonsense is refused, not applied.
    let (st, _) = sim.post(
        "/sim/admin/faults/status",
        json!({"path": "/x", "status": 200}),
    );
    assert_eq!(st, 400);
    let (st, _) = sim.post("/sim/admin/faults/status", json!({"status": 500}));
    assert_eq!(st, 400);
    let (st, _) = sim.call("POST", "/sim/admin/faults/delay", None);
    assert_eq!(st, 400);
    assert_eq!(sim.get("/iserver/accounts").0, 200);

    // A delay holds the answer (a lower bound only: a loaded machine is
    // slower, never faster).
    sim.post(
        "/sim/admin/faults/delay",
        json!({"path": "/tickle", "ms": 1500}),
    );
    let t = Instant::now();
    assert_eq!(sim.get("/tickle").0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
    sim.post("/sim/admin/faults/clear", json!({}));

    // Session expiry.
    let (st, _) = sim.post("/sim/admin/session/expire", json!({}));
    assert_eq!(st, 200);
    let (_, tickle) = sim.get("/tickle");
    assert_eq!(
        tickle["iserver"]["authStatus"]["authenticated"], false,
        "{tickle}"
    );
    let (_, status) = sim.post("/iserver/auth/status", json!({}));
    assert_eq!(status["authenticated"], false, "{status}");
    assert_eq!(sim.get("/iserver/accounts").0, 401);
    sim.post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": true}),
    );
    let (_, status) = sim.post("/iserver/auth/status", json!({}));
    assert_eq!(status["authenticated"], true, "{status}");

    // Dropping websockets closes them.
    let token = tickle["session"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect(sim.port, &token);
    assert!(ws.topic("sts", 30).is_some(), "the socket says hello");
    sim.post("/sim/admin/websockets/drop", json!({}));
    let mut closed = false;
    for _ in 0..100 {
        if ws.next(10).is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the websocket was not closed");

    // The daily reset: sockets close, the session times out.
    let mut ws = Ws::connect(sim.port, &token);
    assert!(ws.topic("sts", 30).is_some());
    sim.post("/sim/admin/daily-reset", json!({}));
    assert!(
        (0..100).any(|_| ws.next(10).is_none()),
        "the websocket survived the daily reset"
    );
    let (_, status) = sim.post("/iserver/auth/status", json!({}));
    assert_eq!(status["authenticated"], false, "{status}");
}

/// `--admin` restart: connections close, the port refuses for a while,
/// then serves again with a new session; orders are kept (they are the
/// venue's).
#[test]
fn admin_restart_keeps_orders_and_renews_the_session() {
    let sim = Sim::start(&["--no-pacing", "--speed", "0", "--admin"]);
    let (_, before) = sim.get("/tickle");
    let (_, placed) = sim.order(json!({"conid": AAPL, "orderType": "LMT", "price": 1,
        "side": "BUY", "tif": "GTC", "quantity": 1}));
    // A limit far from the market asks first: confirm.
    let placed = if let Some(id) = placed[0]["id"].as_str() {
        sim.post(&format!("/iserver/reply/{id}"), json!({"confirmed": true}))
            .1
    } else {
        placed
    };
    let order_id = placed[0]["order_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed}"))
        .to_owned();
    let (st, v) = sim.post("/sim/admin/restart", json!({"down_ms": 500}));
    assert_eq!(st, 200, "{v}");
    let after = sim
        .wait_for(30, |s| match s.try_call("GET", "/tickle", None) {
            Ok((200, v)) => Some(v),
            _ => None,
        })
        .expect("the simulator serves again after the restart");
    assert_ne!(after["session"], before["session"], "a new session token");
    // The first live-orders call of a session is the pre-flight.
    let _ = sim.get("/iserver/account/orders");
    let (_, live) = sim.get("/iserver/account/orders");
    let ids: Vec<String> = live["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].to_string().trim_matches('"').to_owned())
        .collect();
    assert!(ids.contains(&order_id), "{order_id} not in {live}");
}

/// `--ntf-prompt-above`: a larger order is acknowledged, held
/// (`PreSubmitted`, not filling while days of replay pass) behind an `ntf`
/// server prompt on the websocket, and transmitted by answering it `Yes`
/// through `POST /iserver/notification`; a wrong answer is a 400.
#[test]
fn ntf_prompt_holds_a_large_order_until_answered() {
    let sim = Sim::start(&[
        "--no-pacing",
        "--speed",
        "86400",
        "--ntf-prompt-above",
        "100",
    ]);
    let (_, tickle) = sim.get("/tickle");
    let mut ws = Ws::connect(sim.port, tickle["session"].as_str().unwrap());
    assert!(ws.topic("sts", 30).is_some(), "the socket says hello");
    let (st, v) = sim.order(mkt("BUY", "500"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v[0]["order_status"], "PreSubmitted", "{v}");
    let id = v[0]["order_id"].as_str().unwrap().to_owned();
    let ntf = ws.topic("ntf", 30).expect("an ntf prompt");
    let args = &ntf["args"];
    assert_eq!(args["id"], "o10082", "{ntf}");
    assert_eq!(args["options"], json!(["Yes", "No"]), "{ntf}");
    assert_eq!(
        args["orderId"].as_i64().map(|i| i.to_string()),
        Some(id.clone())
    );
    let req_id = args["reqId"]
        .as_str()
        .expect("reqId is a string")
        .to_owned();

    // Several replay days pass: still held, nothing bought.
    std::thread::sleep(Duration::from_secs(3));
    let _ = sim.get("/iserver/account/orders");
    let (_, live) = sim.get("/iserver/account/orders");
    let status = live["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["orderId"].to_string().trim_matches('"') == id)
        .map(|o| o["status"].clone());
    assert_eq!(status, Some(json!("PreSubmitted")), "{live}");
    assert!(
        !sim.position_reaches(500.0, 1),
        "a held order does not fill"
    );

    let order_id: i64 = id.parse().unwrap();
    let (st, v) = sim.post(
        "/iserver/notification",
        json!({"orderId": order_id, "reqId": req_id, "text": "Perhaps"}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let (st, v) = sim.post(
        "/iserver/notification",
        json!({"orderId": order_id, "reqId": req_id, "text": "Yes"}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(v.is_string(), "a status text: {v}");
    assert!(sim.position_reaches(500.0, 60), "the answered order fills");
}

/// `--reset-region` on the replay clock: at a replay day per second the
/// midnight comes within seconds, after a `blt` bulletin; the websocket
/// closes, the session times out until `ssodh/init`, and `GET /sim/admin`
/// counts the resets and names the next one.
#[test]
fn sim_gateway_resets_at_replay_midnight() {
    let sim = Sim::start(&[
        "--no-pacing",
        "--speed",
        "86400",
        "--admin",
        "--reset-region",
        "america",
        "--reset-warning",
        "1h",
    ]);
    let (_, tickle) = sim.get("/tickle");
    let mut ws = Ws::connect(sim.port, tickle["session"].as_str().unwrap());
    let blt = ws.topic("blt", 60).expect("a bulletin before the reset");
    assert!(
        blt["args"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("00:00 US/Eastern")),
        "{blt}"
    );
    assert!(
        (0..100).any(|_| ws.next(10).is_none()),
        "the websocket survived the reset"
    );
    let state = sim
        .wait_for(60, |s| {
            let (_, v) = s.get("/sim/admin");
            (v["resets"].as_u64() >= Some(1)).then_some(v)
        })
        .expect("a reset is counted");
    assert!(
        state["next_reset"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{state}"
    );
    let (_, status) = sim.post("/iserver/auth/status", json!({}));
    assert_eq!(status["authenticated"], false, "{status}");
    let (st, init) = sim.post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": true}),
    );
    assert_eq!(
        (st, init["authenticated"].clone()),
        (200, json!(true)),
        "{init}"
    );
}

/// `--session-max-age` shows in `GET /sim/admin`; `--help` names the order
/// prompts a bot must confirm; bad schedule flags are refused at start.
#[test]
fn session_flags_and_prompt_help() {
    let sim = Sim::start(&[
        "--no-pacing",
        "--speed",
        "0",
        "--admin",
        "--start",
        "2023-06-01T14:00:00Z",
        "--session-max-age",
        "24h",
    ]);
    let (_, v) = sim.get("/sim/admin");
    assert_eq!(v["session_expires_at"], "2023-06-02T14:00:00.000Z", "{v}");
    assert_eq!(v["next_reset"], Value::Null, "no reset unless asked for");
    assert_eq!(v["resets"], 0);

    let help = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(["sim-gateway", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for id in [
        "o163",
        "o354",
        "o10331",
        "o10082",
        "--reset-region",
        "--session-max-age",
    ] {
        assert!(text.contains(id), "--help does not name {id}:\n{text}");
    }

    for bad in [
        ["--reset-region", "mars"],
        ["--session-max-age", "soon"],
        ["--ntf-prompt-above", "-5"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
            .args(["sim-gateway", "--port", &free_port().to_string()])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was accepted");
    }
}
