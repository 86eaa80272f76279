//! `ibflow run` end to end: the real binary starts the built-in simulator,
//! connects the client and websocket to it over 127.0.0.1, builds bars from
//! the quotes, and sma_cross trades on them.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::process::Command;

#[path = "support/bin.rs"]
mod bin;

/// `ibflow executions --json` of the database `db`.
fn stored_executions(db: &std::path::Path) -> serde_json::Value {
    bin::db_json(db, &["executions"])
}

#[test]
fn run_on_the_builtin_simulator_trades() {
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args([
            "run",
            "--speed",
            "864000",
            "--duration",
            "6",
            "--bar-seconds",
            "86400",
            "--param",
            "fast=2",
            "--param",
            "slow=3",
            "--param",
            "size=10",
            "--json",
        ])
        .output()
        .expect("run ibflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    let stats = &v["stats"];
    let bars = stats["bars"].as_u64().unwrap();
    // Ten replay days a second for six seconds: weeks of daily bars.
    assert!(bars >= 10, "{v}");
    assert!(stats["quotes"].as_u64().unwrap() >= bars, "{v}");
    // A 2/3 crossover over that many random-walk bars trades.
    assert!(stats["executions"].as_u64().unwrap() >= 1, "{v}");
    assert!(stats["order_updates"].as_u64().unwrap() >= 1, "{v}");
    // Working orders are cancelled and trading halted on the way out.
    assert_eq!(v["trading_state"], "Halted");
}

/// SIGUSR1 is the kill switch of a running bot: it halts trading (orders
/// placed afterwards are refused) while the process keeps running.
#[cfg(unix)]
#[test]
fn sigusr1_halts_a_running_bot() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args([
            "run",
            "--speed",
            "864000",
            "--duration",
            "6",
            "--bar-seconds",
            "86400",
            "--param",
            "fast=2",
            "--param",
            "slow=3",
            "--param",
            "size=10",
            "--keep-orders",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ibflow");
    // Signal only once the bot says it is running (the handler is in place).
    let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut err, &mut line).expect("read stderr");
        assert!(n > 0, "ibflow ended before it was running: {seen}");
        seen.push_str(&line);
        if line.contains("kill switch: kill -USR1") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .expect("kill -USR1");
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("read stderr");
    let out = child.wait_with_output().expect("ibflow exits");
    let stderr = seen + &rest;
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("kill switch (SIGUSR1)"), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON summary");
    // --keep-orders: only the signal can have halted it.
    assert_eq!(v["trading_state"], "Halted", "{v}");
}

/// The database path comes from `[store] db` of the config file when
/// neither `--db` nor `IBFLOW_DB` gives one; `--store` persists there.
#[test]
fn run_store_path_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("live.toml");
    std::fs::write(&cfg, "[store]\ndb = \"from-config.db\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .env_remove("IBFLOW_DB")
        .args([
            "run",
            "--store",
            "--config",
            cfg.to_str().unwrap(),
            "--speed",
            "864000",
            "--duration",
            "2",
            "--bar-seconds",
            "86400",
            "--json",
        ])
        .output()
        .expect("run ibflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("reconciled with the broker, 0 discrepancies"),
        "{stderr}"
    );
    assert!(dir.path().join("from-config.db").exists(), "{stderr}");
}

/// ForecastEx live on the built-in simulator: `ibflow run` learns from
/// `/trsrv/secdef` that the conid is an event contract and from
/// `/trsrv/event/contracts` its strike's NO side; `forecast_band` buys YES
/// and exits by buying NO; the venue nets the two (B, B, N, N), the store
/// keeps the reports in that order and nets the strike.
#[test]
fn run_forecastex_round_trip_nets_flat() {
    let yes = "762089343";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fx.db");
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(&db)
        .args([
            "run",
            "--store",
            "--strategy",
            "forecast_band",
            "--conid",
            yes,
            "--param",
        ])
        .arg(format!("conid={yes}"))
        .args([
            // Enter at once and stop out on the next close: round trips
            // whatever the replay reached while the run started.
            "--param",
            "buy_below=0.97",
            "--param",
            "take_profit=0.98",
            "--param",
            "stop_below=0.96",
            "--param",
            "size=10",
            "--confirm",
            "o163",
            "--speed",
            "864000",
            "--duration",
            "12",
            "--bar-seconds",
            "86400",
            "--json",
        ])
        .output()
        .expect("run ibflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ForecastEx: 2 strike(s)"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    // At least one round trip: B YES, B NO, N YES, N NO.
    let execs = v["stats"]["executions"].as_u64().unwrap();
    assert!(execs >= 4, "{v}\n{stderr}");
    // Every round trip is netted away: nothing is held at the end unless an
    // entry filled in the last moments (then only YES, never NO).
    let positions = v["positions"].as_array().unwrap();
    assert!(
        positions
            .iter()
            .all(|p| p["conid"] == serde_json::json!(762089343)),
        "{v}"
    );

    // The store kept every report in the venue's order: B YES, then for the
    // exit B NO, N YES, N NO.
    let stored = stored_executions(&db);
    let sides: Vec<(String, i64)> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["side"].as_str().unwrap_or_default().to_owned(),
                e["conid"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let want = [
        ("B".to_owned(), 762089343),
        ("B".to_owned(), 762089344),
        ("N".to_owned(), 762089343),
        ("N".to_owned(), 762089344),
    ];
    assert_eq!(sides[..4], want, "{stored}");
    // positions --local nets the strike with the stored contracts.
    let pos = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(&db)
        .args(["positions", "--local"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&pos.stdout);
    assert!(
        pos.status.success(),
        "{}",
        String::from_utf8_lossy(&pos.stderr)
    );
    assert!(text.contains("Democratic"), "{text}");
}

/// A bot from a config file: `config/sim.toml` runs sma_cross on the
/// sample stocks and forecast_band on a ForecastEx strike in one engine;
/// both trade, each only on its own contracts.
#[test]
fn run_from_config_runs_every_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sim.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(&db)
        .args(["run", "--config", config, "--store"])
        .args(["--speed", "864000", "--duration", "10", "--json"])
        .output()
        .expect("run ibflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("running sma_cross, forecast_band live"),
        "{stderr}"
    );
    let stored = stored_executions(&db);
    let conids: std::collections::BTreeSet<i64> = stored
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["conid"].as_i64())
        .collect();
    assert!(
        conids.contains(&265598) || conids.contains(&8314),
        "sma_cross traded a stock: {conids:?}\n{stderr}"
    );
    assert!(
        conids.contains(&762089343),
        "forecast_band traded: {conids:?}"
    );
    // Nothing else: each strategy saw only its own contracts' bars.
    assert!(
        conids.is_subset(&[265598, 8314, 762089343, 762089344].into()),
        "{conids:?}"
    );
}

/// Per-strategy risk from `[[run.strategies]]`: the stock strategy's orders
/// exceed its own quantity limit and are refused; the other strategy is not
/// held back. A misnamed strategy is an error that names the entry.
#[test]
fn run_config_risk_is_per_strategy_and_errors_name_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        r#"
[run]
confirm = ["o163"]
[[run.strategies]]
name = "sma_cross"
conids = [265598]
params = { fast = 2, slow = 3, size = 100 }
risk = { max_order_quantity = "50" }
[[run.strategies]]
name = "forecast_band"
conids = [762089343]
params = { buy_below = "0.97", take_profit = "0.98", stop_below = "0.96" }
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--speed", "864000", "--bar-seconds", "86400"])
        .args(["--duration", "8", "--json"])
        .output()
        .expect("run ibflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(v["stats"]["rejected"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["stats"]["executions"].as_u64().unwrap() >= 4, "{v}");

    std::fs::write(&cfg, "[[run.strategies]]\nname = \"sma_crosss\"\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("entry 0") && err.contains("sma_crosss"),
        "{err}"
    );
}

/// A bot started against a simulator this test runs (`--gateway`), its
/// stderr collected line by line as it comes.
#[cfg(unix)]
mod against_a_simulator {
    use std::io::BufRead;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use gateway_sim::{Gateway, GatewayConfig, GatewayHandle};

    pub(crate) struct Bot {
        pub(crate) child: Child,
        pub(crate) stderr: Arc<Mutex<String>>,
        pub(crate) started: Instant,
    }

    /// The simulator replaying the sample at ten days a second, every
    /// `/iserver/account/...` request (order entry, order list, trades)
    /// answered `429`: the bot's first order puts its client in the
    /// 15-minute penalty box, the next one waits there.
    pub(crate) async fn penalty_box_gateway() -> GatewayHandle {
        let g = Gateway::start(GatewayConfig {
            speed: 864_000.0,
            ..GatewayConfig::default()
        })
        .await
        .unwrap();
        g.fail_path_with("/iserver/account/", 429, "Too many requests");
        g
    }

    /// `ibflow run --gateway URL` trading sma_cross on AAPL daily bars,
    /// with `extra` flags.
    pub(crate) fn start_bot(g: &GatewayHandle, extra: &[&str]) -> Bot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ibflow"))
            .args(["run", "--gateway", &g.base_url(), "--conid", "265598"])
            .args(["--trading-hours", "false", "--bar-seconds", "86400"])
            .args([
                "--param", "fast=2", "--param", "slow=3", "--param", "size=10",
            ])
            .args(["--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ibflow");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Bot {
            child,
            stderr,
            started: Instant::now(),
        }
    }

    /// A bot a failed assertion left running does not outlive the test.
    impl Drop for Bot {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    impl Bot {
        pub(crate) fn stderr(&self) -> String {
            self.stderr.lock().unwrap().clone()
        }

        /// Wait until stderr holds `needle`; false after `within`.
        pub(crate) async fn saw(&self, needle: &str, within: Duration) -> bool {
            let t0 = Instant::now();
            while t0.elapsed() < within {
                if self.stderr().contains(needle) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }

        /// Wait until the bot is waiting out the penalty box with a request.
        pub(crate) async fn wedged(&self) {
            assert!(
                self.saw("waiting out the 429 penalty box", Duration::from_secs(60))
                    .await,
                "the bot never reached the penalty box: {}",
                self.stderr()
            );
        }

        pub(crate) fn signal(&self, sig: &str) {
            let ok = Command::new("kill")
                .args([sig, &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }

        /// The exit status within `within`, or the bot is killed and the
        /// test fails.
        pub(crate) async fn exits_within(&mut self, within: Duration) -> (ExitStatus, String) {
            let t0 = Instant::now();
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    let mut out = String::new();
                    if let Some(mut o) = self.child.stdout.take() {
                        std::io::Read::read_to_string(&mut o, &mut out).unwrap();
                    }
                    // Let the reader thread take the last lines.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return (status, out);
                }
                if t0.elapsed() > within {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "ibflow still running {within:?} after being told to stop: {}",
                        self.stderr()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// What every stop in the penalty box ends with: exit 1 with a message
    /// naming the penalty box, no panic.
    pub(crate) fn stopped_in_the_penalty_box(status: ExitStatus, stderr: &str) {
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("stopped in the gateway's 429 penalty box"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Ctrl-C ends a bot whose requests wait out the 429 penalty box (it used
/// to wait the 15 minutes; only SIGTERM ended it).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_ends_a_bot_in_the_penalty_box() {
    use against_a_simulator::*;
    let g = penalty_box_gateway().await;
    let mut bot = start_bot(&g, &[]);
    bot.wedged().await;
    bot.signal("-INT");
    let (status, _) = bot.exits_within(std::time::Duration::from_secs(20)).await;
    stopped_in_the_penalty_box(status, &bot.stderr());
    assert!(bot.stderr().contains("SIGINT: stopping"));
    g.shutdown().await;
}

/// `--duration` ends a bot in the penalty box on time.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_ends_a_bot_in_the_penalty_box() {
    use against_a_simulator::*;
    let g = penalty_box_gateway().await;
    let mut bot = start_bot(&g, &["--duration", "6"]);
    bot.wedged().await;
    let (status, _) = bot.exits_within(std::time::Duration::from_secs(40)).await;
    let took = bot.started.elapsed();
    stopped_in_the_penalty_box(status, &bot.stderr());
    assert!(took >= std::time::Duration::from_secs(6), "{took:?}");
    g.shutdown().await;
}

/// The kill switch acts at once in the penalty box: order entry is refused
/// at the transport the moment SIGUSR1 arrives, the engine halts (its kill
/// line is logged within seconds, not after the penalty), and the run
/// still ends at `--duration`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_acts_in_the_penalty_box() {
    use against_a_simulator::*;
    let g = penalty_box_gateway().await;
    let mut bot = start_bot(&g, &["--duration", "25"]);
    bot.wedged().await;
    bot.signal("-USR1");
    assert!(
        bot.saw(
            "kill switch: cancelling every working order",
            std::time::Duration::from_secs(10)
        )
        .await,
        "the engine did not act on the kill switch: {}",
        bot.stderr()
    );
    let (status, out) = bot.exits_within(std::time::Duration::from_secs(60)).await;
    let stderr = bot.stderr();
    stopped_in_the_penalty_box(status, &stderr);
    assert!(stderr.contains("kill switch (SIGUSR1)"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON summary");
    assert_eq!(v["trading_state"], "Halted", "{v}");
    g.shutdown().await;
}

/// `/logout` under a running bot: the websocket gives up after a few
/// attempts that find the session gone, trading halts, and the bot exits
/// non-zero saying the session ended (it used to reconnect forever).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_a_running_bot() {
    use against_a_simulator::*;
    let g = gateway_sim::Gateway::start(gateway_sim::GatewayConfig {
        speed: 864_000.0,
        ..gateway_sim::GatewayConfig::default()
    })
    .await
    .unwrap();
    let mut bot = start_bot(&g, &[]);
    assert!(
        bot.saw(
            "kill switch: kill -USR1",
            std::time::Duration::from_secs(60)
        )
        .await,
        "{}",
        bot.stderr()
    );
    let client = ibkr::IbkrClient::new(ibkr::ClientConfig::for_simulator(g.base_url())).unwrap();
    assert!(client.logout().await.unwrap().status);
    let (status, _) = bot.exits_within(std::time::Duration::from_secs(60)).await;
    let stderr = bot.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the gateway session ended"), "{stderr}");
    assert!(stderr.contains("logged out"), "{stderr}");
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    g.shutdown().await;
}
