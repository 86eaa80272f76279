//! `ibflow bench`: the whole pipeline (replay -> strategy -> exchange ->
//! accounting -> streaming metrics) with `sma_cross` on synthetic one-minute
//! bars, reporting bars per second and peak resident memory.
//!
//! Each size runs in a fresh child process so that peak RSS (`VmHWM`) belongs
//! to that size alone: flat memory means the 1 M and 10 M rows match.

use std::convert::Infallible;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use backtest::data::synthetic::SyntheticBars;
use backtest::runner::{self, BacktestConfig, RunLabel};
use engine::model::{Bar, Conid, Contract};
use engine::registry::Params;

/// Flags of `ibflow bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bar counts to measure, each in its own process.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64, 10_000_000u64])]
    pub bars: Vec<u64>,
    /// Run once in this process and print one JSON line (used by the parent).
    #[arg(long, hide = true)]
    pub child: bool,
    /// Strategy parameters (fast, slow, size) for sma_cross.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Measure {
    bars: u64,
    seconds: f64,
    bars_per_sec: f64,
    trades: u64,
    peak_rss_kib: Option<u64>,
}

/// Run `ibflow bench`: one child process per bar count (the parent prints
/// the table), or, with `--child`, one measurement printed as a JSON line.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.child {
        let n = *args
            .bars
            .first()
            .context("--child needs one --bars value")?;
        let m = measure(n, &args.params)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let exe = std::env::current_exe().context("locating the ibflow binary")?;
    println!("pipeline: synthetic 1-min bars -> sma_cross -> simulated exchange -> accounting -> metrics");
    println!(
        "{:>12} {:>10} {:>14} {:>8} {:>14}",
        "bars", "seconds", "bars/s", "trades", "peak RSS MiB"
    );
    for &n in &args.bars {
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "--child", "--bars", &n.to_string()]);
        for p in &args.params {
            cmd.args(["--param", p]);
        }
        let out = cmd.output().context("running the bench child process")?;
        if !out.status.success() {
            bail!(
                "bench child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let m: Measure =
            serde_json::from_slice(&out.stdout).context("reading the bench child's result")?;
        let rss = m
            .peak_rss_kib
            .map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "n/a".to_owned());
        println!(
            "{:>12} {:>10.3} {:>14.0} {:>8} {:>14}",
            m.bars, m.seconds, m.bars_per_sec, m.trades, rss
        );
    }
    Ok(())
}

fn measure(n: u64, pairs: &[String]) -> Result<Measure> {
    let conid = Conid(1);
    let mut params = Params::new();
    for p in pairs {
        params.set_pair(p)?;
    }
    let strategy = strategies::registry().build("sma_cross", &params)?;
    let bars = SyntheticBars::new(conid, 42, n).map(Ok::<Bar, Infallible>);
    let cfg = BacktestConfig::default();
    let started = Instant::now();
    let summary = runner::run(
        vec![strategy],
        &[Contract::stock(conid, "SYN")],
        bars,
        &cfg,
        RunLabel::default(),
        &mut |_| {},
    )?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measure {
        bars: summary.bars,
        seconds,
        bars_per_sec: summary.bars as f64 / seconds.max(1e-9),
        trades: summary.trades,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    memory_kib("self").map(|(_, peak)| peak)
}

/// (resident, peak resident) set size of process `pid` (`"self"` for this
/// one), in KiB: `VmRSS` and `VmHWM` of `/proc/PID/status` (Linux).
pub(crate) fn memory_kib(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
