//! Backtest outputs: metrics, CSV files, the equity plot and the HTML report.
//!
//! The backtest loop drives a [`Recorder`]: [`Recorder::on_fill`] for every
//! fill, [`Recorder::on_equity`] once per distinct timestamp, and
//! [`Recorder::finish`] at the end. Memory stays flat however many bars are
//! replayed: metrics are streaming (running sums, Welford), CSV rows go
//! straight to buffered files, only the open trade of each conid is kept,
//! and the plot keeps a bounded, decimated series.
//!
//! # Outputs (when [`RecorderOptions::out_dir`] is set)
//!
//! * `equity.csv`: `time,equity,drawdown`, one row per `on_equity` call;
//!   `drawdown` is the fraction below the running peak,
//!   `(peak - equity) / peak`, rounded half away from zero to 6 decimal
//!   places (the difference is exact, the ratio is taken in `f64`).
//! * `trades.csv`:
//!   `entry_time,exit_time,conid,side,qty,entry_price,exit_price,pnl,commission`,
//!   one row per closed round trip, in closing order.
//! * `summary.json`: the [`Summary`].
//! * `equity.png`: equity (top) and drawdown (bottom, filled), without text.
//! * `report.html`: one self-contained page with the summary, the
//!   parameters, the plot (embedded) and the first [`HTML_TRADES`] trades.
//!
//! Times are RFC 3339 UTC with a `Z` (`2024-01-02T05:00:00Z`); Decimals are
//! printed normalized (`100.5`, not `100.50`). Every file is byte-identical
//! for identical inputs (`elapsed_ms` aside, which comes from the caller):
//! nothing records the time of generation, maps are sorted, ratios are
//! rounded to 6 decimal places before they are printed.
//!
//! # Definitions
//!
//! * **Trade**: a round trip per conid. It opens when the position leaves
//!   zero and closes when it returns to zero; a fill that flips the sign
//!   closes the trade and opens a new one with the remainder, the fill's
//!   commission split pro rata by quantity. `qty` is the total quantity
//!   entered, `entry_price`/`exit_price` the VWAPs of the entry/exit fills,
//!   `commission` the trade's total commission, `pnl` the realized PnL net of
//!   that commission. Trades still open at the end are not in `trades.csv`
//!   and not counted (their PnL is in the final equity; `open_trades` counts
//!   them). Details in [`trades`].
//! * **total_return** = `final_equity / initial_cash - 1`.
//! * **cagr** = `(final_equity / initial_cash)^(365.25 days / span) - 1`,
//!   span = first to last equity observation; 0 when the span is zero, null
//!   when undefined (negative equity).
//! * **max_drawdown**: the largest peak-to-trough fall of equity as a
//!   positive fraction of the peak; the peak starts at the initial cash.
//! * **sharpe** = `mean(r) / std(r) * sqrt(252)` over daily returns
//!   `r_d = e_d / e_{d-1} - 1`, `e_d` the equity at the last observation of
//!   session day `d` (the date in [`RecorderOptions::session_tz`]); sample
//!   standard deviation; 0 with fewer than 2 returns or zero deviation; no
//!   risk-free rate.
//! * **sortino** = `mean(r) / downside_dev * sqrt(252)`,
//!   `downside_dev = sqrt(mean(min(r, 0)^2))`; 0 with fewer than 2 returns
//!   or no negative return.
//! * **win_rate** = trades with `pnl > 0` / trades (0 without trades).
//! * **profit_factor** = gross profit / gross loss (sums of the net PnL of
//!   winning and, negated, losing trades); null when no trade lost.
//! * **total_commission**: every fill's commission, open trades included.
//!
//! Details of the daily sampling in [`equity`].

pub mod equity;
pub mod format;
pub mod html;
pub mod plot;
pub mod summary;
pub mod trades;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use engine::model::{Conid, Timestamp};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use self::equity::EquityTracker;
use self::format::{round6, write_decimal, write_fraction6, Norm, Rfc3339, TimeWriter};
use self::plot::{PlotBuffer, PlotPoint};
pub use self::summary::{print_table, Summary};
pub use self::trades::{ClosedTrade, TradeBook, TradeSide};

/// File names written into the output directory.
pub const EQUITY_CSV: &str = "equity.csv";
/// `trades.csv`: one row per closed round trip.
pub const TRADES_CSV: &str = "trades.csv";
/// `summary.json`: the [`Summary`], pretty-printed.
pub const SUMMARY_JSON: &str = "summary.json";
/// `equity.png`: the equity and drawdown plot.
pub const EQUITY_PNG: &str = "equity.png";
/// `report.html`: the self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";

/// Header of `equity.csv`.
pub const EQUITY_HEADER: &str = "time,equity,drawdown";
/// Header of `trades.csv`.
pub const TRADES_HEADER: &str =
    "entry_time,exit_time,conid,side,qty,entry_price,exit_price,pnl,commission";

/// How many trades the HTML report lists (the first ones of the run).
pub const HTML_TRADES: usize = 200;

/// Errors of the report module.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An output file or the output directory could not be created or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The plotting library failed to draw or save `equity.png`.
    #[error("drawing the equity plot failed: {0}")]
    Plot(String),
    /// `summary.json` could not be serialized.
    #[error("serializing the summary failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The initial cash given to the recorder is zero or negative (drawdown and
    /// returns are fractions of it).
    #[error("initial cash must be positive, got {0}")]
    InitialCash(Decimal),
    /// [`RecorderOptions::plot_points`] is below 2.
    #[error("plot_points must be at least 2, got {0}")]
    PlotPoints(usize),
    /// An equity observation earlier than the one before it.
    #[error("equity observation at {got} is earlier than the previous one at {previous}")]
    TimeWentBackwards {
        /// The latest observation so far.
        previous: Timestamp,
        /// The one refused.
        got: Timestamp,
    },
    /// A fill of zero quantity: no trade can be built from it.
    #[error("fill of zero quantity in conid {conid} at {time}")]
    ZeroFill {
        /// The fill's contract.
        conid: Conid,
        /// The fill's time.
        time: Timestamp,
    },
    /// A Decimal sum or product out of range; names what was being computed.
    #[error("decimal overflow computing {0}")]
    Overflow(&'static str),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Recorder settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderOptions {
    /// Where to write the files; `None` computes the summary only (sweeps).
    pub out_dir: Option<PathBuf>,
    /// Time zone whose calendar dates define session days for daily returns.
    pub session_tz: Tz,
    /// Maximum number of points kept for the plot (at least 2).
    pub plot_points: usize,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            out_dir: None,
            session_tz: chrono_tz::America::New_York,
            plot_points: 2000,
        }
    }
}

impl RecorderOptions {
    /// Default options writing into `dir`.
    pub fn with_out_dir(dir: impl Into<PathBuf>) -> Self {
        RecorderOptions {
            out_dir: Some(dir.into()),
            ..RecorderOptions::default()
        }
    }
}

/// What the runner knows about the run, copied into the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMeta {
    /// Registry name of the strategy run.
    pub strategy: String,
    /// Strategy parameters as given (config and `--param`), values as text.
    pub params: BTreeMap<String, String>,
    /// Bars replayed.
    pub bars: u64,
    /// Wall-clock duration of the run, in milliseconds (the one value that
    /// differs between identical runs).
    pub elapsed_ms: u64,
    /// Cash of the portfolio at the end of the run.
    pub final_cash: Decimal,
    /// The exchange's commission model as text (`none`, `ibkr-fixed:...`,
    /// `per-order:X`).
    pub commission_model: String,
    /// Description of the data replayed (paths, symbols, bar size).
    pub data: String,
}

#[derive(Debug)]
struct CsvOut {
    path: PathBuf,
    w: BufWriter<File>,
}

impl CsvOut {
    fn create(path: PathBuf, header: &str) -> Result<Self, ReportError> {
        let file = File::create(&path).map_err(io_err(&path))?;
        let mut w = BufWriter::with_capacity(64 * 1024, file);
        writeln!(w, "{header}").map_err(io_err(&path))?;
        Ok(CsvOut { path, w })
    }

    fn finish(mut self) -> Result<(), ReportError> {
        self.w.flush().map_err(io_err(&self.path))
    }
}

#[derive(Debug)]
struct Outputs {
    dir: PathBuf,
    equity: CsvOut,
    trades: CsvOut,
    time_writer: TimeWriter,
    /// The running peak and its `f64`, converted once per new peak.
    peak: (Decimal, f64),
}

impl Outputs {
    /// One `equity.csv` row. The drawdown is `(peak - equity) / peak` with
    /// the difference taken exactly in Decimal and the ratio in `f64`,
    /// rounded half away from zero to 6 decimal places: a Decimal division
    /// per row would cost more than the rest of the row.
    #[inline]
    fn write_equity_row(
        &mut self,
        time: Timestamp,
        equity: Decimal,
        peak: Decimal,
    ) -> Result<(), ReportError> {
        if peak != self.peak.0 {
            self.peak = (peak, peak.to_f64().unwrap_or(f64::NAN));
        }
        let dd = if equity >= peak {
            0.0
        } else {
            peak.checked_sub(equity)
                .and_then(|d| d.to_f64())
                .map_or(f64::NAN, |d| d / self.peak.1)
        };
        let w = &mut self.equity.w;
        self.time_writer
            .write(w, time)
            .and_then(|()| w.write_all(b","))
            .and_then(|()| write_decimal(w, equity))
            .and_then(|()| w.write_all(b","))
            .and_then(|()| write_fraction6(w, dd))
            .and_then(|()| w.write_all(b"\n"))
            .map_err(io_err(&self.equity.path))
    }
}

/// Streaming collector of fills and equity observations; see the module
/// documentation for what it computes and writes.
#[derive(Debug)]
pub struct Recorder {
    initial_cash: Decimal,
    out: Option<Outputs>,
    equity: EquityTracker,
    plot: PlotBuffer,
    book: TradeBook,
    trades: u64,
    wins: u64,
    losses: u64,
    gross_profit: Decimal,
    gross_loss: Decimal,
    total_commission: Decimal,
    /// The first [`HTML_TRADES`] closed trades, for the HTML report.
    first_trades: Vec<ClosedTrade>,
}

impl Recorder {
    /// Creates the recorder and, when `opts.out_dir` is set, the directory
    /// and the two CSV files with their headers.
    pub fn new(initial_cash: Decimal, opts: RecorderOptions) -> Result<Self, ReportError> {
        if initial_cash <= Decimal::ZERO {
            return Err(ReportError::InitialCash(initial_cash));
        }
        if opts.plot_points < 2 {
            return Err(ReportError::PlotPoints(opts.plot_points));
        }
        let out = match opts.out_dir {
            None => None,
            Some(dir) => {
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                Some(Outputs {
                    equity: CsvOut::create(dir.join(EQUITY_CSV), EQUITY_HEADER)?,
                    trades: CsvOut::create(dir.join(TRADES_CSV), TRADES_HEADER)?,
                    dir,
                    time_writer: TimeWriter::default(),
                    peak: (Decimal::ZERO, 0.0),
                })
            }
        };
        Ok(Recorder {
            initial_cash,
            out,
            equity: EquityTracker::new(initial_cash, opts.session_tz),
            plot: PlotBuffer::new(opts.plot_points),
            book: TradeBook::new(),
            trades: 0,
            wins: 0,
            losses: 0,
            gross_profit: Decimal::ZERO,
            gross_loss: Decimal::ZERO,
            total_commission: Decimal::ZERO,
            first_trades: Vec::with_capacity(HTML_TRADES),
        })
    }

    /// Sets the contract multiplier used for trade PnL (default 1), e.g. 50
    /// for ES futures. Call before the conid's first fill.
    pub fn set_multiplier(&mut self, conid: Conid, multiplier: Decimal) {
        self.book.set_multiplier(conid, multiplier);
    }

    /// Called for every fill, in order. `signed_qty > 0` buys; `commission`
    /// is a positive cost. Writes a `trades.csv` row when the fill closes a
    /// trade.
    pub fn on_fill(
        &mut self,
        time: Timestamp,
        conid: Conid,
        signed_qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Result<(), ReportError> {
        let closed = self
            .book
            .apply(time, conid, signed_qty, price, commission)?;
        self.total_commission = self
            .total_commission
            .checked_add(commission)
            .ok_or(ReportError::Overflow("total commission"))?;
        if let Some(trade) = closed {
            self.record_trade(trade)?;
        }
        Ok(())
    }

    fn record_trade(&mut self, t: ClosedTrade) -> Result<(), ReportError> {
        self.trades += 1;
        if t.pnl > Decimal::ZERO {
            self.wins += 1;
            self.gross_profit = self
                .gross_profit
                .checked_add(t.pnl)
                .ok_or(ReportError::Overflow("gross profit"))?;
        } else if t.pnl < Decimal::ZERO {
            self.losses += 1;
            self.gross_loss = self
                .gross_loss
                .checked_sub(t.pnl)
                .ok_or(ReportError::Overflow("gross loss"))?;
        }
        if self.first_trades.len() < HTML_TRADES {
            self.first_trades.push(t);
        }
        if let Some(out) = &mut self.out {
            writeln!(
                out.trades.w,
                "{},{},{},{},{},{},{},{},{}",
                Rfc3339(t.entry_time),
                Rfc3339(t.exit_time),
                t.conid,
                t.side.as_str(),
                Norm(t.qty),
                Norm(t.entry_price),
                Norm(t.exit_price),
                Norm(t.pnl),
                Norm(t.commission)
            )
            .map_err(io_err(&out.trades.path))?;
        }
        Ok(())
    }

    /// Called once per distinct timestamp, after all bars of that time, with
    /// the account equity then. Times must not go backwards.
    ///
    /// Hot path: without an output directory this is a timestamp comparison
    /// (session day boundary), one or two Decimal comparisons (drawdown) and
    /// one for the plot bucket; no allocation, and `f64` only at a day
    /// boundary (about 30 ns per call in release). With an output directory
    /// it also writes one `equity.csv` row into a buffered writer with
    /// hand-rolled formatting (about 150 ns per call including the disk
    /// write); that row's drawdown needs one Decimal-to-`f64` conversion
    /// when equity is below its peak.
    #[inline]
    pub fn on_equity(&mut self, time: Timestamp, equity: Decimal) -> Result<(), ReportError> {
        self.equity.observe(time, equity)?;
        self.plot.push(PlotPoint {
            time,
            equity,
            peak: self.equity.peak(),
        });
        if let Some(out) = &mut self.out {
            out.write_equity_row(time, equity, self.equity.peak())?;
        }
        Ok(())
    }

    /// Points currently held for the plot (never more than `plot_points`).
    pub fn plot_len(&self) -> usize {
        self.plot.len()
    }

    /// Storage allocated for the plot series (fixed at `plot_points`).
    pub fn plot_allocated(&self) -> usize {
        self.plot.allocated()
    }

    /// Closed trades so far.
    pub fn closed_trades(&self) -> u64 {
        self.trades
    }

    /// The trade book (positions and open trades as the recorder sees them).
    pub fn trade_book(&self) -> &TradeBook {
        &self.book
    }

    /// Computes the summary and, with an output directory, flushes the CSV
    /// files and writes `summary.json`, `equity.png` and `report.html`.
    pub fn finish(self, meta: RunMeta) -> Result<Summary, ReportError> {
        let Recorder {
            initial_cash,
            out,
            equity,
            plot,
            book,
            trades,
            wins,
            losses,
            gross_profit,
            gross_loss,
            total_commission,
            first_trades,
        } = self;
        let stats = equity.finish()?;
        let ratio = |num: Decimal, den: Decimal| {
            num.checked_div(den)
                .and_then(|r| r.to_f64())
                .map_or(f64::NAN, round6)
        };
        let summary = Summary {
            strategy: meta.strategy,
            params: meta.params,
            data: meta.data,
            commission_model: meta.commission_model,
            start: stats.start,
            end: stats.end,
            bars: meta.bars,
            equity_points: stats.observations,
            days: stats.days,
            daily_returns: stats.returns.count(),
            initial_cash: initial_cash.normalize(),
            final_equity: stats.final_equity.normalize(),
            final_cash: meta.final_cash.normalize(),
            net_profit: stats
                .final_equity
                .checked_sub(initial_cash)
                .ok_or(ReportError::Overflow("net profit"))?
                .normalize(),
            total_commission: total_commission.normalize(),
            total_return: round6(stats.total_return()),
            cagr: round6(stats.cagr()),
            sharpe: round6(stats.returns.sharpe()),
            sortino: round6(stats.returns.sortino()),
            max_drawdown: stats.max_drawdown.to_f64().map_or(f64::NAN, round6),
            trades,
            winning_trades: wins,
            losing_trades: losses,
            open_trades: book.open_trades() as u64,
            win_rate: if trades == 0 {
                0.0
            } else {
                round6(wins as f64 / trades as f64)
            },
            profit_factor: if gross_loss > Decimal::ZERO {
                Some(ratio(gross_profit, gross_loss))
            } else {
                None
            },
            gross_profit: gross_profit.normalize(),
            gross_loss: gross_loss.normalize(),
            elapsed_ms: meta.elapsed_ms,
        };

        if let Some(out) = out {
            out.equity.finish()?;
            out.trades.finish()?;
            write_outputs(&out.dir, &summary, plot, &first_trades, initial_cash)?;
        }
        Ok(summary)
    }
}

fn write_outputs(
    dir: &Path,
    summary: &Summary,
    plot: PlotBuffer,
    first_trades: &[ClosedTrade],
    initial_cash: Decimal,
) -> Result<(), ReportError> {
    let mut json = serde_json::to_vec_pretty(summary)?;
    json.push(b'\n');
    let json_path = dir.join(SUMMARY_JSON);
    fs::write(&json_path, json).map_err(io_err(&json_path))?;

    let png_path = dir.join(EQUITY_PNG);
    let points = plot.into_points();
    let span = summary.start.zip(summary.end);
    let scales = plot::render_png(&png_path, &points, initial_cash, span)?;
    let png = fs::read(&png_path).map_err(io_err(&png_path))?;

    let html = html::render(summary, first_trades, &png, &scales);
    let html_path = dir.join(REPORT_HTML);
    fs::write(&html_path, html).map_err(io_err(&html_path))?;
    Ok(())
}
