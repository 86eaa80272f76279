//! `forecast_band` parameters: defaults build, nonsense is refused with the
//! reason. (Its trading is tested where the netting happens:
//! `backtest/tests/forecastex_backtest.rs` and the `ibflow run` e2e.)
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

use engine::registry::{Params, RegistryError};
use strategies::forecast_band::{self, ForecastBandParams};

fn build(pairs: &[&str]) -> Result<(), RegistryError> {
    let mut p = Params::new();
    for kv in pairs {
        p.set_pair(kv).unwrap();
    }
    forecast_band::factory(&p).map(|_| ())
}

#[test]
fn defaults_and_strings_build() {
    assert!(ForecastBandParams::default().validate().is_ok());
    build(&[
        "conid=762089344",
        "buy_below=0.3",
        "take_profit=0.7",
        "stop_below=0.2",
        "size=5",
    ])
    .unwrap();
}

#[test]
fn nonsense_is_refused_with_the_reason() {
    for (pairs, needle) in [
        (vec!["conid=0"], "conid"),
        (vec!["size=1.5"], "whole"),
        (vec!["size=0"], "size"),
        (
            vec!["buy_below=0.7", "take_profit=0.6"],
            "buy_below < take_profit",
        ),
        (vec!["stop_below=0.5"], "stop_below"),
        (vec!["colour=red"], "colour"),
    ] {
        let err = build(&pairs).unwrap_err().to_string();
        assert!(err.contains(needle), "{pairs:?}: {err}");
    }
}
