//! ForecastEx event contracts on the simulator, over real HTTP and a real
//! websocket: discovery (category tree, contracts with YES/NO conids per
//! strike), sells refused, and the spec's "Executions and Netting" worked
//! examples reproduced execution by execution.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use engine::forecastex::Pairing;
use engine::model::Conid;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::*;

const HORC: i64 = 733131966;
const YES: i64 = 762089343;
const NO: i64 = 762089344;
const T: Duration = Duration::from_secs(5);

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.to_string().parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test]
async fn discovery_lists_markets_and_their_yes_no_pairs() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);

    // The tree: HORC sits on a leaf three levels down.
    let tree = c.ok("/trsrv/event/category-tree").await;
    let tree = tree.as_object().unwrap();
    let (leaf, node) = tree
        .iter()
        .find(|(_, n)| {
            n["markets"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["conid"] == json!(HORC)))
        })
        .expect("HORC is listed");
    let mut depth = 1;
    let mut at = node;
    while let Some(parent) = at.get("parentId").and_then(Value::as_str) {
        at = &tree[parent];
        depth += 1;
    }
    assert_eq!(depth, 3, "leaf {leaf} is three levels deep");
    assert_eq!(
        node["markets"][0],
        json!({"name": "US House of Representatives Control", "symbol": "HORC",
               "exchange": "FORECASTX", "conid": HORC})
    );

    // The market's contracts pair into strikes with the engine's own code.
    let body = c
        .ok(&format!(
            "/trsrv/event/contracts?market={HORC}&exchange=FORECASTX"
        ))
        .await;
    let parsed: cpapi::messages::EventContracts = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(parsed.contracts.len(), 4, "two strikes, YES and NO each");
    let pairing = Pairing::from_records(&parsed.records().unwrap()).unwrap();
    assert!(pairing.unpaired.is_empty());
    assert_eq!(pairing.pairs().len(), 2);
    assert_eq!(pairing.opposite(Conid(YES)), Some(Conid(NO)));
    for r in body["contracts"].as_array().unwrap() {
        assert_eq!(r["exchange"], "FORECASTX");
        assert_eq!(r["underlyingConid"], json!(HORC));
        let right = if r["putOrCall"] == "C" { "YES" } else { "NO" };
        assert!(
            r["shortDescription"].as_str().unwrap().contains(right),
            "{r}"
        );
    }

    // Unknown market or another exchange: nothing; no market: an error.
    let none = c
        .ok("/trsrv/event/contracts?market=1&exchange=FORECASTX")
        .await;
    assert_eq!(none, json!({"contracts": []}));
    let cme = c
        .ok(&format!(
            "/trsrv/event/contracts?market={HORC}&exchange=CME"
        ))
        .await;
    assert_eq!(cme, json!({"contracts": []}));
    let (status, _) = c.get("/trsrv/event/contracts?exchange=FORECASTX").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Contract lookups know them as event contracts (YES = call).
    let sd = c.ok(&format!("/trsrv/secdef?conids={YES},{NO}")).await;
    assert_eq!(sd["secdef"][0]["isEventContract"], json!(true));
    assert_eq!(sd["secdef"][0]["putOrCall"], "C");
    assert_eq!(sd["secdef"][1]["putOrCall"], "P");
    assert_eq!(sd["secdef"][1]["undConid"], json!(HORC));

    let info = c.ok(&format!("/iserver/contract/{NO}/info")).await;
    assert_eq!(info["local_symbol"], "HORC Jan04'27 1.0 NO @FORECASTX");
    assert_eq!(info["underlying_con_id"], json!(HORC));
    assert_eq!(info["exchange"], "FORECASTX");

    // Each side has its own quote; the two add up to the payout.
    let yes = dec(&c.snapshot(YES, "31,84,86").await["31"]);
    let no = dec(&c.snapshot(NO, "31,84,86").await["31"]);
    assert!(yes > Decimal::ZERO && no > Decimal::ZERO);
    assert_eq!(yes + no, Decimal::ONE);
}

#[tokio::test]
async fn sells_are_rejected_and_nothing_is_booked() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let sell = json!({"orders": [{"conid": YES, "orderType": "MKT", "side": "SELL",
                                  "tif": "DAY", "quantity": 5}]});
    let placed = c
        .ok_post(&format!("/iserver/account/{ACCT}/orders"), sell.clone())
        .await;
    let err = placed["error"].as_str().expect("a 200 error");
    assert!(err.contains("cannot be sold"), "{err}");
    let whatif = c
        .ok_post(&format!("/iserver/account/{ACCT}/orders/whatif"), sell)
        .await;
    assert!(whatif["error"]
        .as_str()
        .is_some_and(|e| e.contains("cannot be sold")));
    // A stock can still be sold short on the same account.
    let stock = c
        .ok_post(
            &format!("/iserver/account/{ACCT}/orders"),
            json!({"orders": [{"conid": AAPL, "orderType": "MKT", "side": "SELL",
                               "tif": "DAY", "quantity": 1}]}),
        )
        .await;
    assert!(stock[0]["order_id"].is_string(), "{stock}");
    gw.advance(Duration::from_secs(2 * 86_400));
    let trades = c.ok("/iserver/account/trades?days=7").await;
    assert!(trades
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["conid"] == json!(AAPL)));
}

async fn trade_count(c: &Client) -> usize {
    c.ok("/iserver/account/trades?days=7")
        .await
        .as_array()
        .map_or(0, Vec::len)
}

/// Buy `qty` at market and let replay days pass until the venue reported
/// `reports` executions for it (weekends have no bars).
async fn buy(gw: &gateway_sim::GatewayHandle, c: &Client, conid: i64, qty: u32, reports: usize) {
    let before = trade_count(c).await;
    let placed = c
        .ok_post(
            &format!("/iserver/account/{ACCT}/orders"),
            json!({"orders": [{"conid": conid, "orderType": "MKT", "side": "BUY",
                               "tif": "DAY", "quantity": qty}]}),
        )
        .await;
    assert!(placed[0]["order_id"].is_string(), "{placed}");
    for _ in 0..5 {
        gw.advance(Duration::from_secs(86_400));
        if trade_count(c).await >= before + reports {
            break;
        }
    }
    assert_eq!(trade_count(c).await, before + reports);
}

/// `(side, conid, size)` of a trade object.
fn leg(t: &Value) -> (String, i64, Decimal) {
    (
        t["side"].as_str().unwrap().to_owned(),
        t["conid"].as_i64().unwrap(),
        dec(&t["size"]),
    )
}

fn legs(trades: &[Value]) -> Vec<(String, i64, Decimal)> {
    trades.iter().map(leg).collect()
}

fn n(side: &str, conid: i64, size: i64) -> (String, i64, Decimal) {
    (side.to_owned(), conid, Decimal::from(size))
}

/// Current non-flat positions as `(conid, quantity)`.
async fn positions(c: &Client) -> Vec<(i64, Decimal)> {
    let list = c
        .ok(&format!("/portfolio/{ACCT}/positions/0"))
        .await
        .as_array()
        .unwrap()
        .clone();
    list.iter()
        .map(|p| (p["conid"].as_i64().unwrap(), dec(&p["position"])))
        .collect()
}

/// Wait for `str` messages until `count` executions arrived.
async fn streamed(ws: &mut Ws, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < count {
        let msg = wait_topic(ws, |t| t == "str", T)
            .await
            .expect("str message");
        out.extend(msg["args"].as_array().unwrap().iter().cloned());
    }
    out
}

#[tokio::test]
async fn buying_the_opposite_side_nets_as_the_spec_shows() {
    let gw = start(|c| c.prompts.clear()).await;
    let c = Client::new(&gw);
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, r#"str+{"realtimeUpdatesOnly":true}"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Opening: a plain B.
    buy(&gw, &c, YES, 100, 1).await;
    let trades = c.ok("/iserver/account/trades?days=7").await;
    let trades = trades.as_array().unwrap().clone();
    assert_eq!(legs(&trades), vec![n("B", YES, 100)]);
    assert_eq!(trades[0]["is_event_trading"], "1");
    assert_eq!(positions(&c).await, vec![(YES, Decimal::from(100))]);

    // "long 100 YES ... buy 10 NO ... Bot 10 NO, Netting 10 YES, Netting 10
    // NO ... Account contains only the long 90 YES position."
    buy(&gw, &c, NO, 10, 3).await;
    let all = c.ok("/iserver/account/trades?days=7").await;
    let all = all.as_array().unwrap().clone();
    let second = &all[1..];
    assert_eq!(
        legs(second),
        vec![n("B", NO, 10), n("N", YES, 10), n("N", NO, 10)]
    );
    let bought_at = dec(&second[0]["price"]);
    assert_eq!(dec(&second[1]["price"]), Decimal::ONE - bought_at);
    assert_eq!(dec(&second[2]["price"]), bought_at);
    let id = second[0]["execution_id"].as_str().unwrap();
    assert_eq!(second[1]["execution_id"], json!(format!("{id}.N1")));
    assert_eq!(second[2]["execution_id"], json!(format!("{id}.N2")));
    assert_eq!(positions(&c).await, vec![(YES, Decimal::from(90))]);

    // "now long 90 YES ... buy 130 NO ... Bot 130 NO, Netting 90 YES,
    // Netting 90 NO ... Account contains only the long 40 NO position."
    buy(&gw, &c, NO, 130, 3).await;
    let all = c.ok("/iserver/account/trades?days=7").await;
    let all = all.as_array().unwrap().clone();
    assert_eq!(
        legs(&all[4..]),
        vec![n("B", NO, 130), n("N", YES, 90), n("N", NO, 90)]
    );
    let held = positions(&c).await;
    assert_eq!(held, vec![(NO, Decimal::from(40))]);

    // The websocket saw the same seven executions in the same order.
    let live = streamed(&mut ws, 7).await;
    assert_eq!(legs(&live), legs(&all));

    // Cash: buys pay, each netted pair returns its payout of 1.
    let mut cash = Decimal::from(1_000_000);
    for t in &all {
        let amount = dec(&t["size"]) * dec(&t["price"]);
        cash += if t["side"] == "B" { -amount } else { amount };
        cash -= dec(&t["commission"]);
    }
    let ledger = c.ok(&format!("/portfolio/{ACCT}/ledger")).await;
    assert_eq!(dec(&ledger["BASE"]["cashbalance"]), cash.round_dp(2));
    let row = c
        .ok(&format!("/portfolio/{ACCT}/positions/0"))
        .await
        .as_array()
        .unwrap()[0]
        .clone();
    assert_eq!(row["putOrCall"], "P");
    assert_eq!(row["contractDesc"], "HORC Jan04'27 1.0 NO @FORECASTX");
}
