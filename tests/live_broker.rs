//! The engine's `Broker` seam over the CP Web API client, against the
//! simulator on 127.0.0.1: a bracket placed through the seam fills on the
//! replay clock, and positions, executions, orders, modify and cancel come
//! back as engine types; a restarted broker sees the working orders it did
//! not place in this run.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use engine::model::OrderChanges;
use engine::model::{
    ExecSide, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif, Trail, TrailUnit,
};

mod support;

use support::{broker, gateway, last_close, AAPL};

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
    let (gw, account) = gateway(start).await;
    let mut broker = broker(&gw, &account, "t1-");
    let px = last_close(start);
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

/// The restart bug: a new broker (a restarted bot) on the same gateway
/// must see every working order of the account, with its type, side,
/// prices, quantity and time in force, although the gateway lists them in
/// its own spellings (`Limit`, `Stop Limit`, `Trail Limit`...) and this
/// broker placed none of them. Before the fix it saw none of the stop-limit
/// and trailing orders and silently dropped them.
#[tokio::test]
async fn a_restarted_broker_sees_every_working_order() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let (gw, account) = gateway(start).await;
    let mut first = broker(&gw, &account, "run1-");
    let px = last_close(start);
    let pct = |p: i64| (px * Decimal::new(100 + p, 2)).round_dp(2);
    let base = |id: u64, side: Side, ty: OrderType| OrderRequest {
        quantity: Decimal::from(10 + id),
        tif: if id.is_multiple_of(2) {
            Tif::Day
        } else {
            Tif::Gtc
        },
        ..order(id, side, ty, None, None)
    };
    let trail = Some(Trail {
        amount: Decimal::from(5),
        unit: TrailUnit::Amount,
    });
    // Far from the market: none of them can fill while the clock stands.
    let wanted = vec![
        OrderRequest {
            limit_price: Some(pct(-40)),
            ..base(1, Side::Buy, OrderType::Limit)
        },
        OrderRequest {
            stop_price: Some(pct(40)),
            ..base(2, Side::Buy, OrderType::Stop)
        },
        OrderRequest {
            stop_price: Some(pct(40)),
            limit_price: Some(pct(41)),
            ..base(3, Side::Buy, OrderType::StopLimit)
        },
        OrderRequest {
            stop_price: Some(pct(45)),
            trail,
            ..base(4, Side::Buy, OrderType::Trail)
        },
        OrderRequest {
            stop_price: Some(pct(45)),
            limit_price: Some(pct(46)),
            trail,
            ..base(5, Side::Buy, OrderType::TrailLimit)
        },
    ];
    let mut ids = Vec::new();
    for req in &wanted {
        let placed = first
            .place_batch(0, vec![req.clone()])
            .await
            .expect("placed");
        ids.push(placed[0].broker_order_id.clone().expect("gateway id"));
    }

    let restarted = broker(&gw, &account, "run2-");
    let seen = restarted
        .fetch_orders()
        .await
        .expect("every listed order reads");
    assert_eq!(seen.len(), wanted.len(), "{seen:#?}");
    for (req, id) in wanted.iter().zip(&ids) {
        let o = seen
            .iter()
            .find(|o| o.broker_order_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("order {id} ({}) not seen", req.order_type));
        let r = &o.request;
        assert_eq!(o.strategy, usize::MAX, "not placed by this broker");
        assert_eq!(o.status, OrderStatus::Submitted);
        assert_eq!(
            (r.order_type, r.side, r.quantity, r.tif, r.conid),
            (req.order_type, req.side, req.quantity, req.tif, req.conid),
            "{id}"
        );
        assert_eq!(
            (r.limit_price, r.stop_price),
            (req.limit_price, req.stop_price),
            "{} {id}",
            req.order_type
        );
        // The broker tags the engine's cOID with the strategy (0 here).
        assert_eq!(
            r.client_order_id,
            format!(
                "run1-{}",
                cpapi::order_ticket::tag_strategy(0, &req.client_order_id)
            )
        );
    }
    gw.shutdown().await;
}
