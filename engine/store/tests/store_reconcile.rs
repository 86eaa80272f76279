//! Differences between the store and the broker are reported, never
//! overwritten.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_store as store;

use chrono::{TimeZone, Utc};
use engine::model::{Conid, ExecSide, Execution, OrderStatus, OrderType, Side, Tif};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use store::{BrokerOrder, BrokerPosition, Discrepancy, Store, StoredOrder};

fn exec(id: &str, conid: i64, side: ExecSide, size: Decimal) -> Execution {
    Execution {
        execution_id: id.into(),
        order_id: None,
        order_ref: None,
        account: "U1".into(),
        conid: Conid(conid),
        side,
        size,
        price: dec!(10),
        commission: Decimal::ZERO,
        net_amount: size * dec!(10),
        time: Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap(),
    }
}

fn order(coid: &str, status: OrderStatus) -> StoredOrder {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
    StoredOrder {
        client_order_id: coid.into(),
        broker_order_id: None,
        engine_order_id: None,
        parent: None,
        oca_group: None,
        strategy: Some("s".into()),
        account: Some("U1".into()),
        conid: Conid(1),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: dec!(10),
        limit_price: Some(dec!(9.5)),
        stop_price: None,
        trail: None,
        tif: Tif::Day,
        outside_rth: false,
        status,
        filled_quantity: Decimal::ZERO,
        avg_fill_price: None,
        reason: None,
        created: t,
        updated: t,
    }
}

#[test]
fn positions_and_orders_that_differ_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = Store::open(&dir.path().join("r.db")).await.unwrap();
            store
                .record_executions(&[
                    (exec("a", 1, ExecSide::Bought, dec!(10)), None),
                    (exec("b", 2, ExecSide::Bought, dec!(5)), None),
                    (exec("c", 2, ExecSide::Sold, dec!(5)), None),
                ])
                .await
                .unwrap();
            let broker = vec![
                BrokerPosition {
                    account: "U1".into(),
                    conid: Conid(1),
                    quantity: dec!(10),
                },
                BrokerPosition {
                    account: "U1".into(),
                    conid: Conid(3),
                    quantity: dec!(7),
                },
            ];
            let d = store.position_discrepancies(&broker).await.unwrap();
            assert_eq!(
                d,
                vec![Discrepancy::Position {
                    account: "U1".into(),
                    conid: Conid(3),
                    local: dec!(0),
                    broker: dec!(7)
                }]
            );
            // Nothing was overwritten.
            assert_eq!(store.positions().await.unwrap().len(), 2);

            store
                .upsert_order(&order("open-1", OrderStatus::Submitted))
                .await
                .unwrap();
            store
                .upsert_order(&order("open-2", OrderStatus::Submitted))
                .await
                .unwrap();
            store
                .upsert_order(&order("done-1", OrderStatus::Filled))
                .await
                .unwrap();
            let broker = vec![
                BrokerOrder {
                    client_order_id: "open-1".into(),
                    status: OrderStatus::Filled,
                    filled_quantity: dec!(10),
                },
                BrokerOrder {
                    client_order_id: "done-1".into(),
                    status: OrderStatus::Filled,
                    filled_quantity: dec!(0),
                },
                BrokerOrder {
                    client_order_id: "manual".into(),
                    status: OrderStatus::Submitted,
                    filled_quantity: dec!(0),
                },
            ];
            let d = store.order_discrepancies(&broker).await.unwrap();
            assert_eq!(
                d,
                vec![
                    Discrepancy::OrderState {
                        client_order_id: "open-1".into(),
                        local: (OrderStatus::Submitted, dec!(0)),
                        broker: (OrderStatus::Filled, dec!(10)),
                    },
                    Discrepancy::OrderMissingAtBroker {
                        client_order_id: "open-2".into()
                    },
                    Discrepancy::UnknownOrder {
                        client_order_id: "manual".into()
                    },
                ]
            );
        });
}
