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
    pub strategy: String,
    pub params: BTreeMap<String, String>,
    pub data: String,
    pub commission_model: String,
    #[serde(serialize_with = "ser_time")]
    pub start: Option<Timestamp>,
    #[serde(serialize_with = "ser_time")]
    pub end: Option<Timestamp>,
    pub bars: u64,
    /// Equity observations (distinct timestamps).
    pub equity_points: u64,
    /// Session days with at least one observation.
    pub days: u64,
    /// Daily returns used by sharpe and sortino (`days - 1` normally).
    pub daily_returns: u64,
    #[serde(serialize_with = "ser_dec")]
    pub initial_cash: Decimal,
    #[serde(serialize_with = "ser_dec")]
    pub final_equity: Decimal,
    #[serde(serialize_with = "ser_dec")]
    pub final_cash: Decimal,
    /// `final_equity - initial_cash`.
    #[serde(serialize_with = "ser_dec")]
    pub net_profit: Decimal,
    /// Commission of every fill, including fills of trades still open.
    #[serde(serialize_with = "ser_dec")]
    pub total_commission: Decimal,
    #[serde(serialize_with = "ser_f64")]
    pub total_return: f64,
    #[serde(serialize_with = "ser_f64")]
    pub cagr: f64,
    #[serde(serialize_with = "ser_f64")]
    pub sharpe: f64,
    #[serde(serialize_with = "ser_f64")]
    pub sortino: f64,
    #[serde(serialize_with = "ser_f64")]
    pub max_drawdown: f64,
    /// Closed round-trip trades.
    pub trades: u64,
    pub winning_trades: u64,
    pub losing_trades: u64,
    /// Trades still open at the end (not in `trades`).
    pub open_trades: u64,
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
