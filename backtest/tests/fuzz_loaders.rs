//! Fuzz target for the bar loaders through their public entry point,
//! [`backtest::data::open`]: CSV files (any column order, epoch, RFC 3339
//! or date times, a conid column or none) and saved history JSON, written
//! to a real file and read back as a stream.
//!
//! Any file gives bars that pass [`Bar::check`], in time order, or a typed
//! error; never a panic. Case counts: see `tests/support/fuzz.rs`.

extern crate ibflow_backtest as backtest;

#[path = "../../tests/support/fuzz.rs"]
mod fuzz;

use backtest::data::{open, DataOptions};
use proptest::prelude::*;
use proptest::test_runner::Config;

const CSV: &[&str] = &[
    "time,open,high,low,close,volume\n1577890800,100,101,99,100.5,1000\n1577977200,100.5,102,100,101.25,2000\n",
    "conid,time,close,open,low,high,volume\n7,2020-01-02T15:00:00Z,10.5,10,9.5,11,\n8,2020-01-02T15:00:00Z,20,20,20,20,5\n7,2020-01-03,10,10,10,10,1\n",
    "time,open,high,low,close,volume\n1577890800000,0.5,0.55,0.45,0.52,1e3\n",
];

const JSON: &[&str] = &[
    r#"{"data":[{"t":1702285200000,"o":195.01,"c":194.8,"h":195.01,"l":194.8,"v":1723.0},{"t":1702285260000,"o":"194.8","c":194.9,"h":195.0,"l":194.7,"v":10}]}"#,
    r#"{"symbol":"AAPL","priceFactor":100,"barLength":86400,"volumeFactor":1,"data":[{"o":173.4,"c":174.7,"h":175.1,"l":171.7,"v":472117.45,"t":1692345600000}]}"#,
];

/// Load `bytes` as a file named `name` and check every bar it yields.
fn load(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Ok(stream) = open(&[path], &DataOptions::default()) else {
        return Ok(());
    };
    let mut last = None;
    for bar in stream {
        let Ok(bar) = bar else { break };
        prop_assert!(bar.check().is_ok(), "accepted {bar:?}");
        prop_assert!(last <= Some(bar.time), "out of order at {bar:?}");
        last = Some(bar.time);
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: fuzz::cases(1024), failure_persistence: None, ..Config::default() })]

    #[test]
    fn csv_files(bytes in fuzz::inputs(CSV)) {
        load("265598.csv", &bytes)?;
    }

    #[test]
    fn history_json_files(bytes in fuzz::inputs(JSON)) {
        load("265598.json", &bytes)?;
    }
}
