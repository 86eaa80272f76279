//! Fuzz target for the config reader, [`ibflow::config::ConfigFile::parse`],
//! and what a config feeds straight into: the strategy registry, which
//! builds (and validates) each `[[run.strategies]]` entry and the
//! backtest's `[backtest.params]`.
//!
//! Seeds are the example configs under `config/`, edited and with numbers
//! made extreme (sizes of 1e27, periods of 1e308, negative ticks...). Any
//! text gives a config or an error, and any parameters give a strategy or
//! an error; never a panic. Case counts: see `tests/support/fuzz.rs`.

#[path = "support/fuzz.rs"]
mod fuzz;

use std::path::Path;

use engine::registry::Params;
use ibflow::config::ConfigFile;
use proptest::prelude::*;
use proptest::test_runner::Config;

const SEEDS: &[&str] = &[
    include_str!("../config/backtest.toml"),
    include_str!("../config/paper.toml"),
    include_str!("../config/sim.toml"),
    include_str!("../config/sweep.toml"),
];

proptest! {
    #![proptest_config(Config { cases: fuzz::cases(2048), failure_persistence: None, ..Config::default() })]

    #[test]
    fn config_files(bytes in fuzz::inputs(SEEDS)) {
        let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(()) };
        let Ok(cfg) = ConfigFile::parse(text, Path::new("/cfg/ibflow.toml")) else { return Ok(()) };
        let registry = strategies::registry();
        for s in &cfg.run.strategies {
            let _ = registry.build(&s.name, &Params::from_table(s.params.clone()));
        }
        if let Some(name) = &cfg.backtest.strategy {
            let _ = registry.build(name, &Params::from_table(cfg.backtest.params.clone()));
        }
    }
}
