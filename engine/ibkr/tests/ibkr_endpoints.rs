//! Every typed call over real HTTP on 127.0.0.1 against the CP Gateway
//! simulator, both directions checked: the simulator answers each endpoint
//! with the spec's own example body (`GatewayHandle::answer_path`: its
//! state holds other accounts and contracts, and some endpoints here it
//! does not serve), and its request log shows the method, path, query and
//! body the client sent.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

mod support;

use cpapi::messages::PlaceOutcome;
use engine::model::{Conid, OrderStatus};
use ibkr::rest::HistoryRequest;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use support::{client, start};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Drop the spec's `{...}` elisions and the trailing commas they leave.
    let mut s: String = text
        .lines()
        .filter(|l| !matches!(l.trim(), "{...}" | "{...}," | "..." | "...,"))
        .collect::<Vec<_>>()
        .join("\n");
    loop {
        let v: Vec<char> = s.chars().collect();
        let mut cut = None;
        for (i, c) in v.iter().enumerate() {
            if *c == ',' {
                let rest: String = v[i + 1..].iter().collect();
                let r = rest.trim_start();
                if r.starts_with(']') || r.starts_with('}') {
                    cut = Some(i);
                    break;
                }
            }
        }
        match cut {
            Some(i) => {
                let mut v = v;
                v.remove(i);
                s = v.into_iter().collect();
            }
            None => return s,
        }
    }
}

/// Each request the test makes and its answer: the spec example of its
/// endpoint, a fixture by name or (starting with `{` or `"`) inline.
const SPEC: &[(&str, &str, &str)] = &[
    ("POST", "/logout", r#"{"status":true}"#),
    ("GET", "/sso/validate", "sso_validate"),
    ("GET", "/portfolio/accounts", "portfolio_accounts"),
    ("POST", "/iserver/account", r#"{"set":true,"acctId":"U2"}"#),
    ("GET", "/iserver/secdef/search", "secdef_search"),
    ("GET", "/iserver/secdef/info", "secdef_info"),
    ("GET", "/iserver/contract/265598/info", "contract_info"),
    ("POST", "/iserver/contract/rules", "contract_rules"),
    ("GET", "/trsrv/secdef", "trsrv_secdef"),
    ("GET", "/trsrv/secdef/schedule", "trsrv_schedule"),
    ("GET", "/trsrv/stocks", "trsrv_stocks"),
    ("GET", "/trsrv/futures", "trsrv_futures"),
    ("GET", "/iserver/secdef/strikes", "secdef_strikes"),
    ("GET", "/trsrv/event/category-tree", "event_category_tree"),
    ("GET", "/trsrv/event/contracts", "event_contracts"),
    (
        "POST",
        "/iserver/marketdata/unsubscribe",
        r#"{"success":true}"#,
    ),
    (
        "GET",
        "/iserver/marketdata/unsubscribeall",
        r#"{"confirmed":"success"}"#,
    ),
    ("GET", "/iserver/marketdata/history", "iserver_history"),
    (
        "POST",
        "/iserver/account/U1/order/1234567890",
        "modify_prompt",
    ),
    (
        "POST",
        "/iserver/reply/a12b34c5-d678-9e012f-3456-7a890b12cd3e",
        "modify",
    ),
    ("POST", "/iserver/account/U1/orders/whatif", "whatif"),
    ("DELETE", "/iserver/account/U1/order/-1", "cancel"),
    (
        "GET",
        "/iserver/account/order/status/1799796559",
        "order_status",
    ),
    ("GET", "/iserver/account/orders", "live_orders"),
    ("GET", "/iserver/account/trades", "trades"),
    ("POST", "/iserver/questions/suppress", "suppress"),
    (
        "POST",
        "/iserver/questions/suppress/reset",
        "suppress_reset",
    ),
    ("POST", "/iserver/notification", r#""Order Reply Sent""#),
    ("GET", "/portfolio/U1/positions/1", "positions"),
    ("GET", "/portfolio2/U1/positions", "positions"),
    ("GET", "/portfolio/U1/summary", "portfolio_summary"),
    ("GET", "/portfolio/U1/ledger", "ledger"),
];

/// The first positions page: a full page of 100 sends the client to page 1.
const FULL_PAGE: &str = "/portfolio/U1/positions/0";

fn full_page() -> String {
    let one: Value = serde_json::from_str(&fixture("positions")).unwrap();
    let page: Vec<Value> = (0..100)
        .map(|i| {
            let mut p = one[i % 3].clone();
            p["conid"] = json!(1000 + i);
            p
        })
        .collect();
    Value::Array(page).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_call_round_trips() {
    let g = start(|_| {}).await;
    for (method, path, body) in SPEC {
        let body = if body.starts_with(['{', '"']) {
            body.to_string()
        } else {
            fixture(body)
        };
        g.answer_path(method, path, &body);
    }
    g.answer_path("GET", FULL_PAGE, &full_page());
    g.record_requests(true);
    let c = client(&g);
    let sent = |what: &str| -> (String, String) {
        let (method, path) = what.split_once(' ').unwrap();
        let r = g
            .received_requests()
            .into_iter()
            .rev()
            .find(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| panic!("{what} not sent"));
        (r.query, String::from_utf8_lossy(&r.body).into_owned())
    };

    assert!(c.logout().await.unwrap().status);
    assert!(c.sso_validate().await.unwrap().result);
    assert_eq!(c.portfolio_accounts().await.unwrap()[0].id, "U1234567");
    assert!(c.switch_account("U2").await.unwrap().set);
    assert_eq!(
        serde_json::from_str::<Value>(&sent("POST /iserver/account").1).unwrap(),
        json!({"acctId": "U2"})
    );

    assert_eq!(
        c.secdef_search("IBKR", Some("STK"), false).await.unwrap()[0].conid,
        Conid(43645865)
    );
    assert_eq!(
        sent("GET /iserver/secdef/search").0,
        "symbol=IBKR&secType=STK"
    );
    let i = c
        .secdef_info(
            Conid(265598),
            "OPT",
            Some("JAN24"),
            None,
            Some("195"),
            Some("P"),
        )
        .await
        .unwrap();
    assert_eq!(i[0].right.as_deref(), Some("P"));
    assert_eq!(
        sent("GET /iserver/secdef/info").0,
        "conid=265598&sectype=OPT&month=JAN24&strike=195&right=P"
    );
    assert_eq!(
        c.contract_info(Conid(265598)).await.unwrap().conid,
        Conid(265598)
    );
    assert!(
        c.contract_rules(Conid(265598), true)
            .await
            .unwrap()
            .algo_eligible
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sent("POST /iserver/contract/rules").1).unwrap(),
        json!({"conid": 265598, "isBuy": true})
    );
    assert_eq!(
        c.trsrv_secdef(&[Conid(265598), Conid(8314)])
            .await
            .unwrap()
            .secdef[0]
            .conid,
        Conid(265598)
    );
    assert_eq!(sent("GET /trsrv/secdef").0, "conids=265598%2C8314");
    assert_eq!(
        c.trading_schedule("STK", "AAPL", None).await.unwrap()[0]
            .timezone
            .as_deref(),
        Some("America/New_York")
    );
    assert!(c.stocks(&["AAPL"]).await.unwrap().contains_key("AAPL"));
    assert!(c.futures(&["ES", "MES"]).await.unwrap().contains_key("MES"));
    assert_eq!(
        c.strikes(Conid(265598), "OPT", "JAN24", None)
            .await
            .unwrap()
            .put
            .len(),
        4
    );
    assert!(c
        .event_category_tree()
        .await
        .unwrap()
        .contains_key("g17654"));
    assert_eq!(
        c.event_contracts(Conid(733131966), "FORECASTX")
            .await
            .unwrap()
            .contracts[0]
            .conid,
        Conid(762089343)
    );
    assert_eq!(
        sent("GET /trsrv/event/contracts").0,
        "market=733131966&exchange=FORECASTX"
    );

    c.unsubscribe_market_data(Conid(265598)).await.unwrap();
    c.unsubscribe_all_market_data().await.unwrap();
    let mut r = HistoryRequest::new(Conid(265598), "1d", "1h");
    r.outside_rth = true;
    r.start_time = Some("20230821-13:30:00".into());
    r.exchange = Some("SMART".into());
    let h = c.iserver_history(&r).await.unwrap();
    assert_eq!(h.symbol.as_deref(), Some("AAPL"));
    assert_eq!(
        sent("GET /iserver/marketdata/history").0,
        "conid=265598&period=1d&bar=1h&outsideRth=true&startTime=20230821-13%3A30%3A00&exchange=SMART"
    );

    let body = json!({"conid": 265598, "orderType": "STP", "price": 185, "side": "SELL", "quantity": 5, "tif": "DAY"});
    let out = c.modify_order("U1", "1234567890", &body).await.unwrap();
    let PlaceOutcome::Prompt(p) = out else {
        panic!("{out:?}")
    };
    let out = c.reply(&p.id, true).await.unwrap();
    assert!(
        matches!(out, PlaceOutcome::Acknowledged(ref a) if a[0].order_id.as_deref() == Some("1234567890"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sent("POST /iserver/account/U1/order/1234567890").1)
            .unwrap(),
        body
    );
    let w = c.whatif("U1", &json!({"orders": [body]})).await.unwrap();
    assert_eq!(w.commission(), Some(dec!(1)));
    assert_eq!(
        c.cancel_order("U1", "-1").await.unwrap().msg.as_deref(),
        Some("Request was submitted")
    );
    assert_eq!(
        c.order_status("1799796559")
            .await
            .unwrap()
            .status()
            .unwrap(),
        OrderStatus::Filled
    );
    let o = c
        .live_orders(&[OrderStatus::Filled, OrderStatus::Submitted], true)
        .await
        .unwrap();
    assert_eq!(o.orders.len(), 1);
    assert_eq!(
        sent("GET /iserver/account/orders").0,
        "filters=filled%2Csubmitted&force=true"
    );
    assert_eq!(c.trades(Some(3)).await.unwrap().len(), 1);
    assert_eq!(sent("GET /iserver/account/trades").0, "days=3");
    assert_eq!(
        c.suppress_questions(&["o163", "o354"])
            .await
            .unwrap()
            .status
            .as_deref(),
        Some("submitted")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sent("POST /iserver/questions/suppress").1).unwrap(),
        json!({"messageIds": ["o163", "o354"]})
    );
    c.reset_suppressed_questions().await.unwrap();
    assert_eq!(
        c.answer_notification(987654321, "12345", "Yes")
            .await
            .unwrap(),
        "Order Reply Sent"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sent("POST /iserver/notification").1).unwrap(),
        json!({"orderId": 987654321, "reqId": "12345", "text": "Yes"})
    );

    // Paging: a full first page, then a short one.
    assert_eq!(c.positions("U1").await.unwrap().len(), 103);
    assert_eq!(c.positions2("U1").await.unwrap().len(), 3);
    assert!(c
        .portfolio_summary("U1")
        .await
        .unwrap()
        .contains_key("accountcode"));
    assert!(c.ledger("U1").await.unwrap().contains_key("BASE"));

    // Nothing was asked that has no spec answer.
    for r in g.received_requests() {
        assert!(
            (r.method == "GET" && r.path == FULL_PAGE)
                || SPEC.iter().any(|(m, p, _)| *m == r.method && *p == r.path),
            "unexpected request {} {} ?{}",
            r.method,
            r.path,
            r.query
        );
    }
    g.shutdown().await;
}
