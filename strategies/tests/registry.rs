//! The registry built by `strategies::registry()`.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

use engine::registry::{Params, RegistryError, StrategyRegistry};

#[test]
fn registers_every_strategy_with_a_description() {
    let r = strategies::registry();
    let names: Vec<_> = r.entries().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "breakout_oca",
            "forecast_band",
            "mean_reversion",
            "sma_cross"
        ]
    );
    for e in r.entries() {
        assert!(!e.description.is_empty());
        assert!(!e.description.contains('\n'), "{}", e.name);
        // Every strategy builds with its defaults.
        assert!(r.build(e.name, &Params::new()).is_ok(), "{}", e.name);
    }
}

#[test]
fn register_all_adds_to_an_existing_registry() {
    let mut r = StrategyRegistry::new();
    strategies::register_all(&mut r);
    assert!(r.contains("sma_cross"));
    assert!(r.contains("breakout_oca"));
    assert!(r.contains("mean_reversion"));
    assert!(r.contains("forecast_band"));
    match r.build("sma_crossover", &Params::new()).err() {
        Some(RegistryError::Unknown { known, .. }) => assert!(known.contains("sma_cross")),
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[test]
fn params_from_a_toml_table() {
    let t: toml::Table = toml::from_str("fast = 5\nslow = 20\nsize = \"0.25\"").unwrap();
    assert!(strategies::registry()
        .build("sma_cross", &Params::from_table(t))
        .is_ok());
}
