//! The store's history stays true, through the real binary (issue 12):
//! `db check` opens existing files only and compares orders with
//! executions; `executions import` refuses what cannot be a trade, a saved
//! error answer, and a different fill under a known execution id.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::Path;
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use rust_decimal::Decimal;

use engine::model::{Conid, ExecSide, Execution, Order, OrderId, OrderRequest, OrderStatus};
use engine::model::{OrderType, Side, Tif};

fn ibflow(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("IBFLOW_DB")
        // anyhow would append a backtrace when the environment asks for one.
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn db_check_on_a_mistyped_path_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mistyped.db");
    let out = ibflow(&db, &["db", "check"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no database at") && stderr(&out).contains("mistyped.db"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists(), "db check created the file");
    for listing in [&["db", "orders"][..], &["db", "positions"], &["executions"]] {
        let out = ibflow(&db, listing);
        assert!(!out.status.success(), "{listing:?}: {}", stdout(&out));
        assert!(!db.exists(), "{listing:?} created the file");
    }
}

fn order(coid: &str, status: OrderStatus, qty: i64, updated_days_ago: i64) -> store::StoredOrder {
    let t = Utc::now() - Duration::days(updated_days_ago);
    let o = Order {
        request: OrderRequest {
            id: OrderId(1),
            conid: Conid(265598),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: Decimal::from(qty),
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Gtc,
            outside_rth: false,
            client_order_id: coid.into(),
            parent: None,
            oca_group: None,
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
    store::StoredOrder::from_order(&o, None, Some("U1"))
}

fn exec(id: &str, order_ref: &str, size: i64) -> Execution {
    Execution {
        execution_id: id.into(),
        order_id: None,
        order_ref: Some(order_ref.into()),
        account: "U1".into(),
        conid: Conid(265598),
        side: ExecSide::Bought,
        size: Decimal::from(size),
        price: Decimal::from(190),
        commission: Decimal::ZERO,
        net_amount: Decimal::from(190 * size),
        time: Utc::now() - Duration::hours(1),
    }
}

#[test]
fn db_check_compares_orders_with_executions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    rt().block_on(async {
        let s = store::Store::open(&db).await.unwrap();
        // Consistent: filled 10, executions 4 + 6.
        s.upsert_order(&order("bot1.00000000.0.ibf-1", OrderStatus::Filled, 10, 0))
            .await
            .unwrap();
        s.record_execution(&exec("e1", "bot1.00000000.0.ibf-1", 4), None)
            .await
            .unwrap();
        s.record_execution(&exec("e2", "bot1.00000000.0.ibf-1", 6), None)
            .await
            .unwrap();
        // A foreign execution (TWS): not a problem.
        s.record_execution(&exec("e3", "Order123", 1), None)
            .await
            .unwrap();
        s.close().await;
    });
    let out = ibflow(&db, &["db", "check"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 executions of orders not placed by ibflow"));

    rt().block_on(async {
        let s = store::Store::open(&db).await.unwrap();
        // Filled without executions.
        s.upsert_order(&order("bot1.00000000.0.ibf-2", OrderStatus::Filled, 5, 0))
            .await
            .unwrap();
        // Still Submitted, but fully executed.
        s.upsert_order(&order(
            "bot1.00000000.0.ibf-3",
            OrderStatus::Submitted,
            3,
            0,
        ))
        .await
        .unwrap();
        s.record_execution(&exec("e4", "bot1.00000000.0.ibf-3", 3), None)
            .await
            .unwrap();
        // An execution of an ibflow order never stored.
        s.record_execution(&exec("e5", "bot1.00000000.1.ibf-9", 2), None)
            .await
            .unwrap();
        // Submitted and untouched for longer than the trades window.
        s.upsert_order(&order(
            "bot1.00000000.0.ibf-4",
            OrderStatus::Submitted,
            1,
            30,
        ))
        .await
        .unwrap();
        s.close().await;
    });
    let out = ibflow(&db, &["db", "check"]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        stderr(&out).contains("4 disagreement(s)"),
        "{}",
        stderr(&out)
    );
    for needle in [
        "order bot1.00000000.0.ibf-2 is Filled (5) but its executions add up to 0",
        "order bot1.00000000.0.ibf-3 is still Submitted but its executions add up to 3",
        "1 execution(s) of order bot1.00000000.1.ibf-9, which is not stored",
        "order bot1.00000000.0.ibf-4 is still Submitted, last updated",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
}

/// One trade record of `/iserver/account/trades`, with `fields` changed.
fn trade(fields: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "execution_id": "0000e0d5.6576fd38.01.01", "side": "B",
        "trade_time_r": 1702317649000_i64, "size": 5, "price": "192.26",
        "order_ref": "Order123", "commission": "1.01", "account": "U1234567", "conid": 265598
    });
    if let (Some(m), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

fn import(db: &Path, dir: &Path, name: &str, body: &str) -> Output {
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    ibflow(db, &["executions", "import", f.to_str().unwrap()])
}

#[test]
fn import_refuses_what_cannot_be_a_trade() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("i.db");
    let cases = [
        (
            "negative price",
            trade(serde_json::json!({"price": "-50"})),
            "price must be positive",
        ),
        (
            "zero price",
            trade(serde_json::json!({"price": "0"})),
            "price must be positive",
        ),
        (
            "huge id",
            trade(serde_json::json!({"execution_id": "x".repeat(1 << 20)})),
            "execution_id of 1048576 bytes",
        ),
        (
            "before 1970",
            trade(serde_json::json!({"trade_time_r": -5000})),
            "not after 1970",
        ),
        (
            "far future",
            trade(serde_json::json!({"trade_time_r": 4_102_444_800_000_i64})),
            "not after 1970",
        ),
    ];
    for (what, record, message) in cases {
        let out = import(
            &db,
            dir.path(),
            "bad.json",
            &serde_json::json!([record]).to_string(),
        );
        assert!(!out.status.success(), "{what}: {}", stdout(&out));
        assert!(stderr(&out).contains(message), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).len() < 2_000,
            "{what}: the error repeats the input"
        );
    }
    let out = import(
        &db,
        dir.path(),
        "error.json",
        r#"{"error": "Please query /accounts first"}"#,
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("error answer, not trades"),
        "{}",
        stderr(&out)
    );
    // Nothing of the above was stored.
    let listed = ibflow(&db, &["executions", "--json"]);
    assert_eq!(stdout(&listed).trim(), "[]", "{}", stderr(&listed));
}

#[test]
fn a_different_fill_under_a_known_id_is_an_error_the_same_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let first = serde_json::json!([trade(serde_json::json!({}))]).to_string();
    let out = import(&db, dir.path(), "a.json", &first);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 new, 0 already stored"),
        "{}",
        stdout(&out)
    );
    // The same fill again: a silent no-op.
    let out = import(&db, dir.path(), "a.json", &first);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("0 new, 1 already stored"),
        "{}",
        stdout(&out)
    );
    // The same id, another size: an error naming the id; nothing changes.
    let other = serde_json::json!([trade(serde_json::json!({"size": 7}))]).to_string();
    let out = import(&db, dir.path(), "b.json", &other);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("0000e0d5.6576fd38.01.01") && err.contains("conflicts"),
        "{err}"
    );
    // Within one file too.
    let both = serde_json::json!([
        trade(serde_json::json!({"execution_id": "n1"})),
        trade(serde_json::json!({"execution_id": "n1", "price": "193"}))
    ])
    .to_string();
    let out = import(&db, dir.path(), "c.json", &both);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("n1"), "{}", stderr(&out));
    // The same fill under the same id, but for another order (a later
    // simulator run restarting its ids): a conflict, not a duplicate.
    let rerun =
        serde_json::json!([trade(serde_json::json!({"order_ref": "Order999"}))]).to_string();
    let out = import(&db, dir.path(), "r.json", &rerun);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("Order999"), "{}", stderr(&out));
    let pos = ibflow(&db, &["db", "positions", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&pos)).unwrap();
    assert_eq!(v[0]["quantity"], "5", "{v}");
}

/// Two runs whose venue reuses order ids (the built-in simulator restarts
/// its ids) never overwrite each other's rows, and the conflict is an
/// error naming both orders, not a row dropped without a word.
#[test]
fn a_broker_order_id_of_another_order_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    rt().block_on(async {
        let s = store::Store::open(&db).await.unwrap();
        let mut first = order("bot1.aaaaaaaa.0.ibf-1", OrderStatus::Submitted, 1, 0);
        first.broker_order_id = Some("1".into());
        s.upsert_order(&first).await.unwrap();
        let mut second = order("bot1.bbbbbbbb.0.ibf-1", OrderStatus::Submitted, 2, 0);
        second.broker_order_id = Some("1".into());
        let err = s.upsert_order(&second).await.unwrap_err();
        assert!(
            matches!(&err, store::StoreError::BrokerIdTaken { held_by, .. } if held_by == "bot1.aaaaaaaa.0.ibf-1"),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("bot1.bbbbbbbb.0.ibf-1") && msg.contains("broker order id 1"), "{msg}");
        let kept = s.order("bot1.aaaaaaaa.0.ibf-1").await.unwrap().unwrap();
        assert_eq!(kept.quantity, Decimal::ONE, "the first run's row is intact");
        assert!(s.order("bot1.bbbbbbbb.0.ibf-1").await.unwrap().is_none());
        s.close().await;
    });
}

/// A store last written longer ago than the broker's trades window has a
/// gap no restart can fill: it is named with its dates (and logged as an
/// ERROR at reconciliation); a short absence is not a gap.
#[test]
fn a_gap_longer_than_the_trades_window_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    rt().block_on(async {
        let s = store::Store::open(&db).await.unwrap();
        let now = Utc::now();
        assert_eq!(s.history_gap(now, 7).await.unwrap(), None, "empty store");
        s.upsert_order(&order(
            "bot1.00000000.0.ibf-1",
            OrderStatus::Submitted,
            1,
            30,
        ))
        .await
        .unwrap();
        let gap = s.history_gap(now, 7).await.unwrap().expect("a gap");
        assert!(gap.last_recorded < now - Duration::days(29), "{gap:?}");
        assert_eq!(gap.recoverable_from, now - Duration::days(7));
        s.upsert_order(&order(
            "bot1.00000000.0.ibf-2",
            OrderStatus::Submitted,
            1,
            2,
        ))
        .await
        .unwrap();
        assert_eq!(s.history_gap(now, 7).await.unwrap(), None, "two days away");
        s.close().await;
    });
}

/// The store gives its bot one identity for its cOIDs, the same after a
/// reopen; another store, another identity.
#[test]
fn a_store_keeps_one_bot_id() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let a = store::Store::open(&dir.path().join("a.db")).await.unwrap();
        let id = a.bot_id().await.unwrap();
        assert!(cpapi::order_ticket::valid_bot_id(&id), "{id}");
        assert_eq!(a.bot_id().await.unwrap(), id);
        a.close().await;
        let again = store::Store::open(&dir.path().join("a.db")).await.unwrap();
        assert_eq!(again.bot_id().await.unwrap(), id, "kept across a reopen");
        let b = store::Store::open(&dir.path().join("b.db")).await.unwrap();
        assert_ne!(b.bot_id().await.unwrap(), id);
    });
}

/// `ibflow run --store` on a store last written a month ago says, at start
/// and in its summary, which days of executions cannot be recovered.
#[test]
fn a_run_on_a_stale_store_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stale.db");
    rt().block_on(async {
        let s = store::Store::open(&db).await.unwrap();
        s.upsert_order(&order("bot1.00000000.0.ibf-1", OrderStatus::Filled, 1, 30))
            .await
            .unwrap();
        s.close().await;
    });
    let out = ibflow(
        &db,
        &[
            "run",
            "--store",
            "--speed",
            "864000",
            "--duration",
            "2",
            "--bar-seconds",
            "86400",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let from = (Utc::now() - Duration::days(30)).date_naive().to_string();
    assert!(
        stderr(&out).contains("cannot be recovered") && stderr(&out).contains(&from),
        "{}",
        stderr(&out)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["history_gap"]["from"], from.as_str(), "{summary}");
}

/// On an account shared by two ibflow bots, each bot's reconciliation
/// leaves the other's working orders alone; an order placed in TWS is
/// still reported as unknown.
#[test]
fn another_bots_orders_are_not_unknown_to_this_one() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = store::Store::open(&dir.path().join("a.db")).await.unwrap();
        let own = s.bot_id().await.unwrap();
        let other = if own == "ffffffff" {
            "eeeeeeee"
        } else {
            "ffffffff"
        };
        let listed = |coid: String| store::BrokerOrder {
            client_order_id: coid,
            status: OrderStatus::Submitted,
            filled_quantity: Decimal::ZERO,
        };
        let broker = vec![
            listed(format!("{other}.00000000.0.ibf-1")),
            listed(format!("{own}.00000000.0.ibf-1")),
            listed("Order123".into()),
        ];
        let found = s.order_discrepancies(&broker).await.unwrap();
        let mut unknown: Vec<String> = found
            .iter()
            .filter_map(|d| match d {
                store::Discrepancy::UnknownOrder { client_order_id } => {
                    Some(client_order_id.clone())
                }
                _ => None,
            })
            .collect();
        unknown.sort();
        let mut expected = vec![format!("{own}.00000000.0.ibf-1"), "Order123".to_owned()];
        expected.sort();
        assert_eq!(unknown, expected, "{found:?}");
    });
}
