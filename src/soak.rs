//! `ibflow bench-soak`: a bot left running for simulated months, its
//! memory sampled, so an operator (and a release) can see that a bot that
//! trades for weeks does not grow.
//!
//! Three processes, as in production: `ibflow sim-gateway --admin` (the
//! broker, replaying the bundled sample fast), `ibflow run --gateway ...
//! --store` (the bot: mean_reversion on two stocks, brackets with working
//! exits, every order and execution written to SQLite), and this command,
//! which samples the bot's resident memory (`VmRSS` of `/proc/PID/status`)
//! and the replay date at a fixed interval, drops the bot's websockets now
//! and then (`POST /sim/admin/websockets/drop`: reconnects and catch-ups
//! are part of a long run), and prints the series.
//!
//! Memory is judged flat when the median of the last quarter of samples is
//! within `--max-growth` percent of the median of the second quarter (the
//! first quarter is start-up: connections, the warm-up, allocator pools).
//! It is a benchmark, not a test: wall-clock spacing decides nothing but
//! how many samples there are.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

/// Flags of `ibflow bench-soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Replay days the bot trades through.
    #[arg(long, default_value_t = 182)]
    pub days: u32,
    /// Replay speed (replay seconds per second). At most two replay days a
    /// second: a catch-up after a dropped websocket waits up to 10 s for
    /// the pacing of the trade and order lists, and the trades list covers
    /// 7 days.
    #[arg(long, default_value_t = 43_200.0)]
    pub speed: f64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    pub every: u64,
    /// Seconds between dropped websockets (0: never).
    #[arg(long, default_value_t = 30)]
    pub drop_every: u64,
    /// Fail (exit 1) when memory grew more than this many percent.
    #[arg(long, default_value_t = 20.0)]
    pub max_growth: f64,
    /// One JSON object per sample, then the summary, instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One sample of the bot.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    wall_s: f64,
    replay_time: String,
    rss_kib: u64,
    websocket_drops: u64,
}

/// What the soak found.
#[derive(Debug, Serialize)]
struct Verdict {
    samples: usize,
    replay_days: u32,
    rss_early_kib: u64,
    rss_late_kib: u64,
    growth_pct: f64,
    peak_rss_kib: Option<u64>,
    flat: bool,
    bot_summary: serde_json::Value,
}

/// Kills the child when dropped, so a failed soak leaves no process.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Run the soak; see the module doc.
pub fn run(args: SoakArgs) -> Result<()> {
    if !args.speed.is_finite() || args.speed <= 0.0 || args.speed > 172_800.0 {
        bail!("--speed must be above 0 and at most 172800 (two replay days a second)");
    }
    if args.days == 0 || args.every == 0 {
        bail!("--days and --every must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("ibflow-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = soak(&args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn soak(args: &SoakArgs, dir: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating the ibflow binary")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // A fresh connection per call: the simulator may close a kept-alive
    // one between two calls (its idle timeout, a restart), and a reused
    // dead connection fails the call.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .context("an HTTP client")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port")?
        .port();
    let admin = format!("http://127.0.0.1:{port}/sim/admin");
    let _gateway = Reaped(
        Command::new(&exe)
            .args(["sim-gateway", "--admin", "--port", &port.to_string()])
            .args(["--speed", &args.speed.to_string()])
            .args(["--start", "2019-06-03T15:00:00Z"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ibflow sim-gateway")?,
    );
    let up = Instant::now();
    while rt.block_on(admin_get(&http, &admin)).is_err() {
        if up.elapsed() > Duration::from_secs(60) {
            bail!("ibflow sim-gateway did not answer on port {port} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seconds = f64::from(args.days) * 86_400.0 / args.speed;
    let log = dir.join("bot.log");
    let mut bot = Reaped(
        Command::new(&exe)
            .args(bot_args(
                &format!("http://127.0.0.1:{port}/v1/api"),
                &dir.join("soak.db"),
                seconds.ceil() as u64,
            ))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).context("creating the bot's log")?)
            .spawn()
            .context("starting the bot")?,
    );
    let pid = bot.0.id();
    if !args.json {
        println!(
            "soak: {} replay days at {}x; bot pid {pid}, log {}",
            args.days,
            args.speed,
            log.display()
        );
        println!(
            "{:>8} {:>26} {:>10} {:>6}",
            "wall s", "replay time", "RSS MiB", "drops"
        );
    }
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut drops = 0u64;
    let mut next_sample = started + Duration::from_secs(args.every);
    let mut next_drop = started + Duration::from_secs(args.drop_every.max(1));
    let mut peak = None;
    while bot.0.try_wait().context("watching the bot")?.is_none() {
        let now = Instant::now();
        if args.drop_every > 0 && now >= next_drop {
            // A drop that fails is reported and the soak goes on: it
            // measures the bot, not the admin API.
            match rt.block_on(admin_post(&http, &admin, "/websockets/drop")) {
                Ok(()) => drops += 1,
                Err(e) => eprintln!("soak: dropping the websockets failed: {e:#}"),
            }
            next_drop = now + Duration::from_secs(args.drop_every);
        }
        if now >= next_sample {
            if let Some((rss, hwm)) = crate::bench::memory_kib(&pid.to_string()) {
                peak = Some(hwm);
                let replay_time = rt
                    .block_on(admin_get(&http, &admin))
                    .ok()
                    .and_then(|v| v["replay_time"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let s = Sample {
                    wall_s: started.elapsed().as_secs_f64(),
                    replay_time,
                    rss_kib: rss,
                    websocket_drops: drops,
                };
                print_sample(&s, args.json)?;
                samples.push(s);
            }
            next_sample = now + Duration::from_secs(args.every);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = bot.0.wait().context("waiting for the bot")?;
    let mut summary = String::new();
    if let Some(mut out) = bot.0.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut summary).context("reading the summary")?;
    }
    if !status.success() {
        bail!(
            "the bot failed ({status}); its log: {}",
            tail(&log).unwrap_or_default()
        );
    }
    let bot_summary = serde_json::from_str(summary.trim()).unwrap_or(serde_json::Value::Null);
    let v = verdict(&samples, args, peak, bot_summary)?;
    if args.json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "RSS {:.1} MiB (second quarter) -> {:.1} MiB (last quarter): {:+.1}%, peak {} over {} samples; {}",
            v.rss_early_kib as f64 / 1024.0,
            v.rss_late_kib as f64 / 1024.0,
            v.growth_pct,
            v.peak_rss_kib
                .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "n/a".into()),
            v.samples,
            if v.flat { "flat" } else { "GROWING" }
        );
        println!("bot summary: {}", v.bot_summary);
    }
    if !v.flat {
        bail!(
            "memory grew {:.1}% (more than --max-growth {})",
            v.growth_pct,
            args.max_growth
        );
    }
    Ok(())
}

/// The bot the soak runs, and `tests/bot_faults.rs` puts through a bad
/// day: `ibflow run` against `gateway`, mean_reversion on the sample's
/// AAPL and IBM daily bars (market entries bracketed by GTC take-profit
/// and stop-loss exits, so orders work at the venue for days), every
/// order and execution in the store `db`, the prompts those orders meet
/// (`o163`, `o10331`) confirmed, trading hours off (a fast replay's
/// ticks land at every time of day), stopping after `duration_s`.
pub fn bot_args(gateway: &str, db: &Path, duration_s: u64) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec!["--db".into(), db.into()];
    a.extend(
        [
            "run",
            "--gateway",
            gateway,
            "--store",
            "--strategy",
            "mean_reversion",
            "--conid",
            "265598",
            "--conid",
            "8314",
            "--bar-seconds",
            "86400",
            "--trading-hours",
            "false",
            "--param",
            "period=5",
            "--param",
            "k=1",
            "--confirm",
            "o163",
            "--confirm",
            "o10331",
            "--duration",
            &duration_s.to_string(),
            "--json",
        ]
        .map(std::ffi::OsString::from),
    );
    a
}

fn print_sample(s: &Sample, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        println!(
            "{:>8.0} {:>26} {:>10.1} {:>6}",
            s.wall_s,
            s.replay_time,
            s.rss_kib as f64 / 1024.0,
            s.websocket_drops
        );
    }
    Ok(())
}

fn verdict(
    samples: &[Sample],
    args: &SoakArgs,
    peak: Option<u64>,
    bot_summary: serde_json::Value,
) -> Result<Verdict> {
    if samples.len() < 4 {
        bail!(
            "only {} memory samples: run longer (--days) or sample more often (--every)",
            samples.len()
        );
    }
    let q = samples.len() / 4;
    let median = |part: &[Sample]| {
        let mut v: Vec<u64> = part.iter().map(|s| s.rss_kib).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let early = median(&samples[q..2 * q]);
    let late = median(&samples[samples.len() - q..]);
    let growth_pct = (late as f64 - early as f64) / (early.max(1) as f64) * 100.0;
    Ok(Verdict {
        samples: samples.len(),
        replay_days: args.days,
        rss_early_kib: early,
        rss_late_kib: late,
        growth_pct,
        peak_rss_kib: peak,
        flat: growth_pct <= args.max_growth,
        bot_summary,
    })
}

/// The last lines of the bot's log, for an error.
fn tail(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    Some(lines[lines.len().saturating_sub(20)..].join("\n"))
}

async fn admin_get(http: &reqwest::Client, admin: &str) -> Result<serde_json::Value> {
    let r = http.get(admin).send().await?.error_for_status()?;
    Ok(r.json().await?)
}

async fn admin_post(http: &reqwest::Client, admin: &str, path: &str) -> Result<()> {
    http.post(format!("{admin}{path}"))
        .send()
        .await
        .with_context(|| format!("POST /sim/admin{path}"))?
        .error_for_status()
        .with_context(|| format!("POST /sim/admin{path}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss: u64) -> Sample {
        Sample {
            wall_s: 0.0,
            replay_time: String::new(),
            rss_kib: rss,
            websocket_drops: 0,
        }
    }

    fn args() -> SoakArgs {
        SoakArgs {
            days: 1,
            speed: 1.0,
            every: 1,
            drop_every: 0,
            max_growth: 20.0,
            json: false,
        }
    }

    #[test]
    fn start_up_growth_is_not_counted_and_late_growth_is() {
        // A first quarter of start-up, then flat.
        let flat: Vec<Sample> = [10, 50, 100, 100, 101, 100, 102, 101]
            .into_iter()
            .map(sample)
            .collect();
        let v = verdict(&flat, &args(), None, serde_json::Value::Null).unwrap();
        assert!(v.flat, "{v:?}");
        assert_eq!(v.rss_early_kib, 100);
        // A leak: the last quarter is half again the second.
        let leak: Vec<Sample> = [10, 50, 100, 100, 120, 130, 150, 160]
            .into_iter()
            .map(sample)
            .collect();
        let v = verdict(&leak, &args(), None, serde_json::Value::Null).unwrap();
        assert!(!v.flat && v.growth_pct > 45.0, "{v:?}");
        assert!(verdict(&leak[..3], &args(), None, serde_json::Value::Null).is_err());
    }
}
