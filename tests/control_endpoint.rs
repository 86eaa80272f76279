//! The control endpoint end to end (issue 13): the real binary runs a bot
//! (`ibflow run --control 127.0.0.1:PORT`) on the built-in simulator or a
//! separate `ibflow sim-gateway`, and the tests speak to it over real
//! sockets: `/health`, `/metrics`, `/status`, `POST /kill` with and without
//! the token, `ibflow status` and `ibflow kill`, and gateway queries of the
//! CLI served through the bot's paced client without a 429.
//!
//! Everything polls with generous deadlines: the machine may be loaded.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

#[path = "support/bin.rs"]
mod bin;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use bin::{free_port, http_support, ibflow};

const AAPL: &str = "265598";
const TOKEN: &str = "s3cret-T0ken-for-tests";

/// One HTTP/1.1 request over a new connection: status, headers (lower
/// case) and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let a = http_support::request(port, method, path, &headers, body, Duration::from_secs(90))?;
    Ok((a.status, a.head, a.body))
}

fn get_json(port: u16, path: &str, token: Option<&str>) -> (u16, Value) {
    let (s, _, b) = http(port, "GET", path, token, None).unwrap();
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

/// A running `ibflow run` (or `sim-gateway`); its output goes to files so
/// a full pipe never blocks it. Killed on drop.
struct Proc {
    child: Child,
    dir: tempfile::TempDir,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn ibflow");
        Proc { child, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Ctrl-C, and wait (up to two minutes) for the exit: its status,
    /// stdout and stderr.
    fn interrupt(mut self) -> (bool, String, String) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "ibflow did not stop on SIGINT: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let out = std::fs::read_to_string(self.path("stdout")).unwrap_or_default();
        (status.success(), out, self.stderr())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `make(port)` for a free port until its control endpoint answers
/// (anything, a 401 included) or it exits for another reason than the
/// port being taken meanwhile; the process and the port.
fn spawn_on_free_port(make: impl Fn(u16) -> Command) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut p = Proc::spawn(make(port));
        let up = bin::wait_for(Duration::from_secs(120), || {
            if let Ok(Some(_)) = p.child.try_wait() {
                return Some(!p.stderr().contains("binding the control endpoint"));
            }
            http(port, "GET", "/health", None, None).ok().map(|_| true)
        });
        if up != Some(false) {
            return (p, port);
        }
    }
    panic!("no free port for the control endpoint");
}

/// `ibflow run` on the built-in simulator with the control endpoint on a
/// free port, trading sma_cross fast on daily bars, keeping orders on exit
/// (so only a kill switch halts it); the process and the port.
fn start_bot(token: Option<&str>) -> (Proc, u16) {
    spawn_on_free_port(|port| bot_command(port, token))
}

fn bot_command(port: u16, token: Option<&str>) -> Command {
    let mut cmd = ibflow();
    cmd.args([
        "run",
        "--speed",
        "864000",
        "--duration",
        "600",
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
        "--control",
        &format!("127.0.0.1:{port}"),
    ]);
    if let Some(t) = token {
        cmd.env("IBFLOW_CONTROL_TOKEN", t);
    }
    cmd
}

/// Wait until the bot's `/health` says ok; every answer before must be a
/// 503 with a reason (`connecting` while it starts).
fn wait_healthy(bot: &Proc, port: u16, token: Option<&str>) {
    let mut reasons = Vec::new();
    let ok = bin::wait_for(Duration::from_secs(120), || {
        match http(port, "GET", "/health", token, None) {
            Ok((200, _, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v, serde_json::json!({"ok": true}));
                Some(())
            }
            Ok((503, _, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["ok"], false, "{v}");
                reasons.push(v["reason"].as_str().unwrap().to_owned());
                None
            }
            Ok((s, _, body)) => panic!("/health answered {s}: {body}"),
            Err(_) => None, // not listening yet
        }
    });
    assert!(
        ok.is_some(),
        "the bot never became healthy; /health said {reasons:?}; stderr: {}",
        bot.stderr()
    );
    for r in &reasons {
        assert!(
            r == "connecting" || r.contains("websocket") || r.contains("authenticated"),
            "{reasons:?}"
        );
    }
}

/// Prometheus text: every line a comment or `name{labels} value`; the
/// samples by `name{labels}`, and the names of the `# TYPE` lines.
fn parse_metrics(text: &str) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut samples = BTreeMap::new();
    let mut families = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(rest.split_whitespace().next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not `name value`: {line:?}"));
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < key.len() {
            assert!(key.ends_with('}'), "bad labels in {line:?}");
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(key.to_owned(), v);
    }
    (samples, families)
}

fn metrics(port: u16, token: Option<&str>) -> BTreeMap<String, f64> {
    let (s, head, body) = http(port, "GET", "/metrics", token, None).unwrap();
    assert_eq!(s, 200, "{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse_metrics(&body).0
}

/// A run of the CLI: status, stdout, stderr.
fn cli(args: &[&str], token: Option<&str>) -> Output {
    let mut c = ibflow();
    c.args(args);
    if let Some(t) = token {
        c.env("IBFLOW_CONTROL_TOKEN", t);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn health_metrics_status_and_the_kill_switch_of_a_running_bot() {
    let (bot, port) = start_bot(None);
    let addr = format!("127.0.0.1:{port}");
    wait_healthy(&bot, port, None);

    // Metrics: the whole exposition parses, every family is there, and
    // the websocket has carried quotes.
    let (s, head, body) = http(port, "GET", "/metrics", None, None).unwrap();
    assert_eq!(s, 200);
    assert!(head.contains("content-type: text/plain; version=0.0.4"));
    let (_, families) = parse_metrics(&body);
    for f in [
        "ibflow_ws_messages_total",
        "ibflow_ws_decode_errors_total",
        "ibflow_ws_reconnects_total",
        "ibflow_http_429_total",
        "ibflow_session_reinits_total",
        "ibflow_order_round_trip_seconds",
        "ibflow_orders_total",
        "ibflow_risk_rejects_total",
        "ibflow_realized_pnl",
        "ibflow_unrealized_pnl",
        "ibflow_equity",
        "ibflow_authenticated",
        "ibflow_ws_alive",
        "ibflow_ws_last_message_timestamp_seconds",
        "ibflow_uptime_seconds",
    ] {
        assert!(families.iter().any(|x| x == f), "{f} missing:\n{body}");
    }
    let m = bin::wait_for(Duration::from_secs(60), || {
        let m = metrics(port, None);
        (m[r#"ibflow_ws_messages_total{topic="smd"}"#] > 0.0).then_some(m)
    })
    .expect("quotes counted");
    assert_eq!(m["ibflow_ws_alive"], 1.0);
    assert_eq!(m["ibflow_authenticated"], 1.0);
    assert_eq!(m["ibflow_http_429_total"], 0.0);
    assert!(m["ibflow_ws_last_message_timestamp_seconds"] > 1.6e9);
    for o in [
        "sent",
        "acked",
        "filled",
        "cancelled",
        "refused",
        "rejected",
    ] {
        assert!(
            m.contains_key(&format!(r#"ibflow_orders_total{{outcome="{o}"}}"#)),
            "{o}"
        );
    }

    // The engine counts what its orders became: sma_cross trades within
    // seconds of replay, so orders are sent and acknowledged, and the
    // round trip is observed once per acknowledgement.
    let m = bin::wait_for(Duration::from_secs(60), || {
        let m = metrics(port, None);
        (m[r#"ibflow_orders_total{outcome="acked"}"#] > 0.0).then_some(m)
    })
    .expect("orders acknowledged");
    assert!(
        m[r#"ibflow_orders_total{outcome="sent"}"#] >= m[r#"ibflow_orders_total{outcome="acked"}"#]
    );
    assert!(
        m["ibflow_order_round_trip_seconds_count"] >= m[r#"ibflow_orders_total{outcome="acked"}"#]
    );

    // Status: the snapshot's fields, decimals as strings; the engine's
    // part (account, trading state) is published every second.
    let v = bin::wait_for(Duration::from_secs(10), || {
        let (_, v) = get_json(port, "/status", None);
        (v["trading_state"] == "Active").then_some(v)
    })
    .expect("the engine publishes its status");
    assert_eq!(v["account"], "DU1234567", "{v}");
    let (s, v) = get_json(port, "/status", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["connection"], "connected", "{v}");
    assert_eq!(v["session"], "authenticated", "{v}");
    assert!(
        v["positions"].is_array() && v["working_orders"].is_array(),
        "{v}"
    );
    for k in ["equity", "realized_pnl", "unrealized_pnl"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert!(v["last_message_age_ms"].is_u64(), "{v}");
    assert!(v["counters"]["ws_messages"].as_u64().unwrap() > 0, "{v}");
    assert!(v["orders_halted"].is_null(), "{v}");

    // The CLI's view of it.
    let out = cli(&["status", "--control", &addr], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(so.contains("Health         ok"), "{so}");
    assert!(so.contains("Websocket      connected"), "{so}");
    assert!(so.contains("Session        authenticated"), "{so}");
    let out = cli(&["status", "--json"], None);
    assert!(!out.status.success(), "no address given");
    assert!(text(&out.stderr).contains("no control address"));
    let mut c = ibflow();
    let out = c
        .env("IBFLOW_CONTROL", &addr)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["connection"], "connected");

    // Unknown routes and writes through the proxy.
    let (s, _, _) = http(port, "GET", "/nope", None, None).unwrap();
    assert_eq!(s, 404);
    let (s, _, b) = http(
        port,
        "POST",
        "/gateway/iserver/account/DU1234567/orders",
        None,
        Some(r#"{"orders":[]}"#),
    )
    .unwrap();
    assert_eq!(s, 405, "{b}");
    let (s, _, b) = http(
        port,
        "DELETE",
        "/gateway/iserver/account/DU1/order/1",
        None,
        None,
    )
    .unwrap();
    assert_eq!(s, 405, "{b}");
    let (s, _, b) = http(port, "GET", "/gateway/no/such/endpoint", None, None).unwrap();
    assert_eq!(s, 404, "{b}");
    // A read goes through.
    let (s, v) = get_json(port, "/gateway/iserver/accounts", None);
    assert_eq!(s, 200, "{v}");
    assert!(v["accounts"].is_array(), "{v}");

    // The kill switch, through the CLI.
    let out = cli(
        &["kill", "--control", &addr, "--reason", "tests pull it"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kill switch pulled"));
    let (_, v) = get_json(port, "/status", None);
    let halted = v["orders_halted"].as_str().unwrap_or_default().to_owned();
    assert!(halted.contains("tests pull it"), "{v}");
    // The engine hears it too: its trading state becomes Halted.
    let (ok, stdout, stderr) = bot.interrupt();
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("kill switch (control endpoint): tests pull it"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["trading_state"], "Halted", "{summary}");
    // `run` logs at INFO by default: each order's journey, one line each.
    assert!(stderr.contains("order sent"), "{stderr}");
    assert!(stderr.contains("order acknowledged"), "{stderr}");
    // And the endpoint is gone with the bot.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let out = cli(&["status", "--control", &addr], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("no bot answers on {addr}")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn with_a_token_every_route_asks_for_it() {
    let (bot, port) = start_bot(Some(TOKEN));
    let addr = format!("127.0.0.1:{port}");
    wait_healthy(&bot, port, Some(TOKEN));
    for (method, path) in [
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/status"),
        ("POST", "/kill"),
        ("GET", "/gateway/iserver/accounts"),
    ] {
        for token in [None, Some("wrong"), Some("s3cret-T0ken-for-test")] {
            let (s, _, body) = http(port, method, path, token, None).unwrap();
            assert_eq!(s, 401, "{method} {path} with {token:?}: {body}");
            assert!(!body.contains(TOKEN));
        }
    }
    let (s, _) = get_json(port, "/status", Some(TOKEN));
    assert_eq!(s, 200);
    let (_, v) = get_json(port, "/status", Some(TOKEN));
    assert!(v["orders_halted"].is_null(), "nothing above killed it: {v}");

    // The CLI without the token is refused, and says so.
    let out = cli(&["status", "--control", &addr], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the bot refused the token"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["kill", "--control", &addr], Some("wrong"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("the bot refused the token"));
    // The token from a config file works.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        format!("[run]\ncontrol = \"{addr}\"\ncontrol_token = \"{TOKEN}\"\n"),
    )
    .unwrap();
    let out = cli(&["status", "--config", cfg.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Health         ok"));

    // With the token the kill switch works.
    let (s, _, body) = http(
        port,
        "POST",
        "/kill",
        Some(TOKEN),
        Some(r#"{"reason":"token holder"}"#),
    )
    .unwrap();
    assert_eq!(s, 202, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"killed": true})
    );
    let (_, v) = get_json(port, "/status", Some(TOKEN));
    assert!(
        v["orders_halted"]
            .as_str()
            .is_some_and(|h| h.contains("token holder")),
        "{v}"
    );
    let (ok, stdout, stderr) = bot.interrupt();
    assert!(ok, "{stderr}");
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["trading_state"], "Halted", "{summary}");
}

#[test]
fn a_non_loopback_control_address_is_refused() {
    let out = cli(
        &["run", "--duration", "1", "--control", "0.0.0.0:9464"],
        None,
    );
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("not a loopback address"), "{e}");
    let out = cli(&["status", "--control", "10.1.2.3:9464"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a loopback address"));
}

/// A running `ibflow sim-gateway` on a free port, answering.
fn start_sim() -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = ibflow();
        cmd.args([
            "sim-gateway",
            "--port",
            &port.to_string(),
            "--speed",
            "86400",
        ]);
        let mut sim = Proc::spawn(cmd);
        let up = bin::wait_for(Duration::from_secs(60), || {
            if let Ok(Some(_)) = sim.child.try_wait() {
                return Some(false); // the port was taken meanwhile
            }
            // Not /tickle: its 1-per-second limit would meet the bot's first
            // /tickle and earn a 429 for both.
            matches!(
                http(port, "GET", "/v1/api/iserver/auth/status", None, None),
                Ok((200, _, _))
            )
            .then_some(true)
        });
        if up == Some(true) {
            return (sim, port);
        }
    }
    panic!("ibflow sim-gateway did not start");
}

/// Gateway queries of the CLI next to a running bot go through the bot's
/// paced client: many in quick succession, none answered 429 (the
/// simulator enforces the spec's limits per address, and the bot and the
/// CLI share one), and the bot stays healthy. The same queries sent
/// directly, at once, do draw a 429: the limits are real.
#[test]
fn cli_queries_through_the_bot_draw_no_429() {
    let (sim, sim_port) = start_sim();
    let gateway = format!("http://127.0.0.1:{sim_port}/v1/api");
    let (bot, port) = spawn_on_free_port(|port| {
        let mut cmd = ibflow();
        cmd.args([
            "run",
            "--gateway",
            &gateway,
            "--conid",
            AAPL,
            "--trading-hours",
            "false",
            "--duration",
            "600",
            "--keep-orders",
            "--json",
            "--control",
            &format!("127.0.0.1:{port}"),
        ]);
        cmd
    });
    let addr = format!("127.0.0.1:{port}");
    wait_healthy(&bot, port, None);

    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist");
    let hist = hist.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["trades", "--json"],
        vec!["trades", "--json", "--days", "2"],
        vec!["trades", "--json"],
        vec!["orders", "--json"],
        vec!["positions", "--json"],
        vec!["gateway", "status", "--json"],
        vec!["quote", AAPL, "--json"],
        vec![
            "history", "fetch", "--conid", AAPL, "--bar", "1d", "--period", "1m", "--out", hist,
            "--json",
        ],
        vec!["trades", "--json"],
    ];
    for args in &runs {
        let mut c = ibflow();
        let out = c
            .args(args)
            .args(["--gateway", &gateway])
            .env("IBFLOW_CONTROL", &addr)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains(&format!("via the bot at {addr}")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("429"), "{args:?}: {err}");
        let _: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)));
    }
    let m = metrics(port, None);
    assert_eq!(m["ibflow_http_429_total"], 0.0);
    let (s, v) = get_json(port, "/health", None);
    assert_eq!(s, 200, "{v}");

    // Without the bot in between, three at once break the 1-per-5-s limit
    // of /iserver/account/trades.
    let direct: Vec<Child> = (0..3)
        .map(|_| {
            ibflow()
                .args(["trades", "--json", "--direct", "--gateway", &gateway])
                .env("IBFLOW_CONTROL", &addr)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let errors: Vec<String> = direct
        .into_iter()
        .map(|c| text(&c.wait_with_output().unwrap().stderr))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("429")),
        "direct queries at once should meet the simulator's limit: {errors:?}"
    );
    assert!(
        errors.iter().all(|e| !e.contains("via the bot")),
        "{errors:?}"
    );
    // The address is in the simulator's penalty box now: the bot's next
    // request (a proxied one, or on a loaded machine its session keeper's
    // tickle) meets the 429, the bot counts it, says so on /health, and
    // sends nothing more.
    let (s, v) = get_json(port, "/gateway/iserver/accounts", None);
    assert!(s == 429 || s == 503, "{s}: {v}");
    assert_eq!(metrics(port, None)["ibflow_http_429_total"], 1.0);
    let (s, v) = get_json(port, "/health", None);
    assert_eq!(s, 503, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("penalty box"), "{v}");
    let (s, v) = get_json(port, "/gateway/iserver/accounts", None);
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("penalty box"), "{v}");
    drop(bot);
    drop(sim);
}

/// The endpoint is up before the bot has a gateway: `/health` says
/// `connecting` (503), `/status` too, and the kill switch already works.
/// The "gateway" here accepts connections and never answers (the bot's
/// first request would time out after 30 s; the test is done before).
#[test]
fn the_endpoint_answers_while_the_bot_connects() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = format!(
        "http://127.0.0.1:{}/v1/api",
        silent.local_addr().unwrap().port()
    );
    let (bot, port) = spawn_on_free_port(|port| {
        let mut cmd = ibflow();
        cmd.args([
            "run",
            "--gateway",
            &gateway,
            "--conid",
            AAPL,
            "--control",
            &format!("127.0.0.1:{port}"),
        ]);
        cmd
    });
    let (s, v) = bin::wait_for(Duration::from_secs(60), || {
        http(port, "GET", "/health", None, None).ok()
    })
    .map(|(s, _, b)| (s, serde_json::from_str::<Value>(&b).unwrap()))
    .unwrap_or_else(|| panic!("no control endpoint: {}", bot.stderr()));
    assert_eq!(s, 503, "{v}");
    assert_eq!(v, serde_json::json!({"ok": false, "reason": "connecting"}));
    let (s, v) = get_json(port, "/status", None);
    assert_eq!(s, 200);
    assert_eq!(v["connection"], "connecting", "{v}");
    assert_eq!(v["session"], "not authenticated", "{v}");
    let (s, _, _) = http(port, "POST", "/kill", None, None).unwrap();
    assert_eq!(s, 202);
    let (_, v) = get_json(port, "/status", None);
    assert_eq!(v["orders_halted"], "kill switch (control endpoint)", "{v}");
    let (ok, _, stderr) = bot.interrupt();
    assert!(!ok, "stopped before it traded: {stderr}");
    assert!(stderr.contains("stopped while connecting"), "{stderr}");
    drop(silent);
}
