//! The `--config` TOML file of `ibflow backtest` and `ibflow run`. Every key
//! is optional and every command-line flag overrides it.
//!
//! ```toml
//! [backtest]
//! data = ["data/sample"]        # files or directories; default: bundled sample
//! strategy = "sma_cross"
//! cash = "100000"
//! commission = "ibkr-fixed"     # none | ibkr-fixed | per-order:X
//! slippage_ticks = 1
//! intrabar = "stop-first"       # stop-first | target-first
//! session_tz = "America/New_York"
//! out = "out/sma"
//! rank_by = "sharpe"            # metric that orders sweep.csv
//!
//! [backtest.params]
//! fast = 10
//! slow = 30
//!
//! [backtest.sweep]
//! fast = "5:30:5"
//! slow = "20:100:10"
//!
//! [risk.global]                 # engine::risk::RiskLimits
//! max_position = "500"
//! max_order_quantity = "200"
//! daily_loss_limit = "2000"
//! no_short = true
//!
//! [risk.per_strategy.0]         # by strategy index
//! max_orders_per_minute = 10
//! ```
//!
//! `ibflow run --config` reads `[risk]`, `[store]` and `[run]` (see
//! `config/sim.toml` and `config/paper.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The whole `--config` file: every section optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[backtest]`: defaults for `ibflow backtest` flags.
    #[serde(default)]
    pub backtest: BacktestSection,
    /// Pre-trade risk limits, applied in backtests and live.
    #[serde(default)]
    pub risk: engine::risk::RiskConfig,
    /// `[store]`: the database file.
    #[serde(default)]
    pub store: StoreSection,
    /// `ibflow run`: the venue, the contracts and the strategies of a bot.
    #[serde(default)]
    pub run: RunSection,
}

/// `[run]`: what `ibflow run` flags say, for a bot started from a file.
/// Flags win; `--strategy`/`--param` replace the `[[run.strategies]]` list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// CP Gateway base URL; absent: the built-in simulator.
    pub gateway: Option<String>,
    /// Accept the gateway's self-signed certificate (loopback hosts only); the
    /// `--insecure` flag can only turn it on.
    pub insecure: Option<bool>,
    /// Account to trade; absent: the gateway's first account.
    pub account: Option<String>,
    /// Contracts to subscribe (besides those the strategies name).
    #[serde(default)]
    pub conids: Vec<i64>,
    /// Length of the bars built from quotes, in seconds (default 60).
    pub bar_seconds: Option<u64>,
    /// Simulator replay speed.
    pub speed: Option<f64>,
    /// Prompt ids answered "yes" automatically.
    #[serde(default)]
    pub confirm: Vec<String>,
    /// Refuse orders outside each contract's trading hours; absent: on with a
    /// gateway, off with the simulator.
    pub trading_hours: Option<bool>,
    /// Persist and reconcile through the SQLite store.
    pub store: Option<bool>,
    /// Leave working orders in place on exit (default: cancel them).
    pub keep_orders: Option<bool>,
    /// The control endpoint's address (`127.0.0.1:9464`; loopback only):
    /// health, metrics, status, kill switch, gateway proxy. Absent: off.
    pub control: Option<String>,
    /// The bearer token the control endpoint asks for;
    /// `IBFLOW_CONTROL_TOKEN` wins. Never shown in `Debug` output.
    pub control_token: Option<ibkr::BearerToken>,
    /// `[[run.strategies]]`: the strategies to run, in order (their index is
    /// the one `[risk.per_strategy.N]` uses); replaced by `--strategy`.
    #[serde(default)]
    pub strategies: Vec<RunStrategy>,
}

/// One `[[run.strategies]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStrategy {
    /// Registry name (see `ibflow strategies`).
    pub name: String,
    /// The contracts whose bars and quotes it sees (default: all).
    #[serde(default)]
    pub conids: Vec<i64>,
    /// The strategy's parameters; missing keys take its defaults.
    #[serde(default)]
    pub params: toml::Table,
    /// Risk limits of this strategy alone (`[risk.per_strategy.N]` by
    /// position in the list).
    pub risk: Option<engine::risk::RiskLimits>,
}

/// `[store]`: where the SQLite database lives. `--db` and `IBFLOW_DB` win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Database file; a relative path is relative to the config file.
    pub db: Option<PathBuf>,
}

/// `[backtest]`: the settings of `ibflow backtest`, each overridden by its
/// flag. Relative paths are relative to the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSection {
    /// Bar files or directories; absent: the bundled sample.
    pub data: Option<Vec<PathBuf>>,
    /// Strategy name (default `sma_cross`).
    pub strategy: Option<String>,
    /// Starting cash, a number or a decimal string (default 100000).
    pub cash: Option<toml::Value>,
    /// `none`, `ibkr-fixed` or `per-order:X` (default `none`).
    pub commission: Option<String>,
    /// Adverse slippage of market and stop fills, in ticks (default 0).
    pub slippage_ticks: Option<u32>,
    /// `stop-first` (default) or `target-first`.
    pub intrabar: Option<String>,
    /// IANA time zone that defines sessions (default `America/New_York`).
    pub session_tz: Option<String>,
    /// Output directory (default `ibflow-out`).
    pub out: Option<PathBuf>,
    /// Summary metric that ranks `sweep.csv` (default `sharpe`).
    pub rank_by: Option<String>,
    /// A saved `/trsrv/event/contracts` answer (ForecastEx pairs).
    pub event_contracts: Option<PathBuf>,
    /// `[backtest.params]`: strategy parameters; `--param` overrides one key.
    #[serde(default)]
    pub params: toml::Table,
    /// `[backtest.sweep]`: parameter name to `start:end:step`; a `--sweep` of
    /// the same name replaces it.
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
}

impl ConfigFile {
    /// Read and parse `path`, resolving the relative paths in it (database,
    /// data, event contracts) against the file's directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parse `text`, the contents of the config file at `path` (which
    /// only anchors relative paths; it is not read).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut cfg: ConfigFile =
            toml::from_str(text).with_context(|| format!("parsing config {}", path.display()))?;
        if let (Some(db), Some(dir)) = (cfg.store.db.as_mut(), path.parent()) {
            if db.is_relative() {
                *db = dir.join(&*db);
            }
        }
        if let (Some(p), Some(dir)) = (cfg.backtest.event_contracts.as_mut(), path.parent()) {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        // Relative data paths are relative to the config file.
        if let (Some(data), Some(dir)) = (cfg.backtest.data.as_mut(), path.parent()) {
            for p in data.iter_mut() {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod example_configs {
    use super::*;

    /// Every example under `config/` parses, and the bot configs name
    /// strategies the registry knows.
    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let registry = strategies::registry();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let cfg = ConfigFile::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
                for s in &cfg.run.strategies {
                    let params = engine::registry::Params::from_table(s.params.clone());
                    registry
                        .build(&s.name, &params)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                seen += 1;
            }
        }
        assert!(seen >= 4, "examples found: {seen}");
    }
}
