//! Every response parser against the spec's example JSON (copied verbatim
//! into `fixtures/`), plus variants with missing fields, unknown fields and
//! numbers sent as strings.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

use std::collections::BTreeMap;

use cpapi::messages::*;
use cpapi::smd::SmdDecoder;
use engine::model::{Conid, ExecSide, OrderStatus, Side};
use ibkr::rest::decode;
use ibkr::IbkrError;
use rust_decimal_macros::dec;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Some spec examples elide repeated entries with `{...}` or `...`; drop
/// those lines (and the trailing commas they leave) and nothing else.
fn spec_json(name: &str) -> String {
    let text = fixture(name);
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !matches!(l.trim(), "{...}" | "{...}," | "..." | "...,"))
        .collect();
    let mut s = kept.join("\n");
    loop {
        let before = s.len();
        for close in ["]", "}"] {
            while let Some(i) = find_trailing_comma(&s, close) {
                s.remove(i);
            }
        }
        if s.len() == before {
            break;
        }
    }
    s
}

fn find_trailing_comma(s: &str, close: &str) -> Option<usize> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b',' {
            let rest = s[i + 1..].trim_start();
            if rest.starts_with(close) {
                return Some(i);
            }
        }
    }
    None
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    match decode::<T>(name, spec_json(name).as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Re-encode every number of a JSON value as a string, recursively.
fn numbers_as_strings(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_strings).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, numbers_as_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Add an unknown field to every object below the top level (a top-level
/// map keyed by symbol has no "unknown" keys: every key is data).
fn with_unknown_fields_below_top(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, with_unknown_fields(v)))
                .collect(),
        ),
        other => with_unknown_fields(other),
    }
}

/// Add an unknown field to every object.
fn with_unknown_fields(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(with_unknown_fields).collect()),
        Value::Object(o) => {
            let mut o: serde_json::Map<String, Value> = o
                .into_iter()
                .map(|(k, v)| (k, with_unknown_fields(v)))
                .collect();
            o.insert("zz_unknown_field".into(), json!({"nested": [1, "x"]}));
            Value::Object(o)
        }
        other => other,
    }
}

/// The example, the example with numbers as strings, and with unknown fields
/// all decode.
fn variants<T: DeserializeOwned>(name: &str) -> Vec<T> {
    variants_of(name, true)
}

/// For bodies that are maps keyed by data (symbol -> ...): unknown fields
/// are only added inside the entries.
fn keyed_variants<T: DeserializeOwned>(name: &str) -> Vec<T> {
    variants_of(name, false)
}

fn variants_of<T: DeserializeOwned>(name: &str, top_level_unknown: bool) -> Vec<T> {
    let v: Value = serde_json::from_str(&spec_json(name)).unwrap();
    [
        v.clone(),
        numbers_as_strings(v.clone()),
        with_unknown_fields(v.clone()),
        with_unknown_fields_below_top(v),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| top_level_unknown || *i != 2)
    .map(|(i, v)| {
        let text = v.to_string();
        decode::<T>(name, text.as_bytes()).unwrap_or_else(|e| panic!("{name} variant {i}: {e}"))
    })
    .collect()
}

#[test]
fn session_examples() {
    let a: AuthStatus = parse("auth_status");
    assert!(a.authenticated && a.connected && !a.competing);
    assert_eq!(
        a.server_info.unwrap().server_name.as_deref(),
        Some("JifN19053")
    );
    let a: AuthStatus = parse("auth_status_logged_out");
    assert!(!a.authenticated && !a.connected);
    assert_eq!(a.message, None);
    let a: AuthStatus = parse("ssodh_init");
    assert!(a.authenticated);
    for t in variants::<Tickle>("tickle") {
        assert_eq!(t.session.expose(), "bb665d0f55b6289d70bc7380089fc96f");
        assert_eq!(t.sso_expires_ms, Some(460311));
        assert!(t.auth_status().authenticated);
    }
    let t: Tickle = parse("tickle");
    assert!(
        !format!("{t:?}").contains("bb665d0f"),
        "session token leaked into Debug"
    );
    for v in variants::<SsoValidate>("sso_validate") {
        assert!(v.result);
        assert_eq!(v.user_name.as_deref(), Some("user1234"));
        assert_eq!(v.login_type, Some(2));
        assert_eq!(v.expires_ms, Some(415890));
    }
    // Missing everything: defaults, not an error.
    let a: AuthStatus = decode("x", b"{}").unwrap();
    assert!(!a.authenticated);
    let t: Tickle = decode("x", b"{}").unwrap();
    assert!(t.session.is_empty());
    let l: LogoutResponse = decode("x", br#"{"status":true}"#).unwrap();
    assert!(l.status);
}

#[test]
fn account_examples() {
    for a in variants::<BrokerageAccounts>("iserver_accounts") {
        assert_eq!(a.accounts, vec!["U1234567"]);
        assert_eq!(a.selected_account.as_deref(), Some("U1234567"));
        assert!(!a.is_paper);
    }
    for a in variants::<Vec<PortfolioAccount>>("portfolio_accounts") {
        assert_eq!(a[0].id, "U1234567");
        assert_eq!(a[0].account_type.as_deref(), Some("DEMO"));
    }
    // The spec's switch-account example is not valid JSON (an unclosed
    // string); this is it with the quote closed.
    let s: SwitchAccount = decode("x", br#"{"set": true, "acctId": "U1234567"}"#).unwrap();
    assert!(s.set);
    assert_eq!(s.acct_id.as_deref(), Some("U1234567"));
}

#[test]
fn contract_examples() {
    for r in variants::<Vec<SecdefSearchResult>>("secdef_search") {
        assert_eq!(r[0].conid, Conid(43645865));
        assert_eq!(r[0].symbol.as_deref(), Some("IBKR"));
    }
    for r in variants::<Vec<SecdefInfo>>("secdef_info") {
        assert_eq!(r[0].conid, Conid(667629330));
        assert_eq!(r[0].strike, Some(dec!(195.0)));
        assert_eq!(r[0].multiplier, Some(dec!(100)));
    }
    for c in variants::<ContractInfo>("contract_info") {
        assert_eq!(c.conid, Conid(265598));
        let k = c.to_contract();
        assert_eq!(k.symbol, "AAPL");
        assert_eq!(k.sec_type, engine::model::SecType::Stock);
        assert_eq!(k.multiplier, dec!(1));
    }
    for r in variants::<ContractRules>("contract_rules") {
        assert!(r.algo_eligible);
        assert_eq!(r.can_trade_acct_ids, vec!["U1234567"]);
        assert!(r.order_types.contains(&"limit".to_string()));
        assert_eq!(r.default_size, Some(dec!(100)));
    }
    for s in variants::<TrsrvSecdefs>("trsrv_secdef") {
        assert_eq!(s.secdef[0].conid, Conid(265598));
        assert_eq!(s.secdef[0].ticker.as_deref(), Some("AAPL"));
    }
    for s in keyed_variants::<StocksBySymbol>("trsrv_stocks") {
        assert_eq!(s["AAPL"][0].contracts[0].conid, Conid(265598));
        assert!(s["AAPL"][0].contracts[0].is_us);
    }
    for f in keyed_variants::<FuturesBySymbol>("trsrv_futures") {
        assert_eq!(f["ES"][0].conid, Conid(495512552));
        assert_eq!(f["ES"][0].expiration_date.as_deref(), Some("20231215"));
        assert_eq!(f["MES"].len(), 1);
    }
    for s in variants::<Vec<TradingSchedule>>("trsrv_schedule") {
        assert_eq!(s[0].timezone.as_deref(), Some("America/New_York"));
        let day = &s[0].schedules[0];
        assert_eq!(day.sessions[0].opening_time.as_deref(), Some("0930"));
        assert_eq!(day.tradingtimes[0].cancel_day_orders.as_deref(), Some("Y"));
    }
    for s in variants::<Strikes>("secdef_strikes") {
        assert_eq!(s.call, vec![dec!(185), dec!(190), dec!(195), dec!(200)]);
        assert_eq!(s.put.len(), 4);
    }
}

#[test]
fn event_contract_examples() {
    for t in variants::<BTreeMap<String, EventCategory>>("event_category_tree") {
        assert_eq!(t["g17654"].parent_id.as_deref(), Some("g17574"));
        assert_eq!(t["g17654"].markets[0].conid, Conid(751047561));
        assert!(t["g1003"].markets.is_empty());
    }
    for c in variants::<EventContracts>("event_contracts") {
        let e = &c.contracts[0];
        assert_eq!(e.conid, Conid(762089343));
        assert_eq!(e.strike, Some(dec!(1.0)));
        assert_eq!(e.price_increment, Some(dec!(0.01)));
        assert_eq!(e.put_or_call.as_deref(), Some("C"));
    }
}

#[test]
fn market_data_examples() {
    for rows in variants::<Vec<SnapshotRow>>("snapshot") {
        let mut d = SmdDecoder::new();
        let s = d.decode_value(&rows[0]).unwrap();
        assert_eq!(s.quote.conid, Conid(265598));
        assert_eq!(s.quote.last, Some(dec!(193.18)));
        assert_eq!(s.quote.bid, Some(dec!(193.06)));
        assert_eq!(s.quote.ask, Some(dec!(193.14)));
        assert_eq!(s.raw("6509"), Some("RpB"));
        assert_eq!(s.quote.time.unwrap().timestamp_millis(), 1702334859712);
    }
    // History bodies go through cpapi::history::parse_history.
    let h =
        cpapi::history::parse_history(Conid(265598), spec_json("hmds_history").as_bytes()).unwrap();
    assert_eq!(h.bars.len(), 1);
    assert_eq!(h.bars[0].open, dec!(195.01));
    let h = cpapi::history::parse_history(Conid(265598), fixture("iserver_history").as_bytes())
        .unwrap();
    assert!(!h.bars.is_empty());
}

#[test]
fn order_examples() {
    for o in variants::<LiveOrders>("live_orders") {
        let x = &o.orders[0];
        assert_eq!(x.conid, Conid(265598));
        assert_eq!(x.order_id.as_deref(), Some("1234568790"));
        assert_eq!(x.order_status().unwrap(), OrderStatus::Filled);
        assert_eq!(x.side().unwrap(), Side::Sell);
        assert_eq!(x.avg_price, Some(dec!(192.26)));
        assert_eq!(x.filled_quantity, Some(dec!(5)));
        assert!(o.snapshot);
    }
    for s in variants::<OrderStatusInfo>("order_status") {
        assert_eq!(s.status().unwrap(), OrderStatus::Filled);
        assert_eq!(s.order_id.as_deref(), Some("1799796559"));
        assert_eq!(s.cum_fill, Some(dec!(5)));
        assert_eq!(s.average_price, Some(dec!(192.26)));
        assert!(s.cannot_cancel_order);
    }
    for t in variants::<Vec<Trade>>("trades") {
        let e = t[0].to_execution().unwrap();
        assert_eq!(e.execution_id, "0000e0d5.6576fd38.01.01");
        assert_eq!(e.side, ExecSide::Sold);
        assert_eq!(e.size, dec!(5));
        assert_eq!(e.price, dec!(192.26));
        assert_eq!(e.commission, dec!(1.01));
        assert_eq!(e.net_amount, dec!(961.3));
        assert_eq!(e.time.timestamp_millis(), 1702317649000);
        assert_eq!(e.order_ref.as_deref(), Some("Order123"));
    }
    // Netting executions (ForecastEx) and a trade with only trade_time.
    let t: Vec<Trade> = decode(
        "x",
        br#"[{"execution_id":"e1","conid":"1","accountCode":"U1","side":"N","size":"3","price":"0.4","trade_time":"20231211-18:00:49"}]"#,
    )
    .unwrap();
    let e = t[0].to_execution().unwrap();
    assert_eq!(e.side, ExecSide::Netting);
    assert_eq!(e.time.timestamp(), 1702317649);
    let t: Vec<Trade> = decode(
        "x",
        br#"[{"execution_id":"e1","conid":1,"side":"Q","size":1,"price":1,"trade_time_r":1}]"#,
    )
    .unwrap();
    assert!(
        t[0].to_execution().is_err(),
        "unknown side is an error, not a guess"
    );

    let v: Value = serde_json::from_str(&fixture("place_order")).unwrap();
    assert_eq!(
        PlaceOutcome::from_value(v).unwrap(),
        PlaceOutcome::Acknowledged(vec![OrderAck {
            order_id: Some("1234567890".into()),
            order_status: Some("Submitted".into()),
            encrypt_message: Some("1".into()),
            ..OrderAck::default()
        }])
    );
    let v: Value = serde_json::from_str(&fixture("place_order_prompt")).unwrap();
    match PlaceOutcome::from_value(v).unwrap() {
        PlaceOutcome::Prompt(p) => {
            assert_eq!(p.id, "07a13a5a-4a48-44a5-bb25-5ab37b79186c");
            assert_eq!(p.message_ids, vec!["o163"]);
            assert!(p.message[0].contains("Percentage constraint"));
        }
        other => panic!("{other:?}"),
    }
    for name in ["reply", "modify"] {
        let v: Value = serde_json::from_str(&fixture(name)).unwrap();
        assert!(
            matches!(PlaceOutcome::from_value(v).unwrap(), PlaceOutcome::Acknowledged(a) if a.len() == 1)
        );
    }
    let v: Value = serde_json::from_str(&fixture("modify_prompt")).unwrap();
    assert!(
        matches!(PlaceOutcome::from_value(v).unwrap(), PlaceOutcome::Prompt(p) if p.message_ids == vec!["o0"])
    );
    // order_id as a number.
    let v = json!([{"order_id": 42, "order_status": "PreSubmitted"}]);
    assert!(
        matches!(PlaceOutcome::from_value(v).unwrap(), PlaceOutcome::Acknowledged(a) if a[0].order_id.as_deref() == Some("42"))
    );

    for w in variants::<WhatIf>("whatif") {
        assert_eq!(w.commission(), Some(dec!(1)));
        assert_eq!(w.equity.unwrap().after.as_deref(), Some("215,415,593"));
        assert!(w.warn.unwrap().starts_with("21/"));
    }
    for c in variants::<CancelResponse>("cancel") {
        assert_eq!(c.msg.as_deref(), Some("Request was submitted"));
        assert_eq!(c.order_id.as_deref(), Some("123456789"));
    }
    for name in ["suppress", "suppress_reset"] {
        let s: StatusResponse = parse(name);
        assert_eq!(s.status.as_deref(), Some("submitted"));
    }
}

#[test]
fn portfolio_examples() {
    for p in variants::<Vec<PortfolioPosition>>("positions") {
        assert_eq!(p.len(), 3);
        let pos = p[0].to_position();
        assert_eq!(pos.conid, Conid(756733));
        assert_eq!(pos.quantity, dec!(5));
        assert_eq!(pos.avg_price, dec!(434.93));
        assert_eq!(pos.multiplier, dec!(1), "null multiplier is 1");
        assert_eq!(p[0].unrealized_pnl, Some(dec!(181.15)));
    }
    for s in variants::<PortfolioSummary>("portfolio_summary") {
        assert_eq!(s["accountcode"].value, Some(json!("U1234567")));
        assert_eq!(s["indianstockhaircut"].currency.as_deref(), Some("USD"));
    }
    for l in variants::<Ledger>("ledger") {
        assert_eq!(l["USD"].cashbalance, Some(dec!(214716688.0)));
        assert_eq!(l["USD"].netliquidationvalue, Some(dec!(215335840.0)));
        assert!(l.contains_key("BASE"));
    }
}

#[test]
fn decode_errors_name_the_field() {
    let e = decode::<Vec<Trade>>(
        "/iserver/account/trades",
        br#"[{"execution_id":"e","conid":"AAPL","side":"B","size":1,"price":1}]"#,
    )
    .unwrap_err();
    match e {
        IbkrError::Decode {
            message, endpoint, ..
        } => {
            assert_eq!(endpoint, "/iserver/account/trades");
            assert!(message.contains("conid"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode::<AuthStatus>("x", b"<html>"),
        Err(IbkrError::Decode { .. })
    ));
}

/// Every type decodes from an object holding only its required fields
/// (conid, ids, and for trades/positions the numbers); optional fields
/// absent are `None`/defaults, never an error.
#[test]
fn missing_fields_decode_to_defaults() {
    fn ok<T: DeserializeOwned>(body: &str) -> T {
        decode::<T>("x", body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }
    let _: AuthStatus = ok("{}");
    let _: Tickle = ok("{}");
    let _: SsoValidate = ok("{}");
    let _: BrokerageAccounts = ok("{}");
    let _: Vec<PortfolioAccount> = ok("[{}]");
    let r: Vec<SecdefSearchResult> = ok(r#"[{"conid":"1"}]"#);
    assert_eq!(r[0].symbol, None);
    let _: Vec<SecdefInfo> = ok(r#"[{"conid":1}]"#);
    let c: ContractInfo = ok(r#"{"con_id":1}"#);
    assert_eq!(c.to_contract().multiplier, dec!(1));
    let _: ContractRules = ok("{}");
    let _: TrsrvSecdefs = ok("{}");
    let _: StocksBySymbol = ok(r#"{"X":[{}]}"#);
    let _: Vec<TradingSchedule> = ok("[{}]");
    let s: Strikes = ok("{}");
    assert!(s.call.is_empty());
    let _: EventContracts = ok(r#"{"contracts":[{"conid":1}]}"#);
    let o: LiveOrders = ok(r#"{"orders":[{"conid":1,"orderId":2}]}"#);
    assert!(
        o.orders[0].order_status().is_err(),
        "no status is an error when asked"
    );
    let _: OrderStatusInfo = ok(r#"{"order_id":1,"conid":1}"#);
    let _: CancelResponse = ok("{}");
    let _: WhatIf = ok("{}");
    let p: Vec<PortfolioPosition> = ok(r#"[{"conid":1,"position":"-2"}]"#);
    assert_eq!(p[0].to_position().quantity, dec!(-2));
    let _: PortfolioSummary = ok(r#"{"a":{}}"#);
    let _: Ledger = ok(r#"{"BASE":{}}"#);
    // A required field missing is a decode error naming it.
    for (body, field) in [
        (
            r#"[{"conid":1,"side":"B","size":1,"price":1}]"#,
            "execution_id",
        ),
        (r#"[{"position":1}]"#, "conid"),
    ] {
        let e = decode::<Vec<Trade>>("x", body.as_bytes())
            .map(|_| ())
            .or_else(|_| decode::<Vec<PortfolioPosition>>("x", body.as_bytes()).map(|_| ()));
        assert!(e.is_err(), "{body}");
        let msg = decode::<Vec<Trade>>("x", body.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            + &decode::<Vec<PortfolioPosition>>("x", body.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(msg.contains(field), "{msg}");
    }
}
