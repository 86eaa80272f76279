//! The store on real SQLite files: exactly-once executions, positions in the
//! same transaction, orders with history, state, runs, bars, ForecastEx.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_store as store;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use engine::forecastex::{venue_executions, NetPosition, StrikePosition};
use engine::model::{
    Conid, ExecSide, Execution, Order, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif,
    Trail, TrailUnit,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use store::{import, BacktestRun, OrderStatusUpdate, Store, StoreError, StoredOrder};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn open(dir: &Path) -> Store {
    Store::open(&dir.join("ibflow.db")).await.unwrap()
}

/// The spec's trades example, one record.
fn spec_trade() -> serde_json::Value {
    json!({
        "execution_id": "0000e0d5.6576fd38.01.01",
        "symbol": "AAPL", "supports_tax_opt": "1", "side": "S",
        "order_description": "Sold 5 @ 192.26 on ISLAND",
        "trade_time": "20231211-18:00:49", "trade_time_r": 1702317649000u64,
        "size": 5.0, "price": "192.26", "order_ref": "Order123",
        "submitter": "user1234", "exchange": "ISLAND", "commission": "1.01",
        "net_amount": 961.3, "account": "U1234567", "accountCode": "U1234567",
        "account_allocation_name": "U1234567", "company_name": "APPLE INC",
        "contract_description_1": "AAPL", "sec_type": "STK",
        "listing_exchange": "NASDAQ.NMS", "conid": 265598, "conidEx": "265598",
        "clearing_id": "IB", "clearing_name": "IB", "liquidation_trade": "0",
        "is_event_trading": "0"
    })
}

fn exec(id: &str, conid: i64, side: ExecSide, size: Decimal, price: Decimal) -> Execution {
    Execution {
        execution_id: id.into(),
        order_id: None,
        order_ref: None,
        account: "U1".into(),
        conid: Conid(conid),
        side,
        size,
        price,
        commission: Decimal::ZERO,
        net_amount: size * price,
        time: Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap(),
    }
}

#[test]
fn same_execution_from_three_sources_is_stored_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        // 1. the websocket str topic
        let msg = json!({"topic": "str", "args": [spec_trade()]}).to_string();
        let import::Message::Trades(args) = import::parse_message(&msg).unwrap() else {
            panic!("str message not recognised");
        };
        let from_ws: Vec<_> = import::records(&args)
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let (e, raw) = from_ws[0].clone();
        assert_eq!(e.side, ExecSide::Sold);
        assert_eq!(e.size, dec!(5));
        assert_eq!(e.price, dec!(192.26));
        assert_eq!(e.net_amount, dec!(961.3));
        assert_eq!(e.commission, dec!(1.01));
        assert_eq!(
            e.time,
            Utc.with_ymd_and_hms(2023, 12, 11, 18, 0, 49).unwrap()
        );
        assert!(store.record_execution(&e, Some(&raw)).await.unwrap());
        // 2. its replay after a reconnect
        assert!(!store.record_execution(&e, Some(&raw)).await.unwrap());
        // 3. the REST trades response
        let rest = json!([spec_trade()]);
        let from_rest: Vec<_> = import::records(rest.as_array().unwrap())
            .into_iter()
            .map(|r| r.map(|(e, raw)| (e, Some(raw))).unwrap())
            .collect();
        let got = store.record_executions(&from_rest).await.unwrap();
        assert_eq!((got.new_count(), got.duplicates), (0, 1));

        assert_eq!(store.execution_count().await.unwrap(), 1);
        let pos = store.positions().await.unwrap();
        assert_eq!(pos.len(), 1);
        assert_eq!(pos[0].quantity, dec!(-5), "sold 5 once, not three times");
        assert_eq!(pos[0].conid, Conid(265598));
        assert_eq!(pos[0].account, "U1234567");
        let stored = store.executions(None).await.unwrap();
        assert_eq!(stored[0].execution.order_ref.as_deref(), Some("Order123"));
        let raw: serde_json::Value =
            serde_json::from_str(stored[0].raw_json.as_deref().unwrap()).unwrap();
        assert_eq!(raw["exchange"], "ISLAND");
    });
    // And once more after reopening the file.
    rt().block_on(async {
        let store = open(dir.path()).await;
        let e = import::execution_from_record(&spec_trade()).unwrap();
        assert!(!store.record_execution(&e, None).await.unwrap());
        assert_eq!(store.execution_count().await.unwrap(), 1);
        assert_eq!(store.positions().await.unwrap()[0].quantity, dec!(-5));
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
    });
}

#[test]
fn batch_with_internal_duplicates_and_average_cost() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        let a = exec("a", 1, ExecSide::Bought, dec!(10), dec!(100));
        let b = exec("b", 1, ExecSide::Bought, dec!(10), dec!(110));
        let c = exec("c", 1, ExecSide::Sold, dec!(5), dec!(115));
        let batch: Vec<_> = [&a, &b, &a, &c, &b]
            .iter()
            .map(|e| ((*e).clone(), None))
            .collect();
        let got = store.record_executions(&batch).await.unwrap();
        assert_eq!(got.new_ids, vec!["a", "b", "c"]);
        assert_eq!(got.duplicates, 2);
        let p = &store.positions().await.unwrap()[0];
        assert_eq!(
            (p.quantity, p.avg_cost, p.realized_pnl),
            (dec!(15), dec!(105), dec!(50))
        );
        assert_eq!(
            store.recompute_positions().await.unwrap(),
            store.positions().await.unwrap()
        );
    });
}

#[test]
fn invalid_execution_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        let good = exec("g", 1, ExecSide::Bought, dec!(1), dec!(1));
        let bad = exec("z", 1, ExecSide::Bought, dec!(0), dec!(1));
        let err = store
            .record_executions(&[(good, None), (bad, None)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidExecution { ref execution_id, .. } if execution_id == "z"));
        assert_eq!(store.execution_count().await.unwrap(), 0);
        assert!(store.positions().await.unwrap().is_empty());
    });
}

#[test]
fn malformed_records_are_clear_errors() {
    let mut t = spec_trade();
    t["price"] = json!("abc");
    let e = import::execution_from_record(&t).unwrap_err();
    assert!(e.to_string().contains("price"), "{e}");
    let mut t = spec_trade();
    t.as_object_mut().unwrap().remove("execution_id");
    assert!(import::execution_from_record(&t)
        .unwrap_err()
        .to_string()
        .contains("execution_id"));
    let mut t = spec_trade();
    t["side"] = json!("X");
    assert!(import::execution_from_record(&t).is_err());
    assert!(import::parse_message("{not json").is_err());
    assert!(matches!(
        import::parse_message(r#"{"topic":"system","hb":1}"#).unwrap(),
        import::Message::Other
    ));
}

fn order(coid: &str, status: OrderStatus) -> StoredOrder {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
    let o = Order {
        request: OrderRequest {
            id: OrderId(7),
            conid: Conid(265598),
            side: Side::Buy,
            order_type: OrderType::TrailLimit,
            quantity: dec!(100),
            limit_price: Some(dec!(190.5)),
            stop_price: None,
            trail: Some(Trail {
                amount: dec!(1.5),
                unit: TrailUnit::Percent,
            }),
            tif: Tif::Gtc,
            outside_rth: true,
            client_order_id: coid.into(),
            parent: Some("parent-1".into()),
            oca_group: Some("oca-1".into()),
        },
        broker_order_id: None,
        status,
        filled_quantity: Decimal::ZERO,
        avg_fill_price: None,
        reason: None,
        strategy: 0,
        created: t,
        updated: t,
    };
    StoredOrder::from_order(&o, Some("sma_cross"), Some("U1"))
}

#[test]
fn orders_round_trip_with_status_history() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        let o = order("c1", OrderStatus::PendingSubmit);
        assert!(store.upsert_order(&o).await.unwrap());
        assert!(
            !store.upsert_order(&o).await.unwrap(),
            "same status: no new history"
        );
        assert_eq!(store.order("c1").await.unwrap().unwrap(), o);
        let t = o.created + chrono::Duration::seconds(1);
        let upd = |status, filled| OrderStatusUpdate {
            client_order_id: "c1".into(),
            broker_order_id: Some("1234568790".into()),
            status,
            filled_quantity: filled,
            avg_fill_price: Some(dec!(190.1)),
            reason: None,
            time: t,
        };
        assert!(store
            .update_order_status(&upd(OrderStatus::Submitted, dec!(0)))
            .await
            .unwrap());
        assert_eq!(store.open_orders().await.unwrap().len(), 1);
        assert!(store
            .update_order_status(&upd(OrderStatus::Filled, dec!(100)))
            .await
            .unwrap());
        assert!(store.open_orders().await.unwrap().is_empty());
        let mut unknown = upd(OrderStatus::Filled, dec!(1));
        unknown.client_order_id = "nope".into();
        assert!(!store.update_order_status(&unknown).await.unwrap());
        let h = store.order_history("c1").await.unwrap();
        let statuses: Vec<_> = h.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            vec![
                OrderStatus::PendingSubmit,
                OrderStatus::Submitted,
                OrderStatus::Filled
            ]
        );
        let stored = store.order("c1").await.unwrap().unwrap();
        assert_eq!(stored.broker_order_id.as_deref(), Some("1234568790"));
        assert_eq!(stored.filled_quantity, dec!(100));
        assert_eq!(store.orders().await.unwrap().len(), 1);
    });
}

#[test]
fn strategy_state_backtest_runs_and_bar_cache() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        store.set_state("s", "k", &json!({"n": 1})).await.unwrap();
        store.set_state("s", "k", &json!({"n": 2})).await.unwrap();
        store.set_state("s", "j", &json!("x")).await.unwrap();
        assert_eq!(
            store.get_state("s", "k").await.unwrap(),
            Some(json!({"n": 2}))
        );
        assert_eq!(store.get_state("other", "k").await.unwrap(), None);
        assert_eq!(store.state("s").await.unwrap().len(), 2);
        assert!(store.delete_state("s", "j").await.unwrap());

        let run = BacktestRun {
            strategy: "sma_cross".into(),
            params: BTreeMap::from([("fast".to_owned(), "10".to_owned())]),
            data: "bundled sample".into(),
            created: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            summary: json!({"sharpe": 0.584, "trades": 45, "final_equity": "117065"}),
        };
        let id = store.save_backtest_run(&run).await.unwrap();
        let runs = store.backtest_runs().await.unwrap();
        assert_eq!(runs, vec![(id, run)]);
        let best: String = sqlx::query_scalar(
            "SELECT value FROM backtest_metrics WHERE run_id = ? AND name = 'sharpe'",
        )
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(best, "0.584");

        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 14, 30, 0).unwrap();
        let bars: Vec<_> = (0..3)
            .map(|i| engine::model::Bar {
                conid: Conid(8314),
                time: t0 + chrono::Duration::minutes(i),
                open: dec!(10.01),
                high: dec!(10.5),
                low: dec!(9.99),
                close: dec!(10.25),
                volume: Decimal::from(100 + i),
            })
            .collect();
        store.put_bars("1min", &bars).await.unwrap();
        store.put_bars("1min", &bars[1..2]).await.unwrap();
        let got = store
            .bars(Conid(8314), "1min", t0, t0 + chrono::Duration::minutes(10))
            .await
            .unwrap();
        assert_eq!(got, bars);
        assert!(store
            .bars(Conid(8314), "1d", t0, t0 + chrono::Duration::days(1))
            .await
            .unwrap()
            .is_empty());
    });
}

const EVENT_CONTRACTS: &str = r#"{"contracts": [
  {"conid": 762089343, "underlyingConid": 733131966, "strike": 1.0, "putOrCall": "C",
   "strikeLabel": "Democratic", "expiration": "20270104", "eventFixedPayout": "1"},
  {"conid": 762089344, "underlyingConid": 733131966, "strike": 1.0, "putOrCall": "P",
   "strikeLabel": "Democratic", "expiration": "20270104", "eventFixedPayout": "1"}
]}"#;

/// The spec's two worked examples, through the store.
#[test]
fn forecastex_examples_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        let resp: cpapi::messages::EventContracts = serde_json::from_str(EVENT_CONTRACTS).unwrap();
        store
            .put_event_contracts(&resp.records().unwrap())
            .await
            .unwrap();
        let pairing = store.pairing().await.unwrap();
        let (pair, _) = pairing.lookup(Conid(762089343)).unwrap();
        let pair = pair.clone();
        let mut venue = StrikePosition::default();
        let mut step = |id: &str, conid: i64, qty: Decimal| {
            let fill = exec(id, conid, ExecSide::Bought, qty, dec!(0.5));
            let execs = venue_executions(&pair, venue, &fill).unwrap();
            for e in &execs {
                venue.apply_execution(&pair, e).unwrap();
            }
            execs
        };
        let open_yes = step("b0", 762089343, dec!(100));
        let one = step("b1", 762089344, dec!(10));
        let two = step("b2", 762089344, dec!(130));
        for execs in [&open_yes, &one] {
            let batch: Vec<_> = execs.iter().map(|e| (e.clone(), None)).collect();
            store.record_executions(&batch).await.unwrap();
        }
        let ev = store.event_positions().await.unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].2.net(), NetPosition::Yes(dec!(90)));
        assert_eq!(ev[0].2.no, dec!(0));
        // The second example's reports, N first and each twice.
        for e in two.iter().rev().chain(two.iter()) {
            store.record_execution(e, None).await.unwrap();
        }
        let ev = store.event_positions().await.unwrap();
        assert_eq!(
            ev[0].2,
            StrikePosition {
                yes: dec!(0),
                no: dec!(40)
            }
        );
        assert!(ev[0].2.is_settled());
        assert_eq!(store.execution_count().await.unwrap(), 7);
    });
}

/// Buys on both sides of a strike, the venue's reports in any order with
/// duplicates, in random batches: the stored position is the venue's.
fn store_case(buys: &[(bool, u32)], order: &[usize], dups: &[usize], batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let store = open(dir.path()).await;
        let resp: cpapi::messages::EventContracts = serde_json::from_str(EVENT_CONTRACTS).unwrap();
        store
            .put_event_contracts(&resp.records().unwrap())
            .await
            .unwrap();
        let pairing = store.pairing().await.unwrap();
        let pair = pairing.lookup(Conid(762089343)).unwrap().0.clone();
        let mut venue = StrikePosition::default();
        let mut reports = Vec::new();
        for (i, &(yes, qty)) in buys.iter().enumerate() {
            let conid = if yes { pair.yes.0 } else { pair.no.0 };
            let fill = exec(
                &format!("e{i}"),
                conid,
                ExecSide::Bought,
                qty.into(),
                dec!(0.31),
            );
            let execs = venue_executions(&pair, venue, &fill).unwrap();
            for e in &execs {
                venue.apply_execution(&pair, e).unwrap();
            }
            reports.extend(execs);
        }
        let mut stream: Vec<Execution> = order
            .iter()
            .map(|&i| reports[i % reports.len()].clone())
            .collect();
        // `order` is a permutation of 0..n only when its length matches;
        // make sure every report is delivered at least once.
        stream.extend(reports.iter().cloned());
        for &d in dups {
            stream.push(reports[d % reports.len()].clone());
        }
        for chunk in stream.chunks(batch) {
            let b: Vec<_> = chunk.iter().map(|e| (e.clone(), None)).collect();
            store.record_executions(&b).await.unwrap();
        }
        let ev = store.event_positions().await.unwrap();
        let got = ev.first().map(|x| x.2).unwrap_or_default();
        assert_eq!(got, venue);
        assert!(got.is_settled());
        assert_eq!(store.execution_count().await.unwrap(), reports.len() as u64);
        assert_eq!(
            store.recompute_positions().await.unwrap(),
            store.positions().await.unwrap()
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn stored_forecastex_position_equals_the_venue(
        buys in prop::collection::vec((any::<bool>(), 1u32..300), 1..12),
        order in prop::collection::vec(0usize..1000, 0..40),
        dups in prop::collection::vec(0usize..1000, 0..10),
        batch in 1usize..8,
    ) {
        store_case(&buys, &order, &dups, batch);
    }
}
