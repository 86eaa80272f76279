//! Logs and deployment files, through the real binary: human logs carry no
//! colour codes when stderr is not a terminal, `--log-format json` (and
//! `IBFLOW_LOG_FORMAT=json`) writes one JSON object per line, and the
//! config shipped in `deploy/` is accepted by the real parser.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a command of these tests may take; generous for a loaded
/// 2-core machine (a 2-second bot takes a few seconds alone).
const WITHIN: Duration = Duration::from_secs(180);

/// The message `ibkr::node` logs at INFO once it has read the account.
const SEEDED: &str = "portfolio seeded from the account";

/// What a finished `ibflow` said.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `ibflow args` with `env` set (and no `IBFLOW_LOG`,
/// `IBFLOW_LOG_FORMAT` or `NO_COLOR` inherited), stdout and stderr piped;
/// kill it and fail if it runs longer than [`WITHIN`].
fn ibflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ibflow"));
    cmd.args(args)
        .env_remove("IBFLOW_LOG")
        .env_remove("IBFLOW_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ibflow {args:?} still running after {WITHIN:?}; stderr:\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A two-second bot on the built-in simulator (no `--gateway`), daily
/// bars replayed fast, with `global` flags before `run`.
fn short_bot(global: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = global.to_vec();
    args.extend([
        "run",
        "--duration",
        "2",
        "--speed",
        "864000",
        "--bar-seconds",
        "86400",
    ]);
    let out = ibflow(&args, env);
    assert!(out.status.success(), "{}", out.stderr);
    out
}

/// `s` is an RFC 3339 time in UTC (`Z`).
fn assert_utc_rfc3339(s: &str) {
    assert!(s.ends_with('Z'), "not UTC: {s}");
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
}

#[test]
fn human_logs_on_a_pipe_have_no_colour_and_utc_times() {
    let out = short_bot(&["-v"], &[]);
    assert!(!out.stderr.contains("\x1b["), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(SEEDED))
        .unwrap_or_else(|| panic!("no {SEEDED:?} line:\n{}", out.stderr));
    // `2026-11-30T20:11:12.103784Z  INFO ibflow_ibkr::node: portfolio
    // seeded from the account account=DU1234567 cash=1000000 ...`
    let mut words = line.split_whitespace();
    assert_utc_rfc3339(words.next().unwrap());
    assert_eq!(words.next(), Some("INFO"), "{line}");
    assert_eq!(words.next(), Some("ibflow_ibkr::node:"), "{line}");
    assert!(line.contains(" account="), "{line}");
    // The summary is on stdout, not mixed into the logs.
    assert!(out.stdout.contains("equity"), "{}", out.stdout);
}

/// On a terminal the human format is coloured, unless `NO_COLOR` says no:
/// the colour is turned off only where it does not belong. The terminal is
/// util-linux `script`'s pseudo-terminal; without `script` there is nothing
/// to check.
#[cfg(target_os = "linux")]
#[test]
fn human_logs_on_a_terminal_are_coloured_unless_no_color() {
    let bot = format!(
        "'{}' -v run --duration 1 --speed 864000 --bar-seconds 86400",
        env!("CARGO_BIN_EXE_ibflow")
    );
    let on_a_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &bot, "/dev/null"])
            .env_remove("IBFLOW_LOG")
            .env_remove("IBFLOW_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        cmd.output()
    };
    let Ok(coloured) = on_a_tty(None) else {
        eprintln!("no `script` here: colour on a terminal not checked");
        return;
    };
    // `script` writes what the terminal showed, stderr included.
    let text = String::from_utf8_lossy(&coloured.stdout);
    assert!(coloured.status.success(), "{text}");
    assert!(text.contains(SEEDED), "{text}");
    assert!(text.contains("\x1b["), "{text}");
    let plain = on_a_tty(Some("1")).unwrap();
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(plain.status.success(), "{text}");
    assert!(text.contains(SEEDED), "{text}");
    assert!(!text.contains("\x1b["), "{text}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = short_bot(&["-v", "--log-format", "json"], &[]);
    assert!(!out.stderr.contains("\x1b["), "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!events.is_empty(), "{}", out.stderr);
    for e in &events {
        assert_utc_rfc3339(e["timestamp"].as_str().unwrap());
        let level = e["level"].as_str().unwrap();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{e}"
        );
        assert!(e["target"].is_string(), "{e}");
        assert!(e["fields"]["message"].is_string(), "{e}");
    }
    let seeded = events
        .iter()
        .find(|e| e["fields"]["message"] == SEEDED)
        .unwrap_or_else(|| panic!("no {SEEDED:?} event:\n{}", out.stderr));
    assert_eq!(seeded["level"], "INFO", "{seeded}");
    assert_eq!(seeded["target"], "ibflow_ibkr::node", "{seeded}");
    // The event's own fields sit beside the message.
    assert!(seeded["fields"]["account"].is_string(), "{seeded}");
    assert!(seeded["fields"]["positions"].is_u64(), "{seeded}");
    // -v is info: nothing more verbose is let through.
    assert!(
        events.iter().all(|e| e["level"] != "DEBUG"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_from_the_environment_reports_a_failure_as_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.db");
    let out = ibflow(
        &["--db", missing.to_str().unwrap(), "db", "check"],
        &[("IBFLOW_LOG_FORMAT", "json")],
    );
    assert!(!out.status.success(), "{}", out.stderr);
    let errors: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert_eq!(
        errors[0]["fields"]["message"], "ibflow exited with an error",
        "{}",
        errors[0]
    );
    let reason = errors[0]["fields"]["error"].as_str().unwrap();
    assert!(reason.contains("absent.db"), "{reason}");
}

#[test]
fn an_unknown_log_format_is_refused() {
    let out = ibflow(&["--log-format", "xml", "strategies"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("human"), "{}", out.stderr);
    assert!(out.stderr.contains("json"), "{}", out.stderr);
}

/// `deploy/ibflow.example.toml`.
fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ibflow.example.toml")
}

#[test]
fn the_deploy_example_config_parses_and_builds_its_strategies() {
    let path = example_config();
    let cfg = ibflow::config::ConfigFile::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        cfg.run.gateway.as_deref(),
        Some("https://localhost:5000/v1/api")
    );
    assert_eq!(cfg.run.insecure, Some(true));
    assert!(
        cfg.store.db.as_deref() == Some(Path::new("/var/lib/ibflow/ibflow.db")),
        "{:?}",
        cfg.store.db
    );
    assert!(!cfg.run.strategies.is_empty());
    let registry = strategies::registry();
    for s in &cfg.run.strategies {
        let params = engine::registry::Params::from_table(s.params.clone());
        registry
            .build(&s.name, &params)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
}

#[test]
fn the_deploy_example_config_gets_as_far_as_the_gateway() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = format!("https://127.0.0.1:{port}/v1/api");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ibflow.db");
    let config = example_config();
    let out = ibflow(
        &[
            "--db",
            db.to_str().unwrap(),
            "run",
            "--config",
            config.to_str().unwrap(),
            "--gateway",
            &gateway,
        ],
        &[],
    );
    // Refused at the gateway, not at the config: a bad key or value fails
    // with "parsing config ..." before any request.
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains("parsing config"), "{}", out.stderr);
    assert!(out.stderr.contains("transport error"), "{}", out.stderr);
}
