//! The store commands of the `ibflow` binary on real database files.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn ibflow(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("IBFLOW_DB")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The spec's `/iserver/account/trades` example, plus a buy of the same
/// conid a day later.
const TRADES: &str = r#"[
  {
    "execution_id": "0000e0d5.6576fd38.01.01", "symbol": "AAPL", "supports_tax_opt": "1",
    "side": "S", "order_description": "Sold 5 @ 192.26 on ISLAND",
    "trade_time": "20231211-18:00:49", "trade_time_r": 1702317649000, "size": 5.0,
    "price": "192.26", "order_ref": "Order123", "submitter": "user1234", "exchange": "ISLAND",
    "commission": "1.01", "net_amount": 961.3, "account": "U1234567", "accountCode": "U1234567",
    "account_allocation_name": "U1234567", "company_name": "APPLE INC",
    "contract_description_1": "AAPL", "sec_type": "STK", "listing_exchange": "NASDAQ.NMS",
    "conid": 265598, "conidEx": "265598", "clearing_id": "IB", "clearing_name": "IB",
    "liquidation_trade": "0", "is_event_trading": "0"
  },
  {
    "execution_id": "0000e0d5.6578a1b2.01.01", "side": "B", "trade_time": "20231212-15:30:00",
    "size": "8", "price": "190.00", "commission": "1.00", "account": "U1234567",
    "conid": "265598", "order_ref": "Order124"
  }
]"#;

#[test]
fn import_trades_then_websocket_replay_counts_each_execution_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = ok(&ibflow(&db, &["db", "migrate"]));
    // Every file of migrations/ applies to a new database.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    assert!(migrations >= 4, "{migrations}");
    assert!(
        out.contains(&format!("{migrations} migration(s) applied")),
        "{out}"
    );
    let out = ok(&ibflow(&db, &["db", "migrate"]));
    assert!(out.contains("0 migration(s) applied"), "{out}");

    let trades = dir.path().join("trades.json");
    std::fs::write(&trades, TRADES).unwrap();
    let out = ok(&ibflow(
        &db,
        &["executions", "import", trades.to_str().unwrap()],
    ));
    assert!(out.contains("2 records, 2 new, 0 already stored"), "{out}");

    // The same executions from the websocket, with a heartbeat between.
    let list: Vec<Value> = serde_json::from_str(TRADES).unwrap();
    let ws = dir.path().join("str.jsonl");
    let lines = [
        serde_json::json!({"topic": "str", "args": [list[0]]}).to_string(),
        r#"{"topic":"system","hb":1700000000000}"#.to_owned(),
        serde_json::json!({"topic": "str", "args": [list[1], list[0]]}).to_string(),
    ];
    std::fs::write(&ws, lines.join("\n")).unwrap();
    let out = ok(&ibflow(
        &db,
        &["executions", "import", ws.to_str().unwrap()],
    ));
    assert!(
        out.contains("3 records, 0 new, 3 already stored, 1 other messages skipped"),
        "{out}"
    );

    let json: Value = serde_json::from_str(&ok(&ibflow(&db, &["executions", "--json"]))).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["execution_id"], "0000e0d5.6576fd38.01.01");
    assert_eq!(rows[0]["side"], "S");
    assert_eq!(rows[0]["price"], "192.26");
    let since: Value = serde_json::from_str(&ok(&ibflow(
        &db,
        &["executions", "--since", "2023-12-12", "--json"],
    )))
    .unwrap();
    assert_eq!(since.as_array().unwrap().len(), 1);
    assert_eq!(since[0]["execution_id"], "0000e0d5.6578a1b2.01.01");
    let table = ok(&ibflow(&db, &["executions"]));
    assert!(table.contains("Order123") && table.contains("2023-12-11T18:00:49Z"));

    // Sold 5, bought 8: long 3, the 5 short covered at 190 (+11.30).
    let pos: Value =
        serde_json::from_str(&ok(&ibflow(&db, &["db", "positions", "--json"]))).unwrap();
    assert_eq!(pos[0]["account"], "U1234567");
    assert_eq!(pos[0]["conid"], 265598);
    assert_eq!(pos[0]["quantity"], "3");
    assert_eq!(pos[0]["avg_cost"], "190");
    assert_eq!(pos[0]["realized_pnl"], "11.3");
    let out = ok(&ibflow(&db, &["db", "check"]));
    assert!(out.contains("integrity_check: ok"), "{out}");
    let orders: Value =
        serde_json::from_str(&ok(&ibflow(&db, &["db", "orders", "--json"]))).unwrap();
    assert_eq!(orders, serde_json::json!([]));
}

#[test]
fn ibflow_db_environment_variable_picks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-env.db");
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(["db", "migrate"])
        .env("IBFLOW_DB", &db)
        .current_dir(dir.path())
        .output()
        .unwrap();
    ok(&out);
    assert!(db.exists());
    assert!(!dir.path().join("ibflow.db").exists());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"topic\":\"str\",\"args\":[{\"execution_id\":\"e1\",\"side\":\"B\"}]}\n",
    )
    .unwrap();
    let out = ibflow(&db, &["executions", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && err.contains("conid"), "{err}");

    let html = dir.path().join("page.json");
    std::fs::write(&html, "<html>login</html>").unwrap();
    let out = ibflow(&db, &["executions", "import", html.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));

    let out = ibflow(&db, &["executions", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

/// `ibflow orders --local` and `ibflow positions --local` read the store
/// (the gateway forms of the same commands ask the gateway).
#[test]
fn local_orders_and_positions_read_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let trades = dir.path().join("trades.json");
    std::fs::write(
        &trades,
        r#"[{"execution_id":"0000e0d5.6576fd38.01.01","symbol":"AAPL","side":"B","trade_time":"20231211-18:00:49","trade_time_r":1702317649000,"size":5.0,"price":"192.26","order_ref":"Order123","commission":"1.01","net_amount":961.3,"account":"U1234567","conid":265598,"sec_type":"STK"}]"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ibflow"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["executions", "import", trades.to_str().unwrap()]);
    let positions = run(&["positions", "--local", "--json"]);
    let v: serde_json::Value = serde_json::from_str(positions.trim()).unwrap();
    let rows = v.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["conid"], 265598);
    assert_eq!(rows[0]["quantity"], "5");
    let orders = run(&["orders", "--local", "--json"]);
    assert!(serde_json::from_str::<serde_json::Value>(orders.trim())
        .unwrap()
        .is_array());
}
