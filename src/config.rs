//! The `--config` TOML file of `ibflow backtest`. Every key is optional and
//! every command-line flag overrides it.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub backtest: BacktestSection,
    /// Pre-trade risk limits, applied in backtests and live.
    #[serde(default)]
    pub risk: engine::risk::RiskConfig,
    #[serde(default)]
    pub store: StoreSection,
}

/// `[store]`: where the SQLite database lives. `--db` and `IBFLOW_DB` win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub db: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSection {
    pub data: Option<Vec<PathBuf>>,
    pub strategy: Option<String>,
    pub cash: Option<toml::Value>,
    pub commission: Option<String>,
    pub slippage_ticks: Option<u32>,
    pub intrabar: Option<String>,
    pub session_tz: Option<String>,
    pub out: Option<PathBuf>,
    pub rank_by: Option<String>,
    /// A saved `/trsrv/event/contracts` answer (ForecastEx pairs).
    pub event_contracts: Option<PathBuf>,
    #[serde(default)]
    pub params: toml::Table,
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut cfg: ConfigFile =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
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
