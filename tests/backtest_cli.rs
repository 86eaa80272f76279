//! End-to-end tests of the `ibflow` binary: the README's backtest command,
//! the peer cross-check golden file, determinism, sweeps, config files and
//! error handling.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::Path;
use std::process::{Command, Output};

fn ibflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(args)
        .output()
        .expect("run ibflow")
}

fn ok(args: &[&str]) -> String {
    let out = ibflow(args);
    assert!(
        out.status.success(),
        "ibflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (conid, entry_time, exit_time, entry_price, exit_price) rows.
fn trade_keys(trades_csv: &str) -> Vec<(String, String, String, String, String)> {
    let mut lines = trades_csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (c, et, xt, ep, xp) = (
        col("conid"),
        col("entry_time"),
        col("exit_time"),
        col("entry_price"),
        col("exit_price"),
    );
    let mut rows: Vec<_> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[c].to_owned(),
                f[et].to_owned(),
                f[xt].to_owned(),
                f[ep].to_owned(),
                f[xp].to_owned(),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.2, &a.1, &a.0).cmp(&(&b.2, &b.1, &b.0)));
    rows
}

#[test]
fn default_backtest_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = ok(&["backtest", "--out", out.to_str().unwrap()]);
    assert!(stdout.contains("sma_cross"), "{stdout}");
    assert!(stdout.contains("Sharpe"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    for key in [
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "trades",
        "win_rate",
        "profit_factor",
        "final_equity",
        "bars",
        "elapsed_ms",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["bars"], 2566);
    assert_eq!(summary["strategy"], "sma_cross");
    let trades = read(&out.join("trades.csv"));
    assert!(trades.starts_with(
        "entry_time,exit_time,conid,side,qty,entry_price,exit_price,pnl,commission\n"
    ));
    assert_eq!(summary["trades"], trades.lines().count() as u64 - 1);
    assert!(read(&out.join("equity.csv")).starts_with("time,equity"));
    let png = std::fs::read(out.join("equity.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let html = read(&out.join("report.html"));
    assert!(html.contains("data:image/png;base64,"));
    assert!(!html.contains("http://") && !html.contains("https://"));
}

/// The golden file holds backtrader's trades for sma_cross(10, 30, 100) on
/// the bundled sample (docs/crosscheck/sma_cross_peers.py writes it;
/// backtesting.py agrees). ibflow must produce the same trades: same bars
/// entered and left, same prices.
#[test]
fn sma_cross_matches_backtrader_on_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    ok(&[
        "backtest",
        "--strategy",
        "sma_cross",
        "--param",
        "fast=10",
        "--param",
        "slow=30",
        "--param",
        "size=100",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ours = trade_keys(&read(&out.join("trades.csv")));
    let golden_text =
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sma_cross_backtrader.csv"));
    let mut golden: Vec<_> = golden_text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f[2].to_owned(),
                f[3].to_owned(),
                f[4].to_owned(),
            )
        })
        .collect();
    golden.sort_by(|a, b| (&a.2, &a.1, &a.0).cmp(&(&b.2, &b.1, &b.0)));
    assert_eq!(golden.len(), 45);
    // Prices compare as numbers: "177.8" and "177.80" are the same fill.
    let norm = |v: &[(String, String, String, String, String)]| -> Vec<(String, String, String, f64, f64)> {
        v.iter()
            .map(|(c, e, x, ep, xp)| (c.clone(), e.clone(), x.clone(), ep.parse().unwrap(), xp.parse().unwrap()))
            .collect()
    };
    assert_eq!(norm(&ours), norm(&golden));
}

#[test]
fn same_inputs_give_byte_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for out in [&a, &b] {
        ok(&[
            "backtest",
            "--strategy",
            "breakout_oca",
            "--commission",
            "ibkr-fixed",
            "--slippage-ticks",
            "1",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    for f in ["trades.csv", "equity.csv", "equity.png"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let strip = |p: &Path, pat: &str| -> String {
        read(p)
            .lines()
            .filter(|l| !l.contains(pat))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&a.join("summary.json"), "elapsed_ms"),
        strip(&b.join("summary.json"), "elapsed_ms")
    );
    let html_a = strip(&a.join("report.html"), "Elapsed");
    assert_eq!(html_a, strip(&b.join("report.html"), "Elapsed"));
    let summary: serde_json::Value = serde_json::from_str(&read(&a.join("summary.json"))).unwrap();
    assert!(
        summary["trades"].as_u64().unwrap() > 0,
        "breakout_oca should trade on the sample"
    );
    assert_ne!(summary["total_commission"], "0");
}

#[test]
fn sweep_ranks_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    ok(&[
        "backtest",
        "--sweep",
        "fast=5:15:5",
        "--sweep",
        "slow=20:40:10",
        "--rank-by",
        "total_return",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = read(&out.join("sweep.csv"));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("rank,fast,slow,total_return"));
    assert_eq!(rows.len(), 1 + 9);
    let returns: Vec<f64> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(returns.windows(2).all(|w| w[0] >= w[1]), "{returns:?}");
    // The (10, 30) row matches the single run of the same parameters.
    let single = dir.path().join("single");
    ok(&["backtest", "--quiet", "--out", single.to_str().unwrap()]);
    let summary: serde_json::Value =
        serde_json::from_str(&read(&single.join("summary.json"))).unwrap();
    let row = rows
        .iter()
        .find(|r| r.split(',').nth(1) == Some("10") && r.split(',').nth(2) == Some("30"))
        .unwrap();
    let tr: f64 = row.split(',').nth(3).unwrap().parse().unwrap();
    assert_eq!(tr, summary["total_return"].as_f64().unwrap());
}

#[test]
fn config_file_and_csv_data() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("42.csv");
    let mut body = String::from("time,open,high,low,close,volume\n");
    // A rise, a fall, a rise: fast=2/slow=3 crosses up, down, up.
    let closes = [10, 9, 8, 7, 8, 9, 10, 11, 10, 9, 8, 7, 8, 9, 10, 11, 12];
    for (i, c) in closes.iter().enumerate() {
        body.push_str(&format!(
            "2024-01-{:02},{c},{},{},{c},100\n",
            i + 1,
            c + 1,
            c - 1
        ));
    }
    std::fs::write(&csv, body).unwrap();
    let cfg = dir.path().join("bt.toml");
    std::fs::write(
        &cfg,
        "[backtest]\ndata = [\"42.csv\"]\nstrategy = \"sma_cross\"\ncash = \"5000\"\nout = \"out\"\n\n[backtest.params]\nfast = 2\nslow = 3\nsize = 10\n",
    )
    .unwrap();
    ok(&[
        "backtest",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--quiet",
    ]);
    let trades = read(&dir.path().join("out/trades.csv"));
    let rows: Vec<&str> = trades.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{trades}");
    assert!(rows[0].contains(",42,long,10,"), "{trades}");
    let summary: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("out/summary.json"))).unwrap();
    assert_eq!(summary["initial_cash"], "5000");
    assert_eq!(summary["open_trades"], 1);
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["backtest", "--strategy", "nope", "--out", o],
            "unknown strategy",
        ),
        (&["backtest", "--param", "fast=ten", "--out", o], "fast"),
        (&["backtest", "--param", "fast=50", "--out", o], "fast"),
        (
            &["backtest", "--commission", "flat", "--out", o],
            "commission",
        ),
        (
            &["backtest", "--sweep", "fast=1:2", "--out", o],
            "start:end:step",
        ),
        (
            &["backtest", "--data", "/nonexistent/x.json", "--out", o],
            "/nonexistent/x.json",
        ),
    ];
    for (args, needle) in cases {
        let r = ibflow(args);
        assert!(!r.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let html = dir.path().join("265598.json");
    std::fs::write(
        &html,
        "<html><body><h1>Resource not found</h1></body></html>",
    )
    .unwrap();
    let r = ibflow(&["backtest", "--data", html.to_str().unwrap(), "--out", o]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("HTML"));
}

#[test]
fn strategies_are_listed() {
    let s = ok(&["strategies"]);
    for name in ["sma_cross", "breakout_oca", "mean_reversion"] {
        assert!(s.contains(name), "{s}");
    }
}

#[test]
fn example_configs_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cfg");
    ok(&[
        "backtest",
        "--config",
        root.join("config/backtest.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let summary: serde_json::Value =
        serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["commission_model"], "ibkr-fixed:0.005/1/0.01");
    assert_ne!(summary["total_commission"], "0");
    assert_eq!(summary["bars"], 2566);
    let sweep_out = dir.path().join("sweep");
    // The full example grid is 6 x 9; narrow it to keep the test quick.
    ok(&[
        "backtest",
        "--config",
        root.join("config/sweep.toml").to_str().unwrap(),
        "--sweep",
        "fast=5:10:5",
        "--sweep",
        "slow=20:30:10",
        "--out",
        sweep_out.to_str().unwrap(),
        "--quiet",
    ]);
    let text = read(&sweep_out.join("sweep.csv"));
    assert_eq!(text.lines().count(), 1 + 4, "{text}");
}

/// A window length from a flag is bounded before anything is allocated: a
/// typo of `1e11` bars used to allocate terabytes and abort (exit 134).
/// Now it is a clear error, exit 1, naming the parameter.
#[test]
fn absurd_indicator_periods_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (strategy, param) in [
        ("sma_cross", "slow"),
        ("breakout_oca", "lookback"),
        ("mean_reversion", "period"),
    ] {
        let set = format!("{param}=100000000000");
        let o = ibflow(&[
            "backtest",
            "--strategy",
            strategy,
            "--param",
            &set,
            "--out",
            out,
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{strategy} {set}: {stderr}");
        assert!(
            stderr.contains(&format!("{param}: indicator period must be 1 to 2000000")),
            "{strategy} {set}: {stderr}"
        );
    }
}

/// Starting cash is bounded: `Decimal::MAX` as `--cash` used to overflow
/// the accounting at the first fill and panic (exit 101).
#[test]
fn absurd_cash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for cash in [
        "79228162514264337593543950335",
        "1000000000000000.01",
        "0",
        "-5",
    ] {
        let flag = format!("--cash={cash}");
        let o = ibflow(&[
            "backtest",
            "--strategy",
            "sma_cross",
            &flag,
            "--out",
            out,
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "--cash {cash}: {stderr}");
        assert!(
            stderr.contains("cash must be positive and at most 1000000000000000"),
            "--cash {cash}: {stderr}"
        );
    }
    ok(&[
        "backtest",
        "--strategy",
        "sma_cross",
        "--cash",
        "1000000000000000",
        "--out",
        out,
        "--quiet",
    ]);
}

/// Daily bars of a random walk around `level`, each consistent, as CSV for
/// conid 1 (`time,open,high,low,close,volume`).
fn walk_csv(level: f64, bars: usize) -> String {
    let mut csv = String::from("time,open,high,low,close,volume\n");
    let mut p = level;
    // A fixed, dependency-free sequence: 0.8 to 1.2 of the level.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for day in 0..bars {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let step = (x % 2001) as f64 / 1000.0 - 1.0; // -1 .. 1
        p = (p * (1.0 + step * 0.03)).clamp(level * 0.8, level * 1.2);
        let (o, c) = (p, p * (1.0 + step * 0.01));
        let (h, l) = (o.max(c) * 1.005, o.min(c) * 0.995);
        let t = 1_577_890_800 + day as i64 * 86_400; // 2020-01-01 15:00 UTC on
        csv.push_str(&format!("{t},{o:.4},{h:.4},{l:.4},{c:.4},1000\n"));
    }
    csv
}

/// Prices up to the documented bound (1e12) backtest with every strategy,
/// at sizes up to the quantity bound (1e10): the accounting, the indicators
/// and the simulated exchange stay in range. At about 1e13 `mean_reversion`
/// used to panic (exit 101), `sma_cross` at 1e26, `breakout_oca` at 1e27.
#[test]
fn prices_and_sizes_at_the_bounds_run_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("1.csv");
    std::fs::write(&data, walk_csv(8.0e11, 300)).unwrap();
    let out = dir.path().join("out");
    for strategy in ["sma_cross", "mean_reversion", "breakout_oca"] {
        for size in ["100", "10000000000"] {
            let set = format!("size={size}");
            let o = ibflow(&[
                "backtest",
                "--data",
                data.to_str().unwrap(),
                "--strategy",
                strategy,
                "--param",
                &set,
                "--cash",
                "1000000000000000",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ]);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{strategy} {set}: {stderr}");
            let summary = read(&out.join("summary.json"));
            let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
            assert!(
                v["trades"].as_u64().unwrap_or(0) > 0,
                "{strategy} {set} traded nothing: {summary}"
            );
        }
    }
}

/// Bars beyond the price bound, at zero or below, before 1970 or in the
/// next century are refused with the file, the line and the field; `sma_cross`
/// used to buy at -50. A size beyond the quantity bound is refused by name
/// (`--param size=1e27` used to panic in the simulated exchange).
#[test]
fn absurd_prices_times_and_sizes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let good = "1577890800,100,101,99,100.5,1000\n";
    for (row, expect) in [
        (
            "1577977200,1e13,1e13,1e13,1e13,1",
            "open 10000000000000 is beyond the limit of 1000000000000",
        ),
        (
            "1577977200,-50,-49,-51,-50,1",
            "open must be positive, got -50",
        ),
        ("1577977200,0,0,0,0,1", "open must be positive, got 0"),
        (
            "1577977200,1,1,1,1,1e20",
            "volume 100000000000000000000 is beyond",
        ),
        (
            "1969-12-31T23:59:55Z,1,1,1,1,1",
            "time 1969-12-31 23:59:55 UTC is outside 1970-01-01 to 2099-12-31",
        ),
        (
            "4102444800000,1,1,1,1,1",
            "is outside 1970-01-01 to 2099-12-31",
        ),
    ] {
        let data = dir.path().join("1.csv");
        std::fs::write(
            &data,
            format!("time,open,high,low,close,volume\n{good}{row}\n"),
        )
        .unwrap();
        let o = ibflow(&[
            "backtest",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{row}: {stderr}");
        assert!(stderr.contains("1.csv:3: "), "{row}: {stderr}");
        assert!(stderr.contains(expect), "{row}: {stderr}");
    }
    // A saved history response with `t: -5` (milliseconds) was read as 1969.
    let json = dir.path().join("1.json");
    std::fs::write(
        &json,
        r#"{"data":[{"t":1577890800000,"o":1,"h":1,"l":1,"c":1,"v":1},{"t":-5,"o":1,"h":1,"l":1,"c":1,"v":1}]}"#,
    )
    .unwrap();
    let o = ibflow(&[
        "backtest",
        "--data",
        json.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bar 1: time 1969-12-31 23:59:55 UTC is outside"),
        "{stderr}"
    );
    for strategy in ["sma_cross", "mean_reversion", "breakout_oca"] {
        let o = ibflow(&[
            "backtest",
            "--strategy",
            strategy,
            "--param",
            "size=1e27",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{strategy}: {stderr}");
        assert!(
            stderr.contains("size 1000000000000000000000000000 is beyond the limit of 10000000000"),
            "{strategy}: {stderr}"
        );
    }
}

/// A sweep in which every point fails has no result: exit 1 naming the
/// first failure (it used to exit 0 with an empty ranking). The errors are
/// still in sweep.csv.
#[test]
fn a_sweep_where_every_point_fails_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = ibflow(&[
        "backtest",
        "--sweep",
        "fast=30:40:5",
        "--param",
        "slow=30",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("every one of the 3 sweep points failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fast (30) must be shorter than slow (30)"),
        "{stderr}"
    );
    let csv = read(&out.join("sweep.csv"));
    assert_eq!(csv.matches("must be shorter").count(), 3, "{csv}");
}
