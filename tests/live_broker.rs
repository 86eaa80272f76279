//! The engine's `Broker` seam over the CP Web API client, against the
//! simulator on 127.0.0.1: a bracket placed through the seam fills on the
//! replay clock, and positions, executions, orders, modify and cancel come
//! back as engine types.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::model::OrderChanges;
use engine::model::{Conid, ExecSide, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif};
use gateway_sim::{Gateway, GatewayConfig, PacingConfig};
use ibkr::broker::IbkrBroker;
use ibkr::executor::LiveExecutor;
use ibkr::reply::ReplyPolicy;
use ibkr::{ClientConfig, IbkrClient};

const AAPL: Conid = Conid(265598);

fn order(
    id: u64,
    side: Side,
    ty: OrderType,
    price: Option<Decimal>,
    parent: Option<u64>,
) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid: AAPL,
        side,
        order_type: ty,
        quantity: Decimal::from(50),
        limit_price: if ty == OrderType::Limit { price } else { None },
        stop_price: if ty == OrderType::Stop { price } else { None },
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("ibf-{id}"),
        parent: parent.map(|p| format!("ibf-{p}")),
        oca_group: None,
    }
}

#[tokio::test]
async fn bracket_through_the_broker_seam() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let cfg = GatewayConfig {
        speed: 0.0,
        start: Some(start),
        pacing: PacingConfig::off(),
        ..GatewayConfig::default()
    };
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let client = IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client");
    let exec = LiveExecutor::new(
        client,
        TicketBuilder {
            account: account.clone(),
            coid_prefix: "t1-".into(),
            ext_operator: "test".into(),
        },
        ReplyPolicy {
            auto_confirm: ["o163", "o10331"]
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        },
    );
    let mut broker = IbkrBroker::new(exec, account);
    let px = backtest::data::sample()
        .filter_map(Result::ok)
        .filter(|b| b.conid == AAPL && b.time <= start)
        .last()
        .expect("AAPL bars")
        .close;
    let pct = |p: i64| px * Decimal::new(100 + p, 2);
    // Wide exits: neither fills in the next two days of the sample.
    let placed = broker
        .place_batch(
            0,
            vec![
                order(1, Side::Buy, OrderType::Market, None, None),
                order(2, Side::Sell, OrderType::Limit, Some(pct(50)), Some(1)),
                order(3, Side::Sell, OrderType::Stop, Some(pct(-50)), Some(1)),
            ],
        )
        .await
        .expect("placed");
    let statuses: Vec<_> = placed.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Submitted,
            OrderStatus::PreSubmitted,
            OrderStatus::PreSubmitted
        ]
    );
    assert!(placed.iter().all(|o| o.broker_order_id.is_some()));

    // Two days of replay: the entry fills at the next bar's open.
    gw.advance(std::time::Duration::from_secs(2 * 86_400));
    let positions = broker.fetch_positions().await.expect("positions");
    assert_eq!(positions.len(), 1, "{positions:?}");
    assert_eq!(
        (positions[0].conid, positions[0].quantity),
        (AAPL, Decimal::from(50))
    );
    let execs = broker.fetch_executions().await.expect("executions");
    let entry = execs
        .iter()
        .find(|e| e.order_id == Some(OrderId(1)))
        .expect("the entry's execution is linked to engine order 1");
    assert_eq!(
        (entry.side, entry.size),
        (ExecSide::Bought, Decimal::from(50))
    );

    // Move the stop up, then cancel the take-profit.
    let m = broker
        .modify_order(
            OrderId(3),
            OrderChanges {
                stop_price: Some(pct(-40)),
                ..Default::default()
            },
        )
        .await
        .expect("modify");
    assert_eq!(m.request.stop_price, Some(pct(-40)));
    broker.request_cancel(OrderId(2)).await.expect("cancel");
    let orders = broker.fetch_orders().await.expect("orders");
    let status = |id: u64| {
        orders
            .iter()
            .find(|o| o.id() == OrderId(id) && o.strategy == 0)
            .map(|o| o.status)
    };
    assert_eq!(status(1), Some(OrderStatus::Filled));
    assert_eq!(status(2), Some(OrderStatus::Cancelled));
    assert_eq!(status(3), Some(OrderStatus::Submitted));
    assert!(broker.request_cancel(OrderId(99)).await.is_err());
    gw.shutdown().await;
}
