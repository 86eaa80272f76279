//! `ibflow backtest`: a run or a sweep over saved bars, with its report.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rust_decimal::Decimal;

use backtest::exchange::{CommissionModel, ExchangeConfig, Intrabar};
use backtest::runner::{self, BacktestConfig, RunLabel};
use backtest::sweep::{self, SweepAxis};
use engine::forecastex::Pairing;
use engine::registry::Params;

use crate::config::ConfigFile;

/// Flags of `ibflow backtest`. Each one overrides the same key of the
/// `[backtest]` section of `--config`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// TOML file with any of the settings below (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Saved /hmds/history or /iserver/marketdata/history JSON responses, or
    /// CSV (time,open,high,low,close,volume); files or directories. Default:
    /// the bundled sample.
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Strategy name (see `ibflow strategies`). Default: sma_cross.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Strategy parameter, repeatable: --param fast=10.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Starting cash: positive, at most 1e15. Default 100000.
    #[arg(long)]
    pub cash: Option<Decimal>,
    /// none | ibkr-fixed | per-order:X. Default none.
    #[arg(long)]
    pub commission: Option<String>,
    /// Adverse slippage on market and stop fills, in ticks.
    #[arg(long)]
    pub slippage_ticks: Option<u32>,
    /// When a bracket's target and stop are both inside one bar, fill the
    /// target first (default: the stop).
    #[arg(long)]
    pub target_first: bool,
    /// Exchange time zone that defines sessions (DAY expiry, daily returns).
    #[arg(long)]
    pub session_tz: Option<String>,
    /// Output directory. Default: ./ibflow-out
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// ForecastEx: a saved /trsrv/event/contracts answer (`ibflow gateway
    /// event-contracts --market CONID --json > FILE`). Its YES/NO contracts
    /// cannot be sold, buys against the other side are netted as the venue
    /// does, and strategies find the pairs.
    #[arg(long, value_name = "FILE")]
    pub event_contracts: Option<PathBuf>,
    /// Sweep a parameter over start:end:step (inclusive), repeatable; runs the
    /// grid in parallel and writes sweep.csv.
    #[arg(long = "sweep", value_name = "K=A:B:S")]
    pub sweeps: Vec<String>,
    /// Metric that ranks sweep.csv (best first).
    #[arg(long)]
    pub rank_by: Option<String>,
    /// No table on stdout, no progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The YES/NO pairing of a saved `/trsrv/event/contracts` answer, read
/// with the client's own types.
pub fn load_event_pairing(path: &std::path::Path) -> Result<Pairing> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading event contracts {}", path.display()))?;
    let body: cpapi::messages::EventContracts = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a /trsrv/event/contracts answer", path.display()))?;
    let pairing = body
        .pairing()
        .with_context(|| format!("pairing the contracts of {}", path.display()))?;
    if pairing.is_empty() {
        bail!(
            "{}: no strike has both a YES and a NO contract",
            path.display()
        );
    }
    Ok(pairing)
}

/// Everything a backtest needs, after config file and flags are merged.
struct Plan {
    data: Vec<PathBuf>,
    strategy: String,
    params: Params,
    cfg: BacktestConfig,
    out: PathBuf,
    sweeps: Vec<SweepAxis>,
    rank_by: String,
    quiet: bool,
}

fn plan(args: BacktestArgs) -> Result<Plan> {
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let risk = file.risk;
    let sec = file.backtest;
    let data = if args.data.is_empty() {
        sec.data.unwrap_or_default()
    } else {
        args.data
    };
    let strategy = args
        .strategy
        .or(sec.strategy)
        .unwrap_or_else(|| "sma_cross".to_owned());
    let mut params = Params::from_table(sec.params);
    for p in &args.params {
        params.set_pair(p)?;
    }
    let cash = match (args.cash, sec.cash) {
        (Some(c), _) => c,
        (None, Some(v)) => decimal_from_toml(&v).context("config: backtest.cash")?,
        (None, None) => Decimal::from(100_000),
    };
    // An upper bound leaves the accounting room: cash plus the value of
    // every fill must stay far inside `Decimal`'s range (about 7.9e28).
    let max_cash = Decimal::from(MAX_CASH);
    if cash <= Decimal::ZERO || cash > max_cash {
        bail!("cash must be positive and at most {max_cash}, got {cash}");
    }
    let commission = match args.commission.or(sec.commission) {
        Some(s) => CommissionModel::from_str(&s).map_err(|e| anyhow!(e))?,
        None => CommissionModel::None,
    };
    let intrabar = if args.target_first {
        Intrabar::TargetFirst
    } else {
        match sec.intrabar.as_deref() {
            None | Some("stop-first") => Intrabar::StopFirst,
            Some("target-first") => Intrabar::TargetFirst,
            Some(other) => {
                bail!("config: intrabar must be stop-first or target-first, got {other:?}")
            }
        }
    };
    let tz_name = args
        .session_tz
        .or(sec.session_tz)
        .unwrap_or_else(|| "America/New_York".to_owned());
    let session_tz: chrono_tz::Tz = tz_name
        .parse()
        .map_err(|_| anyhow!("unknown time zone {tz_name:?}"))?;
    let mut sweeps = Vec::new();
    for (k, v) in &sec.sweep {
        sweeps.push(SweepAxis::parse(&format!("{k}={v}"))?);
    }
    for s in &args.sweeps {
        let axis = SweepAxis::parse(s)?;
        sweeps.retain(|a| a.name != axis.name);
        sweeps.push(axis);
    }
    let out = args
        .out
        .or(sec.out)
        .unwrap_or_else(|| PathBuf::from("ibflow-out"));
    let event_pairing = match args.event_contracts.or(sec.event_contracts) {
        Some(path) => load_event_pairing(&path)?,
        None => Pairing::default(),
    };
    Ok(Plan {
        data,
        strategy,
        params,
        cfg: BacktestConfig {
            cash,
            exchange: ExchangeConfig {
                commission,
                slippage_ticks: args.slippage_ticks.or(sec.slippage_ticks).unwrap_or(0),
                intrabar,
                session_tz,
                ..ExchangeConfig::default()
            },
            risk,
            out_dir: Some(out.clone()),
            event_pairing,
        },
        out,
        sweeps,
        rank_by: args
            .rank_by
            .or(sec.rank_by)
            .unwrap_or_else(|| "sharpe".to_owned()),
        quiet: args.quiet,
    })
}

fn decimal_from_toml(v: &toml::Value) -> Result<Decimal> {
    Ok(match v {
        toml::Value::Integer(i) => Decimal::from(*i),
        toml::Value::String(s) => Decimal::from_str(s.trim())?,
        toml::Value::Float(f) => Decimal::from_str(&f.to_string())?,
        other => bail!("expected a number, got {other}"),
    })
}

fn open_data(paths: &[PathBuf]) -> Result<backtest::data::BarStream> {
    if paths.is_empty() {
        return Ok(backtest::data::sample());
    }
    Ok(backtest::data::open(
        paths,
        &backtest::data::DataOptions::default(),
    )?)
}

fn describe(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        "bundled sample".to_owned()
    } else {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn label(plan: &Plan, params: &Params) -> RunLabel {
    RunLabel {
        strategy: plan.strategy.clone(),
        params: params_map(params),
        data: describe(&plan.data),
    }
}

fn params_map(p: &Params) -> BTreeMap<String, String> {
    p.table()
        .iter()
        .map(|(k, v)| {
            let s = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Run `ibflow backtest`: merge the config file and flags, check the
/// strategy and its parameters, then replay once (report files and a
/// summary table) or run the sweep grid (`sweep.csv`).
pub fn backtest(args: BacktestArgs) -> Result<()> {
    let plan = plan(args)?;
    let registry = strategies::registry();
    // Fail fast on an unknown strategy or bad parameters.
    registry.build(&plan.strategy, &plan.params)?;
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("creating output directory {}", plan.out.display()))?;
    if !plan.sweeps.is_empty() {
        return run_sweep(&plan);
    }
    let stream = open_data(&plan.data)?;
    let contracts = stream.contracts();
    let strategy = registry.build(&plan.strategy, &plan.params)?;
    let bar = progress_bar(plan.quiet);
    let summary = runner::run(
        vec![strategy],
        &contracts,
        stream,
        &plan.cfg,
        label(&plan, &plan.params),
        &mut |n| {
            if let Some(b) = &bar {
                b.set_position(n);
            }
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !plan.quiet {
        let mut stdout = std::io::stdout().lock();
        backtest::report::print_table(&summary, &mut stdout)?;
        println!("report: {}", plan.out.join("report.html").display());
    }
    Ok(())
}

fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {pos} bars  {per_sec}  {elapsed}")
    {
        pb.set_style(style);
    }
    Some(pb)
}

/// Largest starting cash of a backtest: a thousand trillion.
const MAX_CASH: i64 = 1_000_000_000_000_000;

fn run_sweep(plan: &Plan) -> Result<()> {
    let registry = strategies::registry();
    let grid = sweep::grid(&plan.sweeps)?;
    let results = sweep::run(&grid, |overrides| {
        let params = plan.params.merged(overrides);
        let strategy = registry
            .build(&plan.strategy, &params)
            .map_err(|e| e.to_string())?;
        let stream = open_data(&plan.data).map_err(|e| e.to_string())?;
        let contracts = stream.contracts();
        let cfg = BacktestConfig {
            out_dir: None,
            ..plan.cfg.clone()
        };
        runner::run(
            vec![strategy],
            &contracts,
            stream,
            &cfg,
            label(plan, &params),
            &mut |_| {},
        )
        .map_err(|e| e.to_string())
    });
    let total = results.len();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    // Only the first failure is named (the rest are in sweep.csv).
    let first = results.iter().find_map(|(p, r)| {
        r.as_ref()
            .err()
            .map(|e| format!("{}: {e}", toml::Value::Table(p.table().clone())))
    });
    let path = plan.out.join("sweep.csv");
    let ranked = sweep::write_csv(&path, &plan.sweeps, results, &plan.rank_by)?;
    // A sweep with no successful point has no result: that is a failure,
    // not an empty ranking (it used to exit 0). Some failures among
    // successes are reported and ranked last.
    if let Some(first) = first {
        if failed == total {
            bail!(
                "every one of the {total} sweep points failed (errors in {}); the first: {first}",
                path.display()
            );
        }
        tracing::warn!(
            failed,
            total,
            first = %first,
            "some sweep points failed; they are ranked last in sweep.csv"
        );
    }
    if !plan.quiet {
        println!(
            "{} runs ranked by {} -> {}",
            ranked.len(),
            plan.rank_by,
            path.display()
        );
        for (i, row) in ranked.iter().take(5).enumerate() {
            println!("{:>3}. {}", i + 1, row);
        }
    }
    Ok(())
}
