//! Strategy states on a real SQLite file: saved through the journal, kept
//! across a reopen, last write wins, refused when too large or not JSON, and
//! a row edited into nonsense reaches the strategy as an error, not a panic.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_store as store;

use engine::dispatch::Dispatcher;
use engine::journal::Journal;
use engine::portfolio::Portfolio;
use engine::strategy::{Context, SavedState, Strategy, MAX_STATE_BYTES};
use rust_decimal_macros::dec;
use store::{Store, StoreError};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn st(index: usize, name: &str, json: &str) -> SavedState {
    SavedState {
        index,
        name: name.into(),
        json: json.into(),
    }
}

#[test]
fn saved_states_survive_a_reopen_and_the_last_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ibflow.db");
    rt().block_on(async {
        let mut store = Store::open(&path).await.unwrap();
        assert!(store.load_strategy_states().await.unwrap().is_empty());
        store
            .save_strategy_state(0, "sma_cross", r#"{"n":1}"#)
            .await
            .unwrap();
        store
            .save_strategy_state(2, "mean_reversion", r#"[1,2]"#)
            .await
            .unwrap();
        // Last write wins, name included (another strategy took index 0).
        store
            .save_strategy_state(0, "breakout_oca", r#"{"n":2}"#)
            .await
            .unwrap();
        store.close().await;

        let mut again = Store::open_existing(&path).await.unwrap();
        let loaded = again.load_strategy_states().await.unwrap();
        assert_eq!(
            loaded,
            vec![
                st(0, "breakout_oca", r#"{"n":2}"#),
                st(2, "mean_reversion", "[1,2]")
            ]
        );
        let with_time = again.strategy_snapshots().await.unwrap();
        let age = chrono::Utc::now() - with_time[0].1;
        assert!(age.num_seconds().abs() < 60, "updated_ms is now, UTC");
        assert!(again.delete_strategy_snapshot(2).await.unwrap());
        assert!(!again.delete_strategy_snapshot(2).await.unwrap());
        assert_eq!(again.load_strategy_states().await.unwrap().len(), 1);
    });
}

#[test]
fn oversized_or_non_json_states_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(&dir.path().join("ibflow.db")).await.unwrap();
        store
            .save_strategy_state(1, "s", r#""kept""#)
            .await
            .unwrap();
        let big = format!("\"{}\"", "x".repeat(MAX_STATE_BYTES));
        let err = store
            .save_strategy_snapshot(1, "s", &big)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidState { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("more than the 1048576 allowed"));
        // Through the journal, the same refusal as a JournalError.
        let err = store.save_strategy_state(1, "s", &big).await.unwrap_err();
        assert!(err.to_string().contains("1048576"), "{err}");
        let err = store
            .save_strategy_snapshot(1, "s", "{oops")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Json(_)), "{err}");
        // Exactly at the limit is accepted.
        let edge = format!("\"{}\"", "y".repeat(MAX_STATE_BYTES - 2));
        store.save_strategy_snapshot(3, "s", &edge).await.unwrap();
        let loaded = store.load_strategy_states().await.unwrap();
        assert_eq!(loaded[0], st(1, "s", r#""kept""#));
        assert_eq!(loaded[1].json.len(), MAX_STATE_BYTES);
        // The table refuses an oversized row written behind the store's
        // back too.
        let raw = sqlx_insert(&store, 4, "s", &big).await;
        assert!(raw.is_err(), "CHECK constraint");
    });
}

async fn sqlx_insert(
    store: &Store,
    slot: i64,
    name: &str,
    json: &str,
) -> Result<(), store::sqlx::Error> {
    store::sqlx::query(
        "INSERT OR REPLACE INTO strategy_snapshots (slot, name, state_json, updated_ms) \
         VALUES (?, ?, ?, 0)",
    )
    .bind(slot)
    .bind(name)
    .bind(json)
    .execute(store.pool())
    .await
    .map(|_| ())
}

/// Reads its state at start as a `u32` counter.
struct Reader(Option<Result<Option<u32>, String>>);

impl Strategy for Reader {
    fn name(&self) -> &str {
        "reader"
    }
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.0 = Some(ctx.saved_state::<u32>().map_err(|e| e.to_string()));
    }
}

#[test]
fn corrupt_or_foreign_json_in_the_file_is_an_error_for_the_strategy_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(&dir.path().join("ibflow.db")).await.unwrap();
        // Edited by hand: not JSON, foreign JSON, a fitting one.
        sqlx_insert(&store, 0, "reader", "{not json").await.unwrap();
        sqlx_insert(&store, 1, "reader", r#"{"a":"b"}"#)
            .await
            .unwrap();
        sqlx_insert(&store, 2, "reader", "41").await.unwrap();
        let loaded = store.load_strategy_states().await.unwrap();
        assert_eq!(loaded.len(), 3);
        let mut d = Dispatcher::new(
            vec![Reader(None), Reader(None), Reader(None)],
            Portfolio::new(dec!(1)),
        );
        assert_eq!(d.restore_states(loaded), 3);
        d.start();
        let got: Vec<_> = d
            .strategies()
            .iter()
            .map(|r| r.0.clone().unwrap())
            .collect();
        assert!(got[0].as_ref().unwrap_err().contains("does not fit"));
        assert!(got[1].as_ref().unwrap_err().contains("does not fit"));
        assert_eq!(got[2], Ok(Some(41)));
        // A negative index can only come from outside: refused by the
        // table, never read back as a huge index.
        assert!(sqlx_insert(&store, -1, "reader", "1").await.is_err());
    });
}
