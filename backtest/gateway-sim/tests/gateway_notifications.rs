//! Server prompts by `ntf` and `POST /iserver/notification`, the admin
//! API's `ntf` and `blt`, and the replay clock's schedule: the daily reset
//! with its warning bulletin and the session's maximum age; the trading
//! schedule against the replay clock (the venue's clock), holidays
//! included. Everything over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cpapi::messages::{ServerPrompt, TradingSchedule};
use gateway_sim::{GatewayHandle, ResetRegion, NTF_PROMPT_ID};
use reqwest::StatusCode;
use rust_decimal_macros::dec;
use serde_json::{json, Value};

use support::*;

const WAIT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(86_400);

fn mkt(quantity: u32) -> Value {
    json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "GTC",
        "quantity": quantity}]})
}

/// Place one order; its id and ack status.
async fn place(c: &Client, quantity: u32) -> (String, String) {
    let v = c
        .ok_post(&format!("/iserver/account/{ACCT}/orders"), mkt(quantity))
        .await;
    (
        v[0]["order_id"].as_str().unwrap().to_owned(),
        v[0]["order_status"].as_str().unwrap().to_owned(),
    )
}

/// The status of order `id` in the live orders list (after its pre-flight).
async fn live_status(c: &Client, id: &str) -> Option<String> {
    c.ok("/iserver/account/orders").await;
    let v = c.ok("/iserver/account/orders").await;
    v["orders"]
        .as_array()?
        .iter()
        .find(|o| o["orderId"].to_string().trim_matches('"') == id)
        .and_then(|o| o["status"].as_str().map(str::to_owned))
}

async fn aapl_position(c: &Client) -> f64 {
    let v = c.ok(&format!("/portfolio/{ACCT}/positions/0")).await;
    v.as_array()
        .and_then(|a| a.iter().find(|p| p["conid"] == AAPL))
        .and_then(|p| p["position"].as_f64())
        .unwrap_or(0.0)
}

/// Whether a `sor` update gives order `id` the `status` within [`WAIT`].
async fn order_update(ws: &mut Ws, id: &str, status: &str) -> bool {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(m) = wait_topic(ws, |t| t == "sor", WAIT).await {
            let hit =
                m["args"].as_array().into_iter().flatten().any(|o| {
                    o["orderId"].to_string().trim_matches('"') == id && o["status"] == status
                });
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    found == Ok(true)
}

/// The next `ntf` prompt on `ws`, read with the client's wire type.
async fn next_prompt(ws: &mut Ws) -> ServerPrompt {
    let m = wait_topic(ws, |t| t == "ntf", WAIT).await.expect("an ntf");
    assert!(m["args"]["orderId"].is_i64(), "orderId is an int: {m}");
    assert!(m["args"]["reqId"].is_string(), "reqId is a string: {m}");
    ServerPrompt::from_args(&m["args"]).expect("the ntf is a prompt")
}

#[tokio::test]
async fn an_order_above_the_threshold_is_held_until_answered_yes() {
    let gw = start(|c| c.ntf_prompt_above = Some(dec!(100))).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, "sor+{}").await;

    // At the threshold: no prompt, working at once.
    let (small, st) = place(&c, 100).await;
    assert_eq!(st, "Submitted");

    let (id, st) = place(&c, 500).await;
    assert_eq!(st, "PreSubmitted", "acknowledged, held");
    let p = next_prompt(&mut ws).await;
    assert_eq!(p.id, NTF_PROMPT_ID);
    assert_eq!(p.order_id, id);
    assert_eq!(p.options, ["Yes", "No"]);
    assert!(p.text.contains("BUY 500 AAPL"), "{}", p.text);
    assert_eq!(live_status(&c, &id).await.as_deref(), Some("PreSubmitted"));

    // Unanswered, the order does not work: two days pass, only the small
    // order fills.
    gw.advance(2 * DAY);
    assert_eq!(live_status(&c, &small).await.as_deref(), Some("Filled"));
    assert_eq!(live_status(&c, &id).await.as_deref(), Some("PreSubmitted"));
    assert_eq!(aapl_position(&c).await, 100.0);

    // Wrong answers change nothing.
    let order_id: i64 = id.parse().unwrap();
    for bad in [
        json!({"orderId": order_id, "reqId": "nope", "text": "Yes"}),
        json!({"orderId": order_id + 1, "reqId": p.req_id, "text": "Yes"}),
        json!({"orderId": order_id, "reqId": p.req_id, "text": "Maybe"}),
        json!({"orderId": order_id, "reqId": p.req_id, "text": "yes"}),
        json!({"orderId": "not a number", "reqId": p.req_id, "text": "Yes"}),
        json!({"reqId": p.req_id, "text": "Yes"}),
    ] {
        let (s, v) = c.post("/iserver/notification", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }
    assert_eq!(live_status(&c, &id).await.as_deref(), Some("PreSubmitted"));

    // Yes: released; it fills with the next bar.
    let (s, v) = c
        .post(
            "/iserver/notification",
            json!({"orderId": order_id, "reqId": p.req_id, "text": p.yes()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.is_string(), "the answer is a status text: {v}");
    assert!(
        order_update(&mut ws, &id, "Submitted").await,
        "sor says Submitted"
    );
    // Released on Saturday: it fills with Monday's bar, complete on Tuesday.
    gw.advance(3 * DAY);
    assert_eq!(live_status(&c, &id).await.as_deref(), Some("Filled"));
    assert_eq!(aapl_position(&c).await, 600.0);

    // Answered once: a second answer finds no prompt.
    let (s, _) = c
        .post(
            "/iserver/notification",
            json!({"orderId": order_id, "reqId": p.req_id, "text": "Yes"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn no_cancels_the_held_order() {
    let gw = start(|c| c.ntf_prompt_above = Some(dec!(10))).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, "sor+{}").await;
    let (id, _) = place(&c, 50).await;
    let p = next_prompt(&mut ws).await;
    let no = p.no().unwrap().to_owned();
    let (s, v) = c
        .post(
            "/iserver/notification",
            json!({"orderId": id.parse::<i64>().unwrap(), "reqId": p.req_id, "text": no}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.is_string(), "{v}");
    assert!(
        order_update(&mut ws, &id, "Cancelled").await,
        "sor says Cancelled"
    );
    assert_eq!(live_status(&c, &id).await.as_deref(), Some("Cancelled"));
    gw.advance(2 * DAY);
    assert_eq!(aapl_position(&c).await, 0.0);
}

/// A held order cancels like any other, which withdraws its prompt; a
/// websocket that connects while a prompt is unanswered is sent it.
#[tokio::test]
async fn held_orders_cancel_and_prompts_reach_late_websockets() {
    let gw = start(|c| c.ntf_prompt_above = Some(dec!(10))).await;
    let c = Client::new(&gw);
    let (a, _) = place(&c, 20).await;
    let (b, _) = place(&c, 30).await;
    let mut late = connect_ws(&gw).await;
    let first = next_prompt(&mut late).await;
    let second = next_prompt(&mut late).await;
    assert_eq!(
        (first.order_id.as_str(), second.order_id.as_str()),
        (a.as_str(), b.as_str())
    );
    assert_ne!(first.req_id, second.req_id, "reqIds are unique");

    let (s, v) = c
        .delete(&format!("/iserver/account/{ACCT}/order/{a}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(live_status(&c, &a).await.as_deref(), Some("Cancelled"));
    let (s, _) = c
        .post(
            "/iserver/notification",
            json!({"orderId": a.parse::<i64>().unwrap(), "reqId": first.req_id, "text": "Yes"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a cancelled order has no prompt"
    );
    // The other is still held and still answerable.
    let (s, _) = c
        .post(
            "/iserver/notification",
            json!({"orderId": b.parse::<i64>().unwrap(), "reqId": second.req_id, "text": "Yes"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    gw.advance(2 * DAY);
    assert_eq!(live_status(&c, &b).await.as_deref(), Some("Filled"));
}

/// `POST /sim/admin/...` with `body`; status and answer.
async fn admin(gw: &GatewayHandle, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/sim/admin{path}", gw.root_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn admin_state(gw: &GatewayHandle) -> Value {
    reqwest::get(format!("{}/sim/admin", gw.root_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[tokio::test]
async fn admin_notify_and_bulletin_reach_every_websocket() {
    let gw = start(|c| c.admin = true).await;
    let mut a = connect_ws(&gw).await;
    let mut b = connect_ws(&gw).await;
    let (s, v) = admin(
        &gw,
        "/notify",
        json!({"id": "n1", "title": "Heads up", "text": "Markets are volatile", "url": "https://example.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for ws in [&mut a, &mut b] {
        let m = wait_topic(ws, |t| t == "ntf", WAIT).await.unwrap();
        assert_eq!(
            m["args"],
            json!({"id": "n1", "title": "Heads up", "text": "Markets are volatile", "url": "https://example.com"})
        );
        assert_eq!(
            ServerPrompt::from_args(&m["args"]),
            None,
            "information only"
        );
    }
    let (s, v) = admin(&gw, "/bulletin", json!({"message": "Exchange halted"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    for ws in [&mut a, &mut b] {
        let m = wait_topic(ws, |t| t == "blt", WAIT).await.unwrap();
        assert_eq!(
            m,
            json!({"topic": "blt", "args": {"id": id, "message": "Exchange halted"}})
        );
    }
    let (s, _) = admin(&gw, "/bulletin", json!({"id": "b7", "message": "x"})).await;
    assert_eq!(s, StatusCode::OK);
    let m = wait_topic(&mut a, |t| t == "blt", WAIT).await.unwrap();
    assert_eq!(m["args"]["id"], "b7");
    for (path, bad) in [
        ("/notify", json!({"id": "n", "title": "t"})),
        (
            "/notify",
            json!({"id": "n", "title": "t", "text": "x", "extra": 1}),
        ),
        ("/bulletin", json!({"id": "b"})),
    ] {
        let (s, v) = admin(&gw, path, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {bad}: {v}");
    }
}

/// Midnight US/Eastern on the replay clock: a bulletin 5 minutes before,
/// then the websockets close and the session times out until ssodh/init.
#[tokio::test]
async fn the_replay_midnight_resets_the_session() {
    let gw = start(|c| {
        c.admin = true;
        c.reset_region = Some(ResetRegion::NorthAmerica);
    })
    .await;
    let c = Client::new(&gw);
    let s = admin_state(&gw).await;
    let midnight = Utc.with_ymd_and_hms(2023, 6, 2, 4, 0, 0).unwrap();
    assert_eq!(time(&s["next_reset"]), Some(midnight), "{s}");
    assert_eq!(s["resets"], 0);
    assert_eq!(
        s["session_expires_at"],
        Value::Null,
        "no maximum age by default"
    );

    let mut ws = connect_ws(&gw).await;
    // 14:00 UTC + 13 h 56 min = 23:56 New York: the warning.
    gw.advance(Duration::from_secs(13 * 3600 + 56 * 60));
    let m = wait_topic(&mut ws, |t| t == "blt", WAIT)
        .await
        .expect("a bulletin");
    let text = m["args"]["message"].as_str().unwrap();
    assert!(
        text.contains("server maintenance at 00:00 US/Eastern"),
        "{text}"
    );
    assert!(m["args"]["id"].is_string());
    assert_eq!(c.ok("/iserver/auth/status").await["authenticated"], true);

    gw.advance(Duration::from_secs(5 * 60));
    // The socket closes (skipping whatever came before the close).
    let closed = tokio::time::timeout(WAIT, async {
        while next_json(&mut ws, WAIT).await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the websocket closes at the reset");
    let st = c.ok("/iserver/auth/status").await;
    assert_eq!(
        (st["authenticated"].clone(), st["connected"].clone()),
        (json!(false), json!(true))
    );
    let (code, _) = c.get("/iserver/accounts").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let s = admin_state(&gw).await;
    assert_eq!(s["resets"], 1);
    assert_eq!(
        time(&s["next_reset"]),
        Some(Utc.with_ymd_and_hms(2023, 6, 3, 4, 0, 0).unwrap())
    );

    let init = c
        .ok_post(
            "/iserver/auth/ssodh/init",
            json!({"publish": true, "compete": true}),
        )
        .await;
    assert_eq!(init["authenticated"], true);
    let (code, _) = c.get("/iserver/accounts").await;
    assert_eq!(code, StatusCode::OK);
}

/// At a day per second the reset comes about every real second, each time
/// after its bulletin.
#[tokio::test]
async fn at_high_speed_every_replay_midnight_resets() {
    let gw = start(|c| {
        c.admin = true;
        c.speed = 86_400.0;
        c.reset_region = Some(ResetRegion::Asia);
    })
    .await;
    let mut ws = connect_ws(&gw).await;
    let blt = wait_topic(&mut ws, |t| t == "blt", Duration::from_secs(60))
        .await
        .expect("a bulletin before the first reset");
    assert!(
        blt["args"]["message"].as_str().unwrap().contains("HKT"),
        "{blt}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let s = admin_state(&gw).await;
        if s["resets"].as_u64().unwrap_or(0) >= 2 {
            let next = time(&s["next_reset"]).unwrap();
            let replay = time(&s["replay_time"]).unwrap();
            assert!(next > replay - chrono::TimeDelta::seconds(1), "{s}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no two resets: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The session's maximum age on the replay clock, renewed by ssodh/init.
#[tokio::test]
async fn the_session_expires_after_its_maximum_age() {
    let gw = start(|c| {
        c.admin = true;
        c.session_max_age = Some(Duration::from_secs(3600));
    })
    .await;
    let c = Client::new(&gw);
    let s = admin_state(&gw).await;
    assert_eq!(
        time(&s["session_expires_at"]),
        Some(start_time() + chrono::TimeDelta::hours(1)),
        "{s}"
    );
    assert_eq!(s["next_reset"], Value::Null);
    let mut ws = connect_ws(&gw).await;
    gw.advance(Duration::from_secs(59 * 60));
    assert_eq!(c.get("/iserver/accounts").await.0, StatusCode::OK);
    gw.advance(Duration::from_secs(2 * 60));
    let closed = tokio::time::timeout(WAIT, async {
        while next_json(&mut ws, WAIT).await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the websocket closes at the expiry");
    assert_eq!(c.get("/iserver/accounts").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(admin_state(&gw).await["session_expires_at"], Value::Null);
    c.ok_post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": true}),
    )
    .await;
    let s = admin_state(&gw).await;
    assert_eq!(
        time(&s["session_expires_at"]),
        Some(start_time() + chrono::TimeDelta::minutes(61 + 60)),
        "a new hour from the init: {s}"
    );
    assert_eq!(c.get("/iserver/accounts").await.0, StatusCode::OK);
}

/// The venue clock: quotes carry the replay time (`_updated`), and the
/// trading schedule, read with the client's own type, is open at a replay
/// time inside the replayed session and closed on the replayed weekend.
#[tokio::test]
async fn the_schedule_agrees_with_the_replay_clock() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let q = c.snapshot(AAPL, "31").await;
    let updated = q["_updated"].as_i64().unwrap();
    assert_eq!(updated, gw.sim_time().timestamp_millis(), "{q}");
    let v = c
        .ok("/trsrv/secdef/schedule?assetClass=STK&symbol=AAPL")
        .await;
    let s: Vec<TradingSchedule> = serde_json::from_value(v).unwrap();
    let hours = s[0].to_hours().unwrap();
    // 2023-06-01 14:00 UTC is Thursday 10:00 New York.
    assert!(hours.is_open(gw.sim_time(), false));
    let saturday = Utc.with_ymd_and_hms(2023, 6, 3, 14, 0, 0).unwrap();
    assert!(!hours.is_open(saturday, false));
    let before_open = Utc.with_ymd_and_hms(2023, 6, 1, 13, 0, 0).unwrap();
    assert!(
        !hours.is_open(before_open, false),
        "09:00 is before liquid hours"
    );
    assert!(
        hours.is_open(before_open, true),
        "but inside extended hours"
    );
}

/// A weekday the data has no bar for (a holiday) is listed closed under its
/// own date; the weekdays around it stay open.
#[tokio::test]
async fn a_weekday_without_bars_is_closed_in_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("77.csv");
    let mut csv = "time,open,high,low,close,volume\n".to_owned();
    for d in [
        "2023-06-26",
        "2023-06-27",
        "2023-06-28",
        "2023-06-29",
        "2023-06-30",
        "2023-07-03",
        // 2023-07-04: Independence Day, no bar.
        "2023-07-05",
        "2023-07-06",
        "2023-07-07",
    ] {
        csv.push_str(&format!("{d},10,11,9,10.5,1000\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let gw = start(|c| {
        c.data = vec![file.clone()];
        c.start = Some(Utc.with_ymd_and_hms(2023, 7, 3, 14, 0, 0).unwrap());
    })
    .await;
    let c = Client::new(&gw);
    let v = c.ok("/trsrv/secdef/schedule?conid=77").await;
    let s: Vec<TradingSchedule> = serde_json::from_value(v.clone()).unwrap();
    let hours = s[0].to_hours().unwrap();
    let at = |d: u32, m: u32| Utc.with_ymd_and_hms(2023, m, d, 14, 0, 0).unwrap();
    assert!(hours.is_open(at(3, 7), false), "{v}");
    assert!(!hours.is_open(at(4, 7), true), "the holiday is closed: {v}");
    assert!(hours.is_open(at(5, 7), false), "{v}");
    assert!(hours.is_open(at(30, 6), false), "{v}");
    let dated: Vec<&str> = v[0]["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["tradingScheduleDate"].as_str())
        .filter(|d| !d.starts_with("200001"))
        .collect();
    assert_eq!(dated, ["20230704"], "{v}");
}
