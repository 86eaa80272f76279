//! Fuzz targets (proptest, stable Rust) for every parser the client runs
//! on what the network sends (issue 12): the websocket frame decoder
//! ([`FrameDecoder`], the code the websocket task runs, text and binary
//! frames, with its state across frames), and each REST answer as the
//! client handles it: the status and body check ([`check_response`]: HTML
//! where JSON is expected, `{"error": ...}` in a 200, 401/429/5xx bodies),
//! then the typed decode ([`decode`]) and the conversions the client and
//! the bot apply to the result (executions, orders, contracts, trading
//! hours, positions, ForecastEx pairs, order answers, history bars).
//!
//! Inputs, so the parsers are driven past their first check:
//! * arbitrary bytes;
//! * arbitrary JSON values, with the field names and topics the parsers
//!   look for and extreme numbers;
//! * the spec's examples (`fixtures/`, copied from the spec) with random
//!   byte edits, cuts, or one number replaced by an extreme one.
//!
//! Property: never a panic; a value or a typed error. The decoder also
//! never publishes one execution id twice.
//!
//! Cases per target: 512 by default (CI); `FUZZ_CASES` or `PROPTEST_CASES`
//! overrides, e.g. the long run
//! `FUZZ_CASES=1000000 cargo test --release -p ibflow-ibkr --test fuzz_parsers`.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

use std::collections::{BTreeMap, HashSet};

use cpapi::messages::*;
use engine::event::Event;
use engine::model::Conid;
use ibkr::rest::{check_response, decode};
use ibkr::ws::{FrameDecoder, WsMessage};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn config() -> Config {
    Config {
        cases: fuzz::cases(512),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Field names and values the parsers look for, so generated objects
/// reach past "missing field".
const KEYS: &[&str] = &[
    "topic",
    "args",
    "conid",
    "conidEx",
    "orderId",
    "order_id",
    "status",
    "price",
    "size",
    "execution_id",
    "side",
    "account",
    "acctId",
    "accountCode",
    "order_ref",
    "trade_time_r",
    "commission",
    "authenticated",
    "connected",
    "competing",
    "message",
    "session",
    "iserver",
    "authStatus",
    "accounts",
    "orders",
    "data",
    "t",
    "o",
    "h",
    "l",
    "c",
    "v",
    "error",
    "id",
    "serverId",
    "symbol",
    "position",
    "mktPrice",
    "avgCost",
    "amount",
    "schedules",
    "contracts",
    "secdef",
    "sessions",
    "tradingTimes",
    "openingTime",
    "closingTime",
    "31",
    "84",
    "86",
    "85",
    "88",
    "55",
    "7059",
    "6509",
    "_updated",
    "dpl",
    "upl",
    "nl",
    "row",
    "focus",
    "bid",
    "ask",
    "hb",
    "success",
    "text",
    "title",
    "filledQuantity",
    "remainingQuantity",
    "totalSize",
    "orderType",
    "timeInForce",
    "ticker",
    "lastExecutionTime_r",
    "reply",
    "messageIds",
    "isSingleGroup",
    "strike",
    "right",
    "expiration",
    "multiplier",
    "secType",
    "assetClass",
    "cOID",
    "parentId",
    "local_order_id",
    "order_status",
    "fill_price",
    "isEventContract",
    "underlyingConid",
    "und_conid",
];

const TOPICS: &[&str] = &[
    "smd+265598",
    "smd+8314",
    "sor",
    "str",
    "sts",
    "spl",
    "blt",
    "ntf",
    "sbd+U1234567+265598",
    "smh+265598",
    "act",
    "system",
    "ssd+U1234567",
    "sld+U1234567",
    "tic",
    "",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        select(fuzz::EXTREME_NUMBERS)
            .prop_map(|n| serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.into()))),
        "[ -~]{0,16}".prop_map(Value::String),
        select(KEYS).prop_map(|k| Value::String(k.into())),
        select(TOPICS).prop_map(|k| Value::String(k.into())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => select(KEYS).prop_map(str::to_owned), 1 => "[a-zA-Z0-9_.]{0,8}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every kind of input, seeded with `seeds`: the shared generators
/// (`tests/support/fuzz.rs`) and arbitrary JSON with the parsers' keys.
fn inputs(seeds: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        8 => fuzz::seeded(seeds),
    ]
}

/// The HTTP statuses a gateway answers with.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200u16),
        1 => select(vec![201u16, 204, 302, 400, 401, 403, 404, 429, 500, 503, 504]),
        1 => any::<u16>(),
    ]
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The spec elides repeated entries with `{...}`: drop those lines and
    // the commas they leave.
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !matches!(l.trim(), "{...}" | "{...}," | "..." | "...,"))
        .collect();
    let mut s = kept.join("\n");
    while let Some(i) = trailing_comma(&s) {
        s.remove(i);
    }
    s
}

fn trailing_comma(s: &str) -> Option<usize> {
    s.char_indices().find_map(|(i, c)| {
        if c != ',' {
            return None;
        }
        let rest = s[i + 1..].trim_start();
        (rest.starts_with(']') || rest.starts_with('}')).then_some(i)
    })
}

fn seeds(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| fixture(n)).collect()
}

/// A REST answer as the client handles it: the status and body check,
/// then the typed decode; `then` applies the conversions the client and
/// the bot run on the value. Errors must format (they end up in logs).
fn rest<T: DeserializeOwned>(status: u16, body: &[u8], then: impl FnOnce(T)) {
    match check_response("/x", status, body) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(()) => match decode::<T>("/x", body) {
            Ok(v) => then(v),
            Err(e) => {
                let _ = e.to_string();
            }
        },
    }
}

macro_rules! rest_target {
    ($(#[$doc:meta])* $name:ident: $ty:ty, [$($seed:literal),+ $(,)?], |$v:ident| $then:expr) => {
        proptest! {
            #![proptest_config(config())]
            $(#[$doc])*
            #[test]
            fn $name(status in status(), body in inputs(seeds(&[$($seed),+]))) {
                rest::<$ty>(status, &body, |$v| $then);
            }
        }
    };
}

rest_target!(
    /// `/tickle`: the auth status inside it becomes the session status.
    tickle: Tickle, ["tickle"], |t| { let _ = t.auth_status().to_session_status(); });
rest_target!(
    /// `/iserver/auth/status`, `/iserver/auth/ssodh/init`.
    auth_status: AuthStatus, ["auth_status", "auth_status_logged_out", "ssodh_init"],
    |a| { let _ = a.to_session_status(); });
rest_target!(logout: LogoutResponse, ["suppress"], |_v| ());
rest_target!(sso_validate: SsoValidate, ["sso_validate"], |_v| ());
rest_target!(iserver_accounts: BrokerageAccounts, ["iserver_accounts"], |_v| ());
rest_target!(portfolio_accounts: Vec<PortfolioAccount>, ["portfolio_accounts"], |_v| ());
rest_target!(secdef_search: Vec<SecdefSearchResult>, ["secdef_search"], |_v| ());
rest_target!(secdef_info: Vec<SecdefInfo>, ["secdef_info"], |_v| ());
rest_target!(
    contract_info: ContractInfo, ["contract_info"], |c| { let _ = c.to_contract(); });
rest_target!(contract_rules: ContractRules, ["contract_rules"], |_v| ());
rest_target!(
    /// `/trsrv/secdef`: each definition becomes the engine's contract.
    trsrv_secdef: TrsrvSecdefs, ["trsrv_secdef"],
    |d| { for s in &d.secdef { let _ = s.contract(); } });
rest_target!(
    /// `/trsrv/secdef/schedule`: trading hours for risk.
    trading_schedule: Vec<TradingSchedule>, ["trsrv_schedule"],
    |s| { for x in &s { let _ = x.to_hours(); } });
rest_target!(stocks: StocksBySymbol, ["trsrv_stocks"], |_v| ());
rest_target!(futures: FuturesBySymbol, ["trsrv_futures"], |_v| ());
rest_target!(strikes: Strikes, ["secdef_strikes"], |_v| ());
rest_target!(
    event_category_tree: BTreeMap<String, EventCategory>, ["event_category_tree"], |_v| ());
rest_target!(
    /// `/trsrv/event/contracts`: YES/NO pairs for ForecastEx.
    event_contracts: EventContracts, ["event_contracts"],
    |e| { let _ = e.records(); let _ = e.pairing(); });
rest_target!(snapshot: Vec<SnapshotRow>, ["snapshot"], |_v| ());
rest_target!(
    /// Place, reply and modify answers: acknowledged orders or a prompt.
    place_outcome: Value,
    ["place_order", "place_order_prompt", "place_order_reject", "reply", "modify", "modify_prompt"],
    |v| { let _ = PlaceOutcome::from_value(v); });
rest_target!(whatif: WhatIf, ["whatif"], |w| { let _ = w.commission(); });
rest_target!(cancel: CancelResponse, ["cancel", "cancel_error"], |_v| ());
rest_target!(
/// `/iserver/account/orders`: each order as the broker maps it.
live_orders: LiveOrders, ["live_orders"],
|l| {
    for o in &l.orders {
        let _ = o.status_of_order();
        let _ = o.order_type();
        let _ = o.side();
        let _ = o.to_request();
    }
});
rest_target!(
    order_status: OrderStatusInfo, ["order_status"], |o| { let _ = o.status(); });
rest_target!(
    /// `/iserver/account/trades`: each row as an execution.
    trades: Vec<Trade>, ["trades"], |t| { for x in &t { let _ = x.to_execution(); } });
rest_target!(status_response: StatusResponse, ["suppress", "suppress_reset"], |_v| ());
rest_target!(
    /// `/portfolio/{acct}/positions`: positions seed the portfolio.
    positions: Vec<PortfolioPosition>, ["positions"],
    |p| { for x in &p { let _ = x.to_position(); } });
rest_target!(portfolio_summary: PortfolioSummary, ["portfolio_summary"], |_v| ());
rest_target!(ledger: Ledger, ["ledger"], |_v| ());

proptest! {
    #![proptest_config(config())]

    /// Websocket frames, a few in a row through one decoder (its state
    /// carries over), as text and as binary frames. No execution id is
    /// published twice.
    #[test]
    fn websocket_frames(frames in vec(ws_frame(), 1..5), binary in any::<bool>()) {
        let mut d = FrameDecoder::new();
        let mut seen = HashSet::new();
        for f in &frames {
            let out = if binary {
                d.binary(f)
            } else {
                d.text(&String::from_utf8_lossy(f))
            };
            for m in out {
                if let WsMessage::Event(Event::Execution(e)) = &m {
                    prop_assert!(seen.insert(e.execution_id.clone()), "published twice: {e:?}");
                }
                let _ = format!("{m:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// History answers (both endpoints) as the client parses them. This
    /// target found `volume * volumeFactor` overflowing in
    /// `cpapi::history::parse_history` (now checked).
    #[test]
    fn history(status in status(), body in inputs(seeds(&["hmds_history", "iserver_history"]))) {
        if check_response("/hmds/history", status, &body).is_ok() {
            if let Err(e) = cpapi::history::parse_history(Conid(265598), &body) {
                let _ = e.to_string();
            }
        }
    }
}

/// A frame: anything, a generated message with a known topic, or a
/// mutated example of each topic.
fn ws_frame() -> impl Strategy<Value = Vec<u8>> {
    let mut examples = seeds(&["ws_blt", "ws_ntf", "ws_system"]);
    examples.extend(WS_EXAMPLES.iter().map(|s| (*s).to_owned()));
    prop_oneof![
        3 => inputs(examples),
        2 => (select(TOPICS), json_value(), btree_map(key(), json_value(), 0..6)).prop_map(
            |(topic, args, mut rest)| {
                rest.insert("topic".into(), Value::String(topic.into()));
                rest.insert("args".into(), args);
                Value::Object(rest.into_iter().collect()).to_string().into_bytes()
            }
        ),
    ]
}

/// One example per topic the decoder reads (the spec shows placeholders
/// for several; these are the shapes the simulator sends).
const WS_EXAMPLES: &[&str] = &[
    r#"{"topic":"smd+265598","conid":265598,"_updated":1702334859712,"31":"192.26","84":"192.25","86":"192.27","85":"300","88":"200","7059":"100","6509":"RpB","server_id":"q0"}"#,
    r#"{"topic":"sor","args":[{"acct":"U1234567","conid":265598,"orderId":1234568790,"orderDesc":"Buy 5 Limit 192.25","ticker":"AAPL","secType":"STK","remainingQuantity":5.0,"filledQuantity":0.0,"totalSize":5.0,"status":"Submitted","origOrderType":"LIMIT","orderType":"Limit","price":"192.25","side":"BUY","timeInForce":"CLOSE","order_ref":"ibf-1","lastExecutionTime_r":1702317649000}]}"#,
    r#"{"topic":"str","args":[{"execution_id":"0000e0d5.6576fd38.01.01","symbol":"AAPL","side":"S","order_description":"Sold 5 @ 192.26 on ISLAND","trade_time":"20231211-18:00:49","trade_time_r":1702317649000,"size":"5","price":"192.26","order_ref":"Order123","exchange":"ISLAND","commission":"1.01","net_amount":961.3,"account":"U1234567","sec_type":"STK","conid":265598}]}"#,
    r#"{"topic":"sts","args":{"authenticated":true,"competing":false,"message":"","fail":"","serverName":"JifZ20001","serverVersion":"Build 10.25.0p"}}"#,
    r#"{"topic":"spl","args":{"U1234567.Core":{"rowType":1,"dpl":15.7,"nl":10000.0,"upl":607.0,"el":10000.0,"mv":0.0}}}"#,
    r#"{"topic":"sbd+U1234567+265598","data":[{"row":0,"focus":0,"price":"192.27","ask":"300"},{"row":1,"focus":1,"price":"100 @ 192.26"},{"row":2,"focus":0,"price":"192.25","bid":"200"}]}"#,
    r#"{"serverId":"20477","symbol":"AAPL","text":"APPLE INC","priceFactor":100,"startTime":"20230818-08:00:00","high":"17740/1234/60","low":"17100/100/0","timePeriod":"1d","barLength":60,"mdAvailability":"S","mktDataDelay":0,"outsideRth":false,"volumeFactor":1,"priceDisplayRule":1,"priceDisplayValue":"2","negativeCapable":false,"messageVersion":2,"data":[{"o":173.4,"c":173.5,"h":173.6,"l":173.3,"v":100,"t":1692345600000}],"points":0,"topic":"smh+265598"}"#,
    r#"{"topic":"act","args":{"accounts":["U1234567"],"acctProps":{"U1234567":{"hasChildAccounts":false}},"selectedAccount":"U1234567"}}"#,
    r#"{"topic":"system","hb":1702334859712}"#,
];
