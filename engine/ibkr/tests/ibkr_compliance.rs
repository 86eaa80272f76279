//! CME Rule 536-B: futures orders, cancels and modifies carry
//! `manualIndicator: false` and `extOperator`. Checked on the wire against
//! the CP Gateway simulator, through its log of the requests it received.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

mod support;

use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::model::{Conid, OrderRequest, OrderType, SecType, Side};
use gateway_sim::Instrument;
use ibkr::executor::LiveExecutor;
use ibkr::reply::ReplyPolicy;
use support::{client, order, start};

const FUTURE: Conid = Conid(495512557);
const AAPL: Conid = Conid(265598);

/// A limit buy of one unit.
fn buy(id: u64, conid: Conid, limit: i64) -> OrderRequest {
    OrderRequest {
        limit_price: Some(Decimal::new(limit, 0)),
        ..order(id, conid, Side::Buy, OrderType::Limit)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_orders_and_cancels_carry_the_compliance_fields() {
    let g = start(|cfg| {
        cfg.account = "U1".into();
        // Resting orders, no precaution prompts in the way.
        cfg.prompts.clear();
        let mut es = Instrument::stock(FUTURE, "ES", "E-mini S&P 500", "CME");
        es.sec_type = "FUT".into();
        es.tick_size = Decimal::new(25, 2);
        cfg.instruments.push(es);
    })
    .await;
    g.record_requests(true);
    let exec = LiveExecutor::new(
        client(&g),
        TicketBuilder {
            account: "U1".into(),
            coid_prefix: "f-".into(),
            ext_operator: "desk-7".into(),
        },
        ReplyPolicy::default(),
    );
    let id = |p: ibkr::executor::Placed| p.acks[0].order_id.clone().unwrap();
    let future = id(exec
        .submit(&[buy(1, FUTURE, 5000)], |_| SecType::Future)
        .await
        .unwrap());
    let stock = id(exec
        .submit(&[buy(2, AAPL, 1)], |_| SecType::Stock)
        .await
        .unwrap());
    exec.cancel(&future, &SecType::Future).await.unwrap();
    exec.cancel(&stock, &SecType::Stock).await.unwrap();
    let seen = g.received_requests();
    let place = seen
        .iter()
        .find(|r| r.method == "POST" && r.path == "/iserver/account/U1/orders")
        .unwrap();
    let v = place.json().unwrap();
    assert_eq!(v["orders"][0]["manualIndicator"], false);
    assert_eq!(v["orders"][0]["extOperator"], "desk-7");
    let cancels: Vec<_> = seen.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(cancels.len(), 2, "{cancels:?}");
    assert_eq!(
        (cancels[0].path.as_str(), cancels[0].query.as_str()),
        (
            format!("/iserver/account/U1/order/{future}").as_str(),
            "manualIndicator=false&extOperator=desk-7"
        )
    );
    assert_eq!(
        (cancels[1].path.as_str(), cancels[1].query.as_str()),
        (format!("/iserver/account/U1/order/{stock}").as_str(), ""),
        "stocks carry no compliance fields"
    );
    g.shutdown().await;
}
