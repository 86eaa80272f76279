//! The run summary: what `summary.json`, the terminal table and the HTML
//! report show.

use std::collections::BTreeMap;
use std::io::{self, Write};

use engine::model::Timestamp;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::format::{fixed, percent, Norm, Rfc3339};

/// Metrics of one backtest run. See [`crate::report`] for the definition of
/// every metric.
///
/// Serialization is byte-stable: ratios are `f64` already rounded to 6
/// decimal places (null when undefined), money is a normalized Decimal
/// string, times are RFC 3339 UTC, parameters are a sorted map, and the
/// field order is the declaration order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Registry name of the strategy.
    pub strategy: String,
    /// Strategy parameters as given, values as text (sorted by name).
    pub params: BTreeMap<String, String>,
    /// What was replayed, as the caller put it (the CLI: the data paths,
    /// comma-separated, or `bundled sample`).
    pub data: String,
    /// Commission model (`none`, `ibkr-fixed:PER_SHARE/MIN/MAX_FRACTION`,
    /// `per-order:X`).
    pub commission_model: String,
    /// First equity observation; null when no bar was replayed.
    #[serde(serialize_with = "ser_time")]
    pub start: Option<Timestamp>,
    /// Last equity observation; null when no bar was replayed.
    #[serde(serialize_with = "ser_time")]
    pub end: Option<Timestamp>,
    /// Bars replayed.
    pub bars: u64,
    /// Equity observations (distinct timestamps).
    pub equity_points: u64,
    /// Session days with at least one observation.
    pub days: u64,
    /// Daily returns used by sharpe and sortino (`days - 1` normally).
    pub daily_returns: u64,
    /// Cash the account started with.
    #[serde(serialize_with = "ser_dec")]
    pub initial_cash: Decimal,
    /// Equity at the last observation (cash plus positions at their last
    /// close); the initial cash when nothing was observed.
    #[serde(serialize_with = "ser_dec")]
    pub final_equity: Decimal,
    /// Cash at the end, after commissions.
    #[serde(serialize_with = "ser_dec")]
    pub final_cash: Decimal,
    /// `final_equity - initial_cash`.
    #[serde(serialize_with = "ser_dec")]
    pub net_profit: Decimal,
    /// Commission of every fill, including fills of trades still open.
    #[serde(serialize_with = "ser_dec")]
    pub total_commission: Decimal,
    /// `final_equity / initial_cash - 1` (0.05 = +5%).
    #[serde(serialize_with = "ser_f64")]
    pub total_return: f64,
    /// Compound annual growth rate over the observed span; 0 for a zero span,
    /// null when undefined.
    #[serde(serialize_with = "ser_f64")]
    pub cagr: f64,
    /// Annualized Sharpe ratio of the daily returns (no risk-free rate).
    #[serde(serialize_with = "ser_f64")]
    pub sharpe: f64,
    /// Annualized Sortino ratio of the daily returns.
    #[serde(serialize_with = "ser_f64")]
    pub sortino: f64,
    /// Largest peak-to-trough fall, a positive fraction of the peak.
    #[serde(serialize_with = "ser_f64")]
    pub max_drawdown: f64,
    /// Closed round-trip trades.
    pub trades: u64,
    /// Closed trades with a net PnL above zero.
    pub winning_trades: u64,
    /// Closed trades with a net PnL below zero (breakeven trades are neither).
    pub losing_trades: u64,
    /// Trades still open at the end (not in `trades`).
    pub open_trades: u64,
    /// `winning_trades / trades`; 0 without trades.
    #[serde(serialize_with = "ser_f64")]
    pub win_rate: f64,
    /// Null when no trade lost money.
    #[serde(serialize_with = "ser_opt_f64")]
    pub profit_factor: Option<f64>,
    /// Sum of the net PnL of winning trades.
    #[serde(serialize_with = "ser_dec")]
    pub gross_profit: Decimal,
    /// Sum of the net losses of losing trades, as a positive number.
    #[serde(serialize_with = "ser_dec")]
    pub gross_loss: Decimal,
    /// Wall-clock duration of the run in milliseconds: the one field that
    /// differs between identical runs.
    pub elapsed_ms: u64,
}

fn ser_dec<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    // Explicit string, whatever rust_decimal serde features the workspace
    // unifies to.
    s.collect_str(&Norm(*d))
}

fn ser_f64<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

fn ser_opt_f64<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => ser_f64(v, s),
        None => s.serialize_none(),
    }
}

fn ser_time<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&Rfc3339(*t)),
        None => s.serialize_none(),
    }
}

impl Summary {
    /// Label / value pairs in display order, shared by [`print_table`] and
    /// the HTML report so both show the same numbers.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let time =
            |t: Option<Timestamp>| t.map_or_else(|| "-".to_owned(), |t| Rfc3339(t).to_string());
        vec![
            ("Strategy", self.strategy.clone()),
            ("Start", time(self.start)),
            ("End", time(self.end)),
            ("Bars", self.bars.to_string()),
            ("Session days", self.days.to_string()),
            ("Initial cash", Norm(self.initial_cash).to_string()),
            ("Final equity", Norm(self.final_equity).to_string()),
            ("Net profit", Norm(self.net_profit).to_string()),
            ("Total return", percent(self.total_return, 2)),
            ("CAGR", percent(self.cagr, 2)),
            ("Sharpe", fixed(self.sharpe, 3)),
            ("Sortino", fixed(self.sortino, 3)),
            ("Max drawdown", percent(self.max_drawdown, 2)),
            ("Trades", self.trades.to_string()),
            ("Win rate", percent(self.win_rate, 1)),
            (
                "Profit factor",
                self.profit_factor
                    .map_or_else(|| "n/a".to_owned(), |p| fixed(p, 3)),
            ),
            ("Open trades", self.open_trades.to_string()),
            ("Commission", Norm(self.total_commission).to_string()),
            ("Elapsed", format!("{} ms", self.elapsed_ms)),
        ]
    }
}

/// Writes a short two-column table of the main metrics for the terminal.
pub fn print_table(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    let rows = summary.rows();
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}
