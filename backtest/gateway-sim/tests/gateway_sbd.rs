//! The simulator's BookTrader price ladder (`sbd` / `ubd`) over a real
//! websocket on 127.0.0.1, decoded with the engine's client parser.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use cpapi::messages::{parse_price_ladder, PriceLadder};
use engine::model::Conid;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use support::*;

const T: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);

fn is_sbd(t: &str) -> bool {
    t.starts_with("sbd")
}

/// Check `v` against the spec's shape and the simulator's ladder rules,
/// and return it decoded. `quote` is the smd (last, bid, ask) of the same
/// instant when known.
fn check_ladder(v: &Value, conid: i64, quote: Option<(Decimal, Decimal, Decimal)>) -> PriceLadder {
    assert_eq!(v["topic"], format!("sbd+{ACCT}+{conid}"), "{v}");
    let raw = v["data"].as_array().expect("data array");
    assert!(!raw.is_empty(), "{v}");
    for r in raw {
        assert!(r["row"].is_i64() && r["focus"].is_i64(), "{r}");
        assert!(r["price"].is_string(), "{r}");
        for k in ["bid", "ask"] {
            assert!(r.get(k).is_none_or(Value::is_string), "{r}");
        }
    }
    let l = parse_price_ladder(v).expect("the client parser reads the simulator's ladder");
    assert_eq!((l.account.as_str(), l.conid), (ACCT, Conid(conid)));
    let focus: Vec<_> = l.rows.iter().filter(|r| r.focus).collect();
    assert_eq!(focus.len(), 1, "exactly one focus row: {v}");
    assert!(
        focus[0].last_size.is_some(),
        "the last row is `size @ price`"
    );
    let prices: Vec<Decimal> = l.rows.iter().map(|r| r.price.unwrap()).collect();
    for (i, w) in prices.windows(2).enumerate() {
        assert_eq!(
            w[0] - w[1],
            dec!(0.01),
            "rows {i}, {} one tick apart",
            i + 1
        );
    }
    let best_bid = l
        .rows
        .iter()
        .filter(|r| r.bid_size.is_some())
        .map(|r| r.price.unwrap())
        .max();
    let best_ask = l
        .rows
        .iter()
        .filter(|r| r.ask_size.is_some())
        .map(|r| r.price.unwrap())
        .min();
    let last = focus[0].price.unwrap();
    for r in &l.rows {
        let p = r.price.unwrap();
        assert_eq!(
            r.bid_size.is_some(),
            best_bid.is_some_and(|b| p <= b),
            "{v}"
        );
        assert_eq!(
            r.ask_size.is_some(),
            best_ask.is_some_and(|a| p >= a),
            "{v}"
        );
        assert!(r.row >= 0 && r.bid_size.is_none_or(|s| s > Decimal::ZERO));
    }
    assert!(best_bid.unwrap() < last && last < best_ask.unwrap(), "{v}");
    if let Some((q_last, q_bid, q_ask)) = quote {
        assert_eq!(
            (last, best_bid, best_ask),
            (q_last, Some(q_bid), Some(q_ask)),
            "{v}"
        );
    }
    l
}

fn dec_of(v: &Value, field: &str) -> Decimal {
    v[field].as_str().unwrap().parse().unwrap()
}

/// Every JSON message that arrives within `QUIET`.
async fn read_quiet(ws: &mut Ws) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + QUIET;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return out;
        }
        match next_json(ws, left).await {
            Some(m) => out.push(m),
            None => return out,
        }
    }
}

/// Messages read within `QUIET` whose topic satisfies `pred`.
async fn count_topic(ws: &mut Ws, pred: impl Fn(&str) -> bool) -> usize {
    read_quiet(ws)
        .await
        .iter()
        .filter(|m| m.get("topic").and_then(Value::as_str).is_some_and(&pred))
        .count()
}

#[tokio::test]
async fn sbd_streams_ladders_until_ubd() {
    let gw = start(|c| c.tick = Duration::from_millis(20)).await;
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, r#"smd+265598+{"fields":["31","84","86"]}"#).await;
    let md = wait_topic(&mut ws, |t| t == "smd+265598", T).await.unwrap();
    let quote = (dec_of(&md, "31"), dec_of(&md, "84"), dec_of(&md, "86"));

    send(&mut ws, &format!("sbd+{ACCT}+{AAPL}")).await;
    let first = wait_topic(&mut ws, is_sbd, T).await.unwrap();
    let mut prev = check_ladder(&first, AAPL, Some(quote));

    // The quote walks through the bar: ladders follow, each a change.
    let mut updates = 0;
    for _ in 0..5 {
        gw.advance(Duration::from_secs(2 * 3600));
        if let Some(m) = wait_topic(&mut ws, is_sbd, Duration::from_secs(2)).await {
            let l = check_ladder(&m, AAPL, None);
            assert_ne!(l, prev, "only changed ladders are sent");
            prev = l;
            updates += 1;
        }
    }
    assert!(updates > 0, "the ladder moved with the quote");

    // ubd ends the stream while the quote keeps moving (smd shows it does).
    send(&mut ws, &format!("ubd+{ACCT}")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    while next_json(&mut ws, Duration::from_millis(50))
        .await
        .is_some()
    {}
    let mut smd = 0;
    for _ in 0..3 {
        gw.advance(Duration::from_secs(3 * 3600));
        for m in read_quiet(&mut ws).await {
            match m["topic"].as_str() {
                Some(t) if is_sbd(t) => panic!("sbd after ubd: {m}"),
                Some("smd+265598") => smd += 1,
                _ => {}
            }
        }
    }
    assert!(smd > 0, "quotes kept changing after ubd");

    // A new ladder may be subscribed after ubd.
    send(&mut ws, &format!("sbd+{ACCT}+{AAPL}")).await;
    let again = wait_topic(&mut ws, is_sbd, T).await.unwrap();
    check_ladder(&again, AAPL, None);
}

#[tokio::test]
async fn bad_sbd_requests_send_nothing_and_break_nothing() {
    let gw = start(|c| c.tick = Duration::from_millis(20)).await;
    let mut ws = connect_ws(&gw).await;
    wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    for bad in [
        "sbd+DU0000000+265598".to_owned(),
        format!("sbd+{ACCT}+999999"),
        format!("sbd+{ACCT}+abc"),
        format!("sbd+{ACCT}+265598+NASDAQ+extra"),
        format!("sbd+{ACCT}"),
        format!("sbd++{AAPL}"),
        "sbd".to_owned(),
        "sbd+".to_owned(),
        "sbd+++".to_owned(),
        format!("sbd+{ACCT}+{{\"x\":1}}"),
        "ubd".to_owned(),
        "ubd+".to_owned(),
        "ubd+DU0000000".to_owned(),
    ] {
        send(&mut ws, &bad).await;
    }
    gw.advance(Duration::from_secs(2 * 3600));
    assert_eq!(count_topic(&mut ws, is_sbd).await, 0);

    // The socket still serves other topics, and a good sbd.
    send(&mut ws, r#"smd+8314+{"fields":["31"]}"#).await;
    assert!(wait_topic(&mut ws, |t| t == "smd+8314", T).await.is_some());
    send(&mut ws, &format!("sbd+{ACCT}+{AAPL}")).await;
    let m = wait_topic(&mut ws, is_sbd, T).await.unwrap();
    check_ladder(&m, AAPL, None);

    // Without a brokerage session sbd is ignored, like smd.
    gw.expire_session();
    wait_topic(&mut ws, |t| t == "sts", T).await.unwrap();
    send(&mut ws, &format!("sbd+{ACCT}+{IBM}")).await;
    assert_eq!(
        count_topic(&mut ws, |t| t == format!("sbd+{ACCT}+{IBM}")).await,
        0
    );
}

#[tokio::test]
async fn sbd_with_an_exchange_and_a_new_sbd_replaces_the_ladder() {
    let gw = start(|c| c.tick = Duration::from_millis(20)).await;
    let mut ws = connect_ws(&gw).await;
    send(&mut ws, &format!("sbd+{ACCT}+{AAPL}")).await;
    check_ladder(&wait_topic(&mut ws, is_sbd, T).await.unwrap(), AAPL, None);

    // The exchange part is accepted; the topic answered is sbd+ACCT+CONID.
    send(&mut ws, &format!("sbd+{ACCT}+{IBM}+NYSE")).await;
    let ibm = wait_topic(&mut ws, is_sbd, T).await.unwrap();
    check_ladder(&ibm, IBM, None);

    // One ladder per account: only IBM streams now.
    let mut ibm_updates = 0;
    for _ in 0..4 {
        gw.advance(Duration::from_secs(2 * 3600));
        for m in read_quiet(&mut ws).await {
            if let Some(t) = m["topic"].as_str().filter(|t| is_sbd(t)) {
                assert_eq!(
                    t,
                    format!("sbd+{ACCT}+{IBM}"),
                    "the AAPL ladder was replaced"
                );
                check_ladder(&m, IBM, None);
                ibm_updates += 1;
            }
        }
    }
    assert!(ibm_updates > 0, "the IBM ladder streams");
}
