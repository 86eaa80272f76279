//! A bot started before its gateway (issue 13), through the real binary:
//! without `--wait-for-login` it fails at once naming the URL and the
//! operating system's reason; with it, it waits, saying so, and trades once
//! a gateway (`ibflow sim-gateway`, a separate process) comes up on that
//! address, or once someone logs in to a gateway that had no login.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "support/bin.rs"]
mod bin;

use bin::{free_port, http_support as http};

/// `ibflow sim-gateway` on `port`, replaying fast, as its own process.
fn sim_gateway(port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args([
            "sim-gateway",
            "--port",
            &port.to_string(),
            "--speed",
            "864000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The bot's exit status if it ends within `limit`; killed otherwise.
fn exits_within(bot: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = bot.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = bot.kill();
    None
}

fn run_args(url: &str) -> Vec<String> {
    [
        "run",
        "--gateway",
        url,
        "--conid",
        "265598",
        "--bar-seconds",
        "86400",
        "--param",
        "fast=2",
        "--param",
        "slow=3",
        "--duration",
        "6",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn without_waiting_a_missing_gateway_is_named_with_the_os_reason() {
    let url = format!("http://127.0.0.1:{}/v1/api", free_port());
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(run_args(&url))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed at once"
    );
    assert!(stderr.contains(&url), "names the URL: {stderr}");
    assert!(
        stderr.contains("Connection refused"),
        "the OS reason: {stderr}"
    );
    assert!(stderr.contains("--wait-for-login"), "the way out: {stderr}");
}

#[test]
fn with_wait_for_login_the_bot_waits_for_a_late_gateway_and_trades() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1/api");
    let mut bot = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(run_args(&url))
        .arg("--wait-for-login")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The gateway comes up a few seconds later (the bot asks at 0, 2, 6 s).
    std::thread::sleep(Duration::from_secs(3));
    let mut gw = sim_gateway(port);
    let status = exits_within(&mut bot, Duration::from_secs(120));
    let _ = gw.kill();
    let _ = gw.wait();
    let mut stderr = String::new();
    bot.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut stdout = String::new();
    bot.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("the bot never finished: {stderr}"));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("does not answer") && stderr.contains("waiting"),
        "it said it was waiting: {stderr}"
    );
    assert!(stderr.contains("the gateway is ready"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        v["stats"]["quotes"].as_u64().unwrap() > 0,
        "it traded the late gateway's feed: {v}"
    );
}

/// A bot started with `--wait-for-login` on a gateway nobody is logged in
/// to names the page to log in at, waits, and trades once the login is
/// there (here `ssodh/init`, which the simulator accepts for a logged-out
/// user; on the real gateway a person logs in through that page).
#[test]
fn with_wait_for_login_the_bot_names_the_login_page_and_waits_for_it() {
    let port = free_port();
    let mut gw = sim_gateway(port);
    let post = |path: &str, body: Option<&str>| {
        http::request(port, "POST", path, &[], body, Duration::from_secs(10))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while post("/v1/api/logout", None).map(|a| a.status).ok() != Some(200) {
        assert!(Instant::now() < deadline, "the simulator never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}/v1/api");
    let mut bot = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .args(run_args(&url))
        .arg("--wait-for-login")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = bot.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let login = format!("log in at http://127.0.0.1:{port}/");
    let waited_until = Instant::now() + Duration::from_secs(60);
    let mut asked = false;
    while !asked && Instant::now() < waited_until {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) => asked = l.contains("has no brokerage login") && l.contains(&login),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if !asked {
        let _ = bot.kill();
        let _ = gw.kill();
    }
    assert!(asked, "the bot named the login page");
    // Someone logs in.
    let a = post(
        "/v1/api/iserver/auth/ssodh/init",
        Some(r#"{"publish":true,"compete":true}"#),
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let status = exits_within(&mut bot, Duration::from_secs(120));
    let _ = gw.kill();
    let _ = gw.wait();
    let stderr = reader.join().unwrap();
    let mut stdout = String::new();
    bot.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("the bot never finished: {stderr}"));
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("the gateway is ready"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(v["stats"]["quotes"].as_u64().unwrap() > 0, "{v}");
}
