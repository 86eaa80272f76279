//! Conformance: every endpoint's response has the keys of the spec's example
//! JSON (copied into `fixtures/`) with the same JSON value types,
//! recursively. Numbers: an integer in the example demands an integer;
//! a float accepts any number. `null` in an example accepts anything (the
//! spec shows null for fields that are typed elsewhere); `{}` accepts any
//! object (maps keyed by account). Extra keys in responses are allowed.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The spec's account keys its maps; the simulator's account is ours.
    serde_json::from_str(&text.replace("U1234567", ACCT)).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare(at: &str, example: &Value, actual: &Value, errors: &mut Vec<String>) {
    match (example, actual) {
        (Value::Null, _) => {}
        (Value::Number(e), Value::Number(a)) => {
            let e_int = e.is_i64() || e.is_u64();
            if e_int && !(a.is_i64() || a.is_u64()) {
                errors.push(format!("{at}: integer expected, got {a}"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => compare(&format!("{at}.{k}"), ev, av, errors),
                    None => errors.push(format!("{at}.{k}: missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            // Item i is compared with example item i (the last one for the
            // rest): examples with mixed item shapes list each shape.
            if let Some(last) = e.last() {
                if a.is_empty() {
                    errors.push(format!("{at}: empty array, example has items"));
                }
                for (i, av) in a.iter().enumerate() {
                    compare(&format!("{at}[{i}]"), e.get(i).unwrap_or(last), av, errors);
                }
            }
        }
        (e, a) if kind(e) == kind(a) => {}
        (e, a) => errors.push(format!("{at}: {} expected, got {} ({a})", kind(e), kind(a))),
    }
}

#[track_caller]
fn conforms(name: &str, actual: &Value) {
    let mut errors = Vec::new();
    compare(name, &fixture(name), actual, &mut errors);
    assert!(
        errors.is_empty(),
        "{name} does not match the spec example:\n{}\nresponse: {actual:#}",
        errors.join("\n")
    );
}

#[test]
fn the_comparison_itself_catches_mismatches() {
    let mut e = Vec::new();
    compare(
        "x",
        &json!({"a": 1, "b": "s", "c": [{"d": true}]}),
        &json!({"a": 1.5, "c": [{"d": "no"}]}),
        &mut e,
    );
    assert_eq!(e.len(), 3, "{e:?}");
    let mut e = Vec::new();
    compare(
        "x",
        &json!({"a": 1.5, "n": null, "m": {}}),
        &json!({"a": 2, "n": [1], "m": {"k": 1}, "extra": 1}),
        &mut e,
    );
    assert!(e.is_empty(), "{e:?}");
}

#[tokio::test]
async fn tickle() {
    let gw = start(|_| {}).await;
    conforms("tickle", &Client::new(&gw).ok("/tickle").await);
}

#[tokio::test]
async fn auth_status() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "auth_status",
        &c.ok_post("/iserver/auth/status", json!({})).await,
    );
    gw.expire_session();
    conforms(
        "auth_status_unauthenticated",
        &c.ok_post("/iserver/auth/status", json!({})).await,
    );
}

#[tokio::test]
async fn ssodh_init_and_reauthenticate() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let body = json!({"publish": true, "compete": true});
    conforms(
        "ssodh_init",
        &c.ok_post("/iserver/auth/ssodh/init", body).await,
    );
    conforms(
        "reauthenticate",
        &c.ok_post("/iserver/reauthenticate", json!({})).await,
    );
}

#[tokio::test]
async fn sso_validate() {
    let gw = start(|_| {}).await;
    conforms("sso_validate", &Client::new(&gw).ok("/sso/validate").await);
}

#[tokio::test]
async fn accounts() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms("iserver_accounts", &c.ok("/iserver/accounts").await);
    conforms("portfolio_accounts", &c.ok("/portfolio/accounts").await);
}

#[tokio::test]
async fn contracts() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "secdef_search",
        &c.ok("/iserver/secdef/search?symbol=AAPL").await,
    );
    conforms(
        "contract_info",
        &c.ok("/iserver/contract/265598/info").await,
    );
    conforms("trsrv_secdef", &c.ok("/trsrv/secdef?conids=265598").await);
}

#[tokio::test]
async fn snapshot() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let v = c.snapshot(AAPL, "31,84,86").await;
    conforms("snapshot", &json!([v]));
}

#[tokio::test]
async fn history() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "iserver_history",
        &c.ok("/iserver/marketdata/history?conid=265598&period=1w&bar=1d")
            .await,
    );
    let (status, _) = c.get("/hmds/history?conid=265598&period=1w&bar=1d").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    conforms(
        "hmds_history",
        &c.ok("/hmds/history?conid=265598&period=1w&bar=1d").await,
    );
}

/// Place a marketable limit buy with a cOID and let it fill.
async fn filled_order(gw: &gateway_sim::GatewayHandle, c: &Client) -> String {
    c.ok_post(
        "/iserver/questions/suppress",
        json!({"messageIds": ["o163"]}),
    )
    .await;
    let last: f64 = c.snapshot(AAPL, "31").await["31"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let placed = c
        .ok_post(
            &format!("/iserver/account/{ACCT}/orders"),
            json!({"orders": [{"conid": AAPL, "cOID": "Order123", "orderType": "LMT",
                "price": (last * 1.5).round(), "side": "BUY", "tif": "DAY", "quantity": 5}]}),
        )
        .await;
    conforms("place_order", &placed);
    gw.advance(Duration::from_secs(2 * 86_400));
    placed[0]["order_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn orders_status_and_trades() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let id = filled_order(&gw, &c).await;
    c.ok("/iserver/account/orders").await; // pre-flight
    conforms("live_orders", &c.ok("/iserver/account/orders").await);
    conforms(
        "order_status",
        &c.ok(&format!("/iserver/account/order/status/{id}")).await,
    );
    conforms("trades", &c.ok("/iserver/account/trades?days=1").await);
}

#[tokio::test]
async fn prompt_reply_modify_cancel() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let orders = format!("/iserver/account/{ACCT}/orders");
    let far = json!({"orders": [{"conid": AAPL, "orderType": "LMT", "price": 1,
        "side": "BUY", "tif": "GTC", "quantity": 5}]});
    let prompt = c.ok_post(&orders, far).await;
    conforms("place_order_prompt", &prompt);
    let id = prompt[0]["id"].as_str().unwrap();
    let placed = c
        .ok_post(&format!("/iserver/reply/{id}"), json!({"confirmed": true}))
        .await;
    conforms("reply", &placed);
    let oid = placed[0]["order_id"].as_str().unwrap().to_owned();
    c.ok_post(
        "/iserver/questions/suppress",
        json!({"messageIds": ["o163"]}),
    )
    .await;
    conforms(
        "suppress",
        &c.ok_post(
            "/iserver/questions/suppress",
            json!({"messageIds": ["o163"]}),
        )
        .await,
    );
    let modified = c
        .ok_post(
            &format!("/iserver/account/{ACCT}/order/{oid}"),
            json!({"conid": AAPL, "orderType": "LMT", "price": 2, "side": "BUY", "tif": "GTC", "quantity": 6}),
        )
        .await;
    conforms("modify", &modified);
    let (_, cancelled) = c
        .delete(&format!("/iserver/account/{ACCT}/order/{oid}"))
        .await;
    conforms("cancel", &cancelled);
    let (_, missing) = c.delete(&format!("/iserver/account/{ACCT}/order/1")).await;
    conforms("cancel_error", &missing);
    assert_eq!(missing["error"], "OrderID 1 doesn't exist");
    conforms(
        "suppress_reset",
        &c.ok_post("/iserver/questions/suppress/reset", json!({}))
            .await,
    );
    let reject = c
        .ok_post(
            &orders,
            json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 0.5}]}),
        )
        .await;
    conforms("order_reject", &reject);
}

#[tokio::test]
async fn websocket_topics() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    let t = Duration::from_secs(5);
    conforms("ws_system", &next_json(&mut ws, t).await.unwrap());
    conforms("ws_act", &next_json(&mut ws, t).await.unwrap());
    conforms("ws_sts", &next_json(&mut ws, t).await.unwrap());
    send(&mut ws, r#"smd+265598+{"fields":["31","84","86","6509"]}"#).await;
    conforms(
        "ws_smd",
        &wait_topic(&mut ws, |t| t.starts_with("smd"), t)
            .await
            .unwrap(),
    );
    send(&mut ws, &format!("sbd+{ACCT}+265598")).await;
    conforms(
        "ws_sbd",
        &wait_topic(&mut ws, |t| t.starts_with("sbd"), t)
            .await
            .unwrap(),
    );
    send(&mut ws, &format!("ubd+{ACCT}")).await;
    send(&mut ws, "sor+{}").await;
    send(&mut ws, r#"str+{"realtimeUpdatesOnly":true}"#).await;
    // Let the socket task take the subscriptions before the order.
    tokio::time::sleep(Duration::from_millis(200)).await;
    filled_order(&gw, &c).await;
    let (mut sor, mut trade) = (None, None);
    while sor.is_none() || trade.is_none() {
        let m = wait_topic(&mut ws, |t| t == "sor" || t == "str", t)
            .await
            .unwrap();
        if m["topic"] == "str" {
            trade = Some(m);
        } else if m["args"][0]["status"] == "Filled" {
            sor = Some(m);
        }
    }
    conforms("ws_sor", &sor.unwrap());
    conforms("ws_str", &trade.unwrap());
}

#[tokio::test]
async fn portfolio() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    filled_order(&gw, &c).await;
    conforms(
        "positions",
        &c.ok(&format!("/portfolio/{ACCT}/positions/0")).await,
    );
    conforms(
        "portfolio_summary",
        &c.ok(&format!("/portfolio/{ACCT}/summary")).await,
    );
    conforms(
        "portfolio_ledger",
        &c.ok(&format!("/portfolio/{ACCT}/ledger")).await,
    );
    conforms(
        "pnl_partitioned",
        &c.ok("/iserver/account/pnl/partitioned").await,
    );
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, "spl+{}").await;
    let spl = wait_topic(&mut ws, |t| t == "spl", Duration::from_secs(5))
        .await
        .unwrap();
    conforms("ws_spl", &spl);
}

#[tokio::test]
async fn whatif() {
    // Before the first bar: no market data, so `warn` is a string as in the
    // example (it is null when there is nothing to warn about).
    let gw = start(|c| c.start = Some(chrono::DateTime::UNIX_EPOCH)).await;
    let c = Client::new(&gw);
    let body = json!({"orders": [{"conid": AAPL, "orderType": "LMT", "price": 200.25,
        "side": "BUY", "tif": "DAY", "quantity": 10}]});
    let v = c
        .ok_post(&format!("/iserver/account/{ACCT}/orders/whatif"), body)
        .await;
    conforms("whatif", &v);
}

#[tokio::test]
async fn contract_details() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "secdef_info",
        &c.ok("/iserver/secdef/info?conid=265598&sectype=STK").await,
    );
    conforms(
        "trsrv_schedule",
        &c.ok("/trsrv/secdef/schedule?assetClass=STK&conid=265598&symbol=AAPL")
            .await,
    );
    let rules = c
        .ok_post(
            "/iserver/contract/rules",
            json!({"conid": 265598, "isBuy": true}),
        )
        .await;
    conforms("contract_rules", &rules);
    let (status, _) = c.get("/iserver/secdef/info?conid=265598&sectype=OPT").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c.post("/iserver/contract/rules", json!({"conid": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn websocket_account_topics() {
    let gw = start(|c| c.heartbeat = Duration::from_millis(200)).await;
    let c = Client::new(&gw);
    filled_order(&gw, &c).await;
    let mut ws = connect_ws(&gw).await;
    let t = Duration::from_secs(5);
    send(&mut ws, &format!("ssd+{ACCT}+{{}}")).await;
    let ssd = wait_topic(&mut ws, |x| x.starts_with("ssd"), t)
        .await
        .unwrap();
    let rows = ssd["result"].as_array().unwrap();
    let row = |k: &str| rows.iter().find(|r| r["key"] == k).cloned().unwrap();
    conforms(
        "ws_ssd",
        &json!({"result": [row("NetLiquidation-S"), row("AccountCode")]}),
    );
    send(
        &mut ws,
        &format!("sld+{ACCT}+{{\"keys\":[\"LedgerListBASE\"]}}"),
    )
    .await;
    let sld = wait_topic(&mut ws, |x| x.starts_with("sld"), t)
        .await
        .unwrap();
    assert_eq!(sld["result"].as_array().unwrap().len(), 1);
    conforms("ws_sld", &sld);
    // Filtered fields; periodic updates; unsubscribe answers once.
    send(
        &mut ws,
        &format!("ssd+{ACCT}+{{\"keys\":[\"NetLiquidation\"],\"fields\":[\"monetaryValue\"]}}"),
    )
    .await;
    let f = wait_topic(&mut ws, |x| x.starts_with("ssd"), t)
        .await
        .unwrap();
    assert_eq!(f["result"].as_array().unwrap().len(), 1);
    assert!(f["result"][0].get("currency").is_none());
    assert!(f["result"][0]["monetaryValue"].is_number());
    assert!(wait_topic(&mut ws, |x| x.starts_with("ssd"), t)
        .await
        .is_some());
    send(&mut ws, &format!("usd+{ACCT}")).await;
    let bye = loop {
        let m = next_json(&mut ws, t).await.unwrap();
        if m.get("result").is_some_and(Value::is_string) {
            break m;
        }
    };
    assert_eq!(bye, json!({"result": "unsubscribed from summary"}));
    // Another account's summary is not served.
    send(&mut ws, "ssd+U999+{}").await;
    send(&mut ws, &format!("uld+{ACCT}")).await;
    let bye = loop {
        let m = next_json(&mut ws, t).await.unwrap();
        assert!(m["topic"] != "ssd+U999");
        if m.get("result").is_some_and(Value::is_string) {
            break m;
        }
    };
    assert_eq!(bye["result"], "unsubscribed from ledger");
}

#[tokio::test]
async fn event_contracts() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "event_category_tree",
        &c.ok("/trsrv/event/category-tree").await,
    );
    conforms(
        "event_contracts",
        &c.ok("/trsrv/event/contracts?market=733131966&exchange=FORECASTX")
            .await,
    );
}

#[tokio::test]
async fn stocks_and_position_by_conid() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "trsrv_stocks",
        &c.ok("/trsrv/stocks?symbols=AAPL,IBM").await,
    );
    filled_order(&gw, &c).await;
    let path = format!("/portfolio/{ACCT}/position/265598");
    // The first answer is the position only, later ones the spec's form.
    let first = c.ok(&path).await;
    assert_eq!(first[0]["conid"], 265598);
    assert!(first[0].get("listingExchange").is_none(), "{first}");
    conforms("position_by_conid", &c.ok(&path).await);
}

#[tokio::test]
async fn info_and_rules() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    conforms(
        "info_and_rules",
        &c.ok("/iserver/contract/265598/info-and-rules?isBuy=true")
            .await,
    );
}
