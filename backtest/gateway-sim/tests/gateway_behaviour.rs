//! Behaviour of the CP Gateway simulator over real HTTP on 127.0.0.1:
//! session rules, contracts, market data on the replay clock, orders on the
//! simulated exchange, pacing.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use engine::model::{Bar, Conid};
use gateway_sim::{PacingConfig, PromptRule};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::*;

const DAY: Duration = Duration::from_secs(86_400);

fn sample_bars(conid: i64) -> Vec<Bar> {
    backtest::data::sample()
        .map(Result::unwrap)
        .filter(|b| b.conid == Conid(conid))
        .collect()
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.to_string().parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn orders_path() -> String {
    format!("/iserver/account/{ACCT}/orders")
}

#[tokio::test]
async fn session_expiry_competition_and_logout() {
    let gw = start(|c| c.idle_timeout = Duration::from_millis(1000)).await;
    let c = Client::new(&gw);
    let t = c.ok("/tickle").await;
    assert_eq!(t["session"], gw.session_token());
    assert_eq!(t["iserver"]["authStatus"]["authenticated"], true);

    // Idle timeout: connected, not authenticated, /iserver refused.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = c.ok_post("/iserver/auth/status", json!({})).await;
    assert_eq!(
        (s["authenticated"].clone(), s["connected"].clone()),
        (json!(false), json!(true))
    );
    let (status, body) = c.get("/iserver/accounts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The read-only session still serves /portfolio.
    c.ok("/portfolio/accounts").await;
    let s = c
        .ok_post(
            "/iserver/auth/ssodh/init",
            json!({"publish": true, "compete": true}),
        )
        .await;
    assert_eq!(s["authenticated"], true);
    c.ok("/iserver/accounts").await;

    // publish=false is a 500, as the spec warns.
    let (status, _) = c
        .post(
            "/iserver/auth/ssodh/init",
            json!({"publish": false, "compete": true}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // Admin expiry.
    gw.expire_session();
    assert_eq!(
        c.ok("/tickle").await["iserver"]["authStatus"]["authenticated"],
        false
    );
    c.ok_post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": false}),
    )
    .await;

    // A competing login: compete=false does not take the session back.
    gw.trigger_competing_session();
    let s = c.ok_post("/iserver/auth/status", json!({})).await;
    assert_eq!(
        (s["authenticated"].clone(), s["competing"].clone()),
        (json!(false), json!(true))
    );
    let s = c
        .ok_post(
            "/iserver/auth/ssodh/init",
            json!({"publish": true, "compete": false}),
        )
        .await;
    assert_eq!(s["authenticated"], false);
    let s = c
        .ok_post(
            "/iserver/auth/ssodh/init",
            json!({"publish": true, "compete": true}),
        )
        .await;
    assert_eq!(
        (s["authenticated"].clone(), s["competing"].clone()),
        (json!(true), json!(false))
    );

    // Logout ends everything; a new login gets a new token.
    let old = gw.session_token();
    assert_eq!(c.ok_post("/logout", json!({})).await["status"], true);
    assert_eq!(c.ok_post("/logout", json!({})).await["status"], false);
    let (status, _) = c.get("/portfolio/accounts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.ok("/sso/validate").await["RESULT"], false);
    c.ok_post(
        "/iserver/auth/ssodh/init",
        json!({"publish": true, "compete": true}),
    )
    .await;
    assert_ne!(gw.session_token(), old);
    assert_eq!(c.ok("/sso/validate").await["RESULT"], true);
}

#[tokio::test]
async fn contracts_for_the_sample_instruments() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let found = c.ok("/iserver/secdef/search?symbol=aapl").await;
    assert_eq!(found[0]["conid"], "265598");
    let found = c
        .ok("/iserver/secdef/search?symbol=business&name=true")
        .await;
    assert_eq!(found[0]["symbol"], "IBM");
    assert_eq!(c.ok("/iserver/secdef/search?symbol=NOPE").await, json!([]));
    let info = c.ok("/iserver/contract/8314/info").await;
    assert_eq!(
        (info["con_id"].clone(), info["symbol"].clone()),
        (json!(8314), json!("IBM"))
    );
    let (status, _) = c.get("/iserver/contract/1/info").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let defs = c.ok("/trsrv/secdef?conids=265598,8314,1").await;
    let tickers: Vec<&str> = defs["secdef"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ticker"].as_str().unwrap())
        .collect();
    assert_eq!(tickers, ["AAPL", "IBM"]);
    let accounts = c.ok("/iserver/accounts").await;
    assert_eq!(accounts["accounts"], json!([ACCT]));
    assert_eq!(accounts["selectedAccount"], ACCT);
    // The sessionId is not the cookie value, nor a piece of it.
    let token = gw.session_token();
    let sid = accounts["sessionId"].as_str().unwrap();
    assert!(!token.contains(&sid.replace('.', "")[..7]));
    assert!(!accounts.to_string().contains(&token));
}

#[tokio::test]
async fn snapshot_preflight_then_quotes_inside_the_bar() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let path = "/iserver/marketdata/snapshot?conids=265598,8314&fields=31,84,86,70,71,6008";
    let first = c.ok(path).await;
    assert_eq!(first.as_array().unwrap().len(), 2);
    for o in first.as_array().unwrap() {
        assert!(o.get("31").is_none(), "pre-flight carries no prices: {o}");
        assert!(o.get("conid").is_some());
    }
    let bars = sample_bars(AAPL);
    let start = start_time();
    let bar = bars.iter().rev().find(|b| b.time <= start).unwrap();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let v = &c.ok(path).await[0];
        let (last, bid, ask) = (dec(&v["31"]), dec(&v["84"]), dec(&v["86"]));
        assert!(bid < last && last < ask, "{v}");
        assert!(
            bar.low <= last && last <= bar.high,
            "{last} outside {bar:?}"
        );
        assert_eq!(v["6008"], json!(AAPL));
        seen.push(last);
        gw.advance(Duration::from_secs(3600));
    }
    assert!(
        seen.windows(2).any(|w| w[0] != w[1]),
        "quotes move: {seen:?}"
    );
    // Unsubscribe: success once, then "unknown"; the next snapshot is a
    // pre-flight again.
    let ok = c
        .ok_post("/iserver/marketdata/unsubscribe", json!({"conid": AAPL}))
        .await;
    assert_eq!(ok["success"], true);
    let (status, body) = c
        .post("/iserver/marketdata/unsubscribe", json!({"conid": AAPL}))
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("unknown"))
    );
    assert!(c.ok(path).await[0].get("31").is_none());
    let (status, _) = c.get("/iserver/marketdata/snapshot?conids=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_serves_completed_bars_only() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let now = gw.sim_time();
    // hmds: the 404 page first, then data.
    let raw = c
        .http
        .get(format!(
            "{}/hmds/history?conid=265598&period=1m&bar=1d",
            c.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        raw.text().await.unwrap(),
        "<html><body><h1>Resource not found</h1></body></html>"
    );
    let hmds = c.ok("/hmds/history?conid=265598&period=1m&bar=1d").await;
    let text = hmds.to_string();
    let parsed = cpapi::history::parse_history(Conid(AAPL), text.as_bytes()).unwrap();
    assert!(
        parsed.bars.len() >= 19,
        "a month of daily bars: {}",
        parsed.bars.len()
    );
    assert_eq!(hmds["points"], json!(parsed.bars.len()));
    let sample = sample_bars(AAPL);
    for b in &parsed.bars {
        assert!(
            b.time + chrono::TimeDelta::days(1) <= now,
            "bar {b:?} not complete at {now}"
        );
        assert!(sample.contains(b), "served bar is the data's bar: {b:?}");
    }
    // iserver: same bars, priceFactor format, at most 1000.
    let is = c
        .ok("/iserver/marketdata/history?conid=265598&period=1m&bar=1d")
        .await;
    let parsed2 = cpapi::history::parse_history(Conid(AAPL), is.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.bars, parsed2.bars);
    assert_eq!(is["symbol"], "AAPL");
    assert_eq!(is["points"], json!(parsed2.bars.len() - 1));
    let high: Vec<&str> = is["high"].as_str().unwrap().split('/').collect();
    let max = parsed2.bars.iter().map(|b| b.high).max().unwrap();
    assert_eq!(
        high[0].parse::<Decimal>().unwrap(),
        max * Decimal::ONE_HUNDRED
    );
    // Larger bars are built from the data's (weekly from daily here).
    let weekly = c
        .ok("/iserver/marketdata/history?conid=265598&period=1y&bar=1w")
        .await;
    let n = weekly["data"].as_array().unwrap().len();
    assert!((50..=54).contains(&n), "{n} weekly bars");
    assert_eq!(weekly["barLength"], json!(7 * 86_400));
    let long = c
        .ok("/iserver/marketdata/history?conid=265598&period=15y&bar=1d")
        .await;
    assert_eq!(long["data"].as_array().unwrap().len(), 1000);
    // startTime ends the window.
    let earlier = c
        .ok("/iserver/marketdata/history?conid=265598&period=1w&bar=1d&startTime=20230301-00:00:00")
        .await;
    let last_t = earlier["data"].as_array().unwrap().last().unwrap()["t"]
        .as_i64()
        .unwrap();
    assert!(last_t < 1677628800000);
    // Time moves: a day later one more bar is complete.
    gw.advance(DAY);
    let later = c.ok("/hmds/history?conid=265598&period=1m&bar=1d").await;
    let later = cpapi::history::parse_history(Conid(AAPL), later.to_string().as_bytes()).unwrap();
    assert!(later.bars.last().unwrap().time > parsed.bars.last().unwrap().time);
    for bad in [
        "conid=265598&period=xyz",
        "conid=abc",
        "period=1d",
        "conid=1&period=1d",
    ] {
        let (status, _) = c
            .get(&format!("/iserver/marketdata/history?{bad}&bar=1d"))
            .await;
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{bad}: {status}"
        );
    }
}

#[tokio::test]
async fn market_order_fills_at_the_next_bars_open() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let placed = c
        .ok_post(
            &orders_path(),
            json!({"orders": [{"acctId": ACCT, "conid": AAPL, "cOID": "mkt-1", "orderType": "MKT",
                "side": "BUY", "tif": "DAY", "quantity": 10}]}),
        )
        .await;
    assert_eq!(placed[0]["order_status"], "Submitted");
    let id = placed[0]["order_id"].as_str().unwrap().to_owned();
    // During the bar it was placed in: still working.
    gw.advance(Duration::from_secs(3 * 3600));
    let st = c.ok(&format!("/iserver/account/order/status/{id}")).await;
    assert_eq!(st["order_status"], "Submitted");
    // The bar after it completes: filled at that bar's open.
    gw.advance(2 * DAY);
    let st = c.ok(&format!("/iserver/account/order/status/{id}")).await;
    assert_eq!(st["order_status"], "Filled", "{st}");
    let bars = sample_bars(AAPL);
    let i = bars.iter().rposition(|b| b.time <= start_time()).unwrap();
    let next_open = bars[i + 1].open;
    assert_eq!(dec(&st["average_price"]), next_open);
    let trades = c.ok("/iserver/account/trades?days=3").await;
    let t = &trades.as_array().unwrap()[0];
    assert_eq!(
        (t["side"].clone(), t["order_ref"].clone()),
        (json!("B"), json!("mkt-1"))
    );
    assert_eq!(dec(&t["price"]), next_open);
    assert_eq!(dec(&t["size"]), Decimal::TEN);
    // Live orders: pre-flight, then the list; force=true empties it again.
    assert_eq!(c.ok("/iserver/account/orders").await["orders"], json!([]));
    let live = c.ok("/iserver/account/orders").await;
    assert_eq!(live["orders"][0]["status"], "Filled");
    assert_eq!(
        live["orders"][0]["orderId"],
        json!(id.parse::<u64>().unwrap())
    );
    let filtered = c.ok("/iserver/account/orders?filters=submitted").await;
    assert_eq!(filtered["orders"], json!([]));
    let filtered = c
        .ok("/iserver/account/orders?filters=filled,cancelled")
        .await;
    assert_eq!(filtered["orders"].as_array().unwrap().len(), 1);
    assert_eq!(
        c.ok("/iserver/account/orders?force=true").await["orders"],
        json!([])
    );
    // Unknown order ids answer 503, as the spec describes for lost orders.
    let (status, _) = c.get("/iserver/account/order/status/42").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn prompts_chain_and_are_invalidated_by_a_new_order() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    // A stop far from the market raises o163, then o10331.
    let far_stop = json!({"orders": [{"conid": AAPL, "orderType": "STP", "price": 100,
        "side": "SELL", "tif": "GTC", "quantity": 5}]});
    let p1 = c.ok_post(&orders_path(), far_stop.clone()).await;
    assert_eq!(p1[0]["messageIds"], json!(["o163"]));
    assert!(p1[0]["message"][0]
        .as_str()
        .unwrap()
        .contains("SELL 5 AAPL NASDAQ.NMS @ 100"));
    let id1 = p1[0]["id"].as_str().unwrap().to_owned();
    let p2 = c
        .ok_post(&format!("/iserver/reply/{id1}"), json!({"confirmed": true}))
        .await;
    assert_eq!(p2[0]["messageIds"], json!(["o10331"]));
    let id2 = p2[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(id1, id2);
    // A new order before answering invalidates the question: 503.
    c.ok_post(
        &orders_path(),
        json!({"orders": [{"conid": IBM, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}]}),
    )
    .await;
    let (status, _) = c
        .post(&format!("/iserver/reply/{id2}"), json!({"confirmed": true}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Again, answered to the end: placed.
    let p = c.ok_post(&orders_path(), far_stop.clone()).await;
    let id = p[0]["id"].as_str().unwrap().to_owned();
    let p = c
        .ok_post(&format!("/iserver/reply/{id}"), json!({"confirmed": true}))
        .await;
    let id = p[0]["id"].as_str().unwrap().to_owned();
    let placed = c
        .ok_post(&format!("/iserver/reply/{id}"), json!({"confirmed": true}))
        .await;
    assert_eq!(placed[0]["order_status"], "Submitted");
    // Replying twice to the same id: 503.
    let (status, _) = c
        .post(&format!("/iserver/reply/{id}"), json!({"confirmed": true}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Declining discards the order.
    let p = c.ok_post(&orders_path(), far_stop.clone()).await;
    let id = p[0]["id"].as_str().unwrap().to_owned();
    let declined = c
        .ok_post(&format!("/iserver/reply/{id}"), json!({"confirmed": false}))
        .await;
    assert!(declined["error"].is_string());
    // Suppressed questions are not asked.
    c.ok_post(
        "/iserver/questions/suppress",
        json!({"messageIds": ["o163", "o10331"]}),
    )
    .await;
    let placed = c.ok_post(&orders_path(), far_stop).await;
    assert_eq!(placed[0]["order_status"], "Submitted");
    c.ok("/iserver/account/orders").await;
    let live = c.ok("/iserver/account/orders?filters=submitted").await;
    assert_eq!(live["orders"].as_array().unwrap().len(), 3, "{live}");
}

#[tokio::test]
async fn no_market_data_prompt_before_the_first_bar() {
    let gw = start(|c| {
        c.start = Some(chrono::DateTime::UNIX_EPOCH);
        c.prompts = vec![PromptRule::NoMarketData];
    })
    .await;
    let c = Client::new(&gw);
    let p = c
        .ok_post(
            &orders_path(),
            json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}]}),
        )
        .await;
    assert_eq!(p[0]["messageIds"], json!(["o354"]));
}

#[tokio::test]
async fn rejects_are_200_errors_and_bad_bodies_400() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let cases = [
        json!({"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1.5}),
        json!({"conid": 1, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}),
        json!({"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 1}),
        json!({"conid": AAPL, "orderType": "FOO", "side": "BUY", "tif": "DAY", "quantity": 1}),
        json!({"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1, "parentId": "nobody"}),
        json!({"conid": AAPL, "orderType": "STOP_LIMIT", "price": 200, "side": "BUY", "tif": "DAY", "quantity": 1}),
    ];
    for o in cases {
        let (status, body) = c.post(&orders_path(), json!({"orders": [o]})).await;
        assert_eq!(status, StatusCode::OK, "{o}");
        assert!(body["error"].is_string(), "{o} -> {body}");
    }
    let (status, body) = c
        .post(
            "/iserver/account/U999/orders",
            json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["error"].is_string());
    // Duplicate cOID.
    let once = json!({"orders": [{"conid": AAPL, "cOID": "dup", "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}]});
    c.ok_post(&orders_path(), once.clone()).await;
    assert!(c.ok_post(&orders_path(), once).await["error"].is_string());
    for raw in [
        "not json",
        "{}",
        "{\"orders\": []}",
        "{\"orders\": [{\"conid\": \"AAPL\"}]}",
    ] {
        let (status, _) = c.post_raw(&orders_path(), raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}");
    }
    let (status, _) = c.post_raw("/iserver/reply/x", "garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bracket_children_wait_for_the_parent_and_cancel_each_other() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let bars = sample_bars(AAPL);
    let i = bars.iter().rposition(|b| b.time <= start_time()).unwrap();
    let entry = bars[i + 1].open;
    let placed = c
        .ok_post(
            &orders_path(),
            json!({"orders": [
                {"conid": AAPL, "cOID": "Parent", "orderType": "MKT", "side": "BUY", "tif": "GTC", "quantity": 50},
                {"conid": AAPL, "orderType": "STP", "price": (entry * Decimal::new(5, 1)).to_string(), "side": "SELL", "tif": "GTC", "quantity": 50, "parentId": "Parent"},
                {"conid": AAPL, "orderType": "LMT", "price": (entry * Decimal::TWO).to_string(), "side": "SELL", "tif": "GTC", "quantity": 50, "parentId": "Parent"}
            ]}),
        )
        .await;
    let statuses: Vec<&str> = placed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Submitted", "PreSubmitted", "PreSubmitted"]);
    let ids: Vec<String> = placed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect();
    gw.advance(2 * DAY);
    let status = |id: &str| {
        let c = &c;
        let p = format!("/iserver/account/order/status/{id}");
        async move { c.ok(&p).await["order_status"].as_str().unwrap().to_owned() }
    };
    assert_eq!(status(&ids[0]).await, "Filled");
    assert_eq!(status(&ids[1]).await, "Submitted");
    assert_eq!(status(&ids[2]).await, "Submitted");
    // Cancel the stop: the take-profit stays.
    let (_, r) = c
        .delete(&format!("/iserver/account/{ACCT}/order/{}", ids[1]))
        .await;
    assert_eq!(r["msg"], "Request was submitted");
    assert_eq!(r["conid"], json!(AAPL));
    assert_eq!(status(&ids[1]).await, "Cancelled");
    assert_eq!(status(&ids[2]).await, "Submitted");
    // Cancelling a cancelled order is an error; -1 cancels the rest.
    let (_, r) = c
        .delete(&format!("/iserver/account/{ACCT}/order/{}", ids[1]))
        .await;
    assert!(r["error"].is_string());
    let (_, r) = c.delete(&format!("/iserver/account/{ACCT}/order/-1")).await;
    assert_eq!(
        (
            r["order_id"].clone(),
            r["conid"].clone(),
            r["account"].clone()
        ),
        (json!(-1), json!(-1), Value::Null)
    );
    assert_eq!(status(&ids[2]).await, "Cancelled");
}

#[tokio::test]
async fn oca_group_first_fill_cancels_the_others() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let bars = sample_bars(AAPL);
    let i = bars.iter().rposition(|b| b.time <= start_time()).unwrap();
    let open = bars[i + 1].open;
    let placed = c
        .ok_post(
            &orders_path(),
            json!({"orders": [
                {"conid": AAPL, "cOID": "A", "orderType": "LMT", "price": (open * Decimal::TWO).to_string(), "side": "BUY", "tif": "GTC", "quantity": 5, "isSingleGroup": true},
                {"conid": AAPL, "cOID": "B", "orderType": "LMT", "price": (open * Decimal::TWO).to_string(), "side": "BUY", "tif": "GTC", "quantity": 5, "isSingleGroup": true}
            ]}),
        )
        .await;
    gw.advance(2 * DAY);
    let mut got = Vec::new();
    for o in placed.as_array().unwrap() {
        let id = o["order_id"].as_str().unwrap();
        got.push(
            c.ok(&format!("/iserver/account/order/status/{id}")).await["order_status"].clone(),
        );
    }
    assert_eq!(got, [json!("Filled"), json!("Cancelled")]);
    assert_eq!(
        c.ok("/iserver/account/trades")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn modify_changes_price_and_quantity() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let placed = c
        .ok_post(
            &orders_path(),
            json!({"orders": [{"conid": AAPL, "orderType": "LMT", "price": 10, "side": "BUY", "tif": "GTC", "quantity": 5}]}),
        )
        .await;
    let id = placed[0]["order_id"].as_str().unwrap().to_owned();
    // Also after the order reached the exchange.
    for (when, price) in [(Duration::ZERO, 11), (2 * DAY, 12)] {
        gw.advance(when);
        let m = c
            .ok_post(
                &format!("/iserver/account/{ACCT}/order/{id}"),
                json!({"conid": AAPL, "orderType": "LMT", "price": price, "side": "BUY", "tif": "GTC", "quantity": 7}),
            )
            .await;
        assert_eq!(m[0]["order_id"], json!(id));
        c.ok("/iserver/account/orders").await;
        let live = c.ok("/iserver/account/orders").await;
        let o = &live["orders"][0];
        assert_eq!(
            (o["price"].clone(), o["totalSize"].clone()),
            (json!(price.to_string()), json!(7.0))
        );
    }
    let (_, r) = c
        .post(
            &format!("/iserver/account/{ACCT}/order/999"),
            json!({"quantity": 1}),
        )
        .await;
    assert!(r["error"].is_string());
}

#[tokio::test]
async fn pacing_answers_429_and_holds_the_penalty_box() {
    let gw = start(|c| {
        c.pacing = PacingConfig {
            penalty: Duration::from_millis(300),
            ..PacingConfig::default()
        }
    })
    .await;
    let c = Client::new(&gw);
    c.ok("/tickle").await;
    let (status, body) = c.get("/tickle").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"].is_string());
    // In the penalty box: every endpoint.
    let (status, _) = c.get("/iserver/accounts").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.ok("/iserver/accounts").await;
    // Global: 10 per second.
    let mut codes = Vec::new();
    for _ in 0..11 {
        codes.push(c.get("/iserver/secdef/search?symbol=AAPL").await.0);
    }
    assert!(codes[..9].iter().all(|s| *s == StatusCode::OK), "{codes:?}");
    assert_eq!(codes[10], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn replay_clock_runs_at_speed() {
    let gw = start(|c| c.speed = 3600.0).await;
    let t0 = gw.sim_time();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dt = gw.sim_time() - t0;
    // At least the half hour slept; a loaded machine may oversleep.
    assert!(
        dt >= chrono::TimeDelta::minutes(29) && dt <= chrono::TimeDelta::minutes(180),
        "{dt}"
    );
    gw.set_speed(0.0);
    let t1 = gw.sim_time();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.sim_time(), t1);
    gw.shutdown().await;
}

#[tokio::test]
async fn serves_csv_data_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("77.csv");
    std::fs::write(
        &file,
        "time,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,12,10,11,1000\n2024-01-04,11,11.5,10.5,11.2,1000\n",
    )
    .unwrap();
    let gw = start(|c| {
        c.data = vec![file.clone()];
        c.start = None;
    })
    .await;
    let c = Client::new(&gw);
    let q = c.snapshot(77, "31,55").await;
    assert_eq!(
        (q["31"].clone(), q["55"].clone()),
        (json!("10"), json!("77"))
    );
    let (status, _) = gateway_sim::Gateway::start(gateway_sim::GatewayConfig {
        data: vec![dir.path().join("missing.csv")],
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_or((StatusCode::BAD_REQUEST, ()), |_| (StatusCode::OK, ()));
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a missing file is an error"
    );
}

#[tokio::test]
async fn fills_book_positions_cash_and_pnl() {
    let gw = start(|c| {
        c.prompts.clear();
        c.initial_cash = Decimal::from(100_000);
    })
    .await;
    let c = Client::new(&gw);
    let ledger = c.ok(&format!("/portfolio/{ACCT}/ledger")).await;
    assert_eq!(ledger["USD"]["cashbalance"], json!(100000.0));
    assert_eq!(
        c.ok(&format!("/portfolio/{ACCT}/positions/0")).await,
        json!([])
    );
    c.ok_post(
        &orders_path(),
        json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 10}]}),
    )
    .await;
    gw.advance(2 * DAY);
    let bars = sample_bars(AAPL);
    let i = bars.iter().rposition(|b| b.time <= start_time()).unwrap();
    let fill = bars[i + 1].open;
    let pos = c.ok(&format!("/portfolio/{ACCT}/positions/0")).await;
    assert_eq!(pos.as_array().unwrap().len(), 1);
    assert_eq!(pos[0]["conid"], json!(AAPL));
    assert_eq!(dec(&pos[0]["position"]), Decimal::TEN);
    assert_eq!(dec(&pos[0]["avgPrice"]), fill);
    let mark = dec(&pos[0]["mktPrice"]);
    assert_eq!(
        dec(&pos[0]["unrealizedPnl"]),
        ((mark - fill) * Decimal::TEN).round_dp(2)
    );
    let ledger = c.ok(&format!("/portfolio/{ACCT}/ledger")).await;
    let cash = Decimal::from(100_000) - fill * Decimal::TEN;
    assert_eq!(dec(&ledger["USD"]["cashbalance"]), cash.round_dp(2));
    let nl = dec(&ledger["USD"]["netliquidationvalue"]);
    assert_eq!(nl, (cash + mark * Decimal::TEN).round_dp(2));
    let pnl = c.ok("/iserver/account/pnl/partitioned").await;
    let row = &pnl["upnl"][format!("{ACCT}.Core")];
    assert_eq!(dec(&row["nl"]), nl);
    assert_eq!(dec(&row["mv"]), (mark * Decimal::TEN).round_dp(2));
    assert_eq!(
        c.ok(&format!("/portfolio/{ACCT}/positions/1")).await,
        json!([])
    );
    let summary = c.ok(&format!("/portfolio/{ACCT}/summary")).await;
    assert_eq!(dec(&summary["netliquidation"]["amount"]), nl);
    let (status, _) = c.get("/portfolio/U0000/positions/0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn whatif_prices_without_placing() {
    let gw = start(|c| c.initial_cash = Decimal::from(100_000)).await;
    let c = Client::new(&gw);
    let path = format!("/iserver/account/{ACCT}/orders/whatif");
    let v = c
        .ok_post(
            &path,
            json!({"orders": [{"conid": AAPL, "orderType": "LMT", "price": 197.76, "side": "BUY", "tif": "DAY", "quantity": 10}]}),
        )
        .await;
    assert_eq!(v["amount"]["amount"], "1,977.60 USD (10 Shares)");
    assert_eq!(v["amount"]["total"], "1,977.60 USD");
    assert_eq!(v["equity"]["current"], "100,000");
    assert_eq!(
        v["position"],
        json!({"current": "0", "change": "10", "after": "10"})
    );
    assert_eq!(v["initial"]["change"], "989");
    assert_eq!(v["warn"], Value::Null);
    // Nothing was placed.
    c.ok("/iserver/account/orders").await;
    assert_eq!(c.ok("/iserver/account/orders").await["orders"], json!([]));
    let (status, _) = c.post_raw(&path, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let frac = c
        .ok_post(
            &path,
            json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "SELL", "tif": "DAY", "quantity": 0.5}]}),
        )
        .await;
    assert!(frac["error"].is_string());
}

/// What third-party clients send (found with ibind 0.2.2 against the
/// simulator): a trailing slash on the path, a trading schedule asked by
/// symbol without a conid, stocks by symbol.
#[tokio::test]
async fn lenient_paths_and_lookups_by_symbol() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let plain = c.ok("/iserver/account/trades").await;
    let slashed = c.ok("/iserver/account/trades/").await;
    assert_eq!(plain, slashed);
    let q = c.ok("/portfolio/accounts/").await;
    assert_eq!(q[0]["id"], ACCT);
    let (status, _) = c.get("/iserver/nothing/here/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let by_symbol = c
        .ok("/trsrv/secdef/schedule?assetClass=STK&symbol=AAPL")
        .await;
    let by_conid = c
        .ok("/trsrv/secdef/schedule?assetClass=STK&symbol=AAPL&conid=265598")
        .await;
    assert_eq!(by_symbol, by_conid);
    let (status, body) = c
        .get("/trsrv/secdef/schedule?assetClass=STK&symbol=NOPE")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let stocks = c.ok("/trsrv/stocks?symbols=AAPL,NOPE").await;
    assert_eq!(stocks["AAPL"][0]["contracts"][0]["conid"], 265598);
    assert!(stocks.get("NOPE").is_none(), "{stocks}");
    let (status, _) = c.get("/trsrv/stocks").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
