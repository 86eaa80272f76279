//! The headless bot against a bad day, through the real binary (issue 13).
//! The broker is a separately started `ibflow sim-gateway --admin`, so it
//! outlives the bot; the bot trades mean_reversion (market entries with
//! GTC take-profit and stop-loss exits, so orders work at the venue for
//! days) with `--store`. What the bot's store holds is compared with the
//! venue's own ledger (`GET /sim/admin/ledger`):
//!
//! * every execution the venue made is stored, each exactly once;
//! * the stored positions are the venue's;
//! * no cOID reached the venue twice;
//! * SIGTERM leaves no order working at the venue, prints the summary and
//!   exits 0.
//!
//! The replay is paused (`POST /sim/admin/clock`) while a bot restarts and
//! at the end, so what the test compares is not moving.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

#[path = "support/bin.rs"]
mod bin;

use bin::{admin_ok, db_json, ibflow, sim_gateway, wait_for, Proc};

/// Two replay days a second: the replay's 100 ms ticks land at every time
/// of day, so trading hours are not checked here (`tests/startup_cli.rs`
/// trades with them).
const SPEED: &str = "172800";

/// Half a replay day a second while faults come: a catch-up waits up to
/// 10 s for the trade and order lists' pacing windows, and must find the
/// gap's executions still inside the trades list's 7 days.
const FAULT_SPEED: &str = "43200";

fn bot(port: u16, db: &Path) -> Proc {
    let mut cmd = ibflow();
    cmd.args(ibflow::soak::bot_args(
        &format!("http://127.0.0.1:{port}/v1/api"),
        db,
        600,
    ));
    Proc::spawn(cmd)
}

/// The bot's start-up is over: strategies started and subscribed.
fn wait_running(b: &Proc, runs: usize) {
    assert!(
        b.wait_for_lines("running", runs, Duration::from_secs(120)),
        "the bot never got running: {}",
        b.stderr()
    );
}

fn set_speed(port: u16, speed: &str) {
    admin_ok(
        port,
        "POST",
        "/clock",
        Some(&format!(r#"{{"speed": {speed}}}"#)),
    );
}

fn ledger(port: u16) -> Value {
    admin_ok(port, "GET", "/ledger", None)
}

fn working(ledger: &Value) -> usize {
    ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            !matches!(
                o["status"].as_str(),
                Some("Filled" | "Cancelled" | "Inactive")
            )
        })
        .count()
}

/// Pause the replay once orders work at the venue (resuming it between
/// looks), then stop the bot and compare ([`stop_and_compare_paused`]).
fn stop_and_compare(port: u16, db: &Path, speed: &str, b: Proc) {
    wait_for_working_orders(port, speed);
    stop_and_compare_paused(port, db, b, true);
}

fn wait_for_working_orders(port: u16, speed: &str) {
    let found = wait_for(Duration::from_secs(60), || {
        set_speed(port, "0");
        if working(&ledger(port)) > 0 {
            return Some(());
        }
        set_speed(port, speed);
        std::thread::sleep(Duration::from_millis(700));
        None
    });
    assert!(found.is_some(), "no order ever worked at the venue");
}

/// SIGTERM the bot on a paused replay and compare its store with the
/// venue; `traded`: the venue must hold executions.
fn stop_and_compare_paused(port: u16, db: &Path, mut b: Proc, traded: bool) {
    // Let the bot see the last fills before it is told to stop.
    std::thread::sleep(Duration::from_secs(2));
    b.signal("TERM");
    let status = b.exits_within(Duration::from_secs(90));
    let err = b.stderr();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let summary: Value = serde_json::from_str(b.stdout().trim())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", b.stdout()));
    assert_eq!(summary["trading_state"], "Halted", "{summary}");

    let venue = ledger(port);
    assert_eq!(working(&venue), 0, "orders left working: {venue}");

    // No cOID reached the venue twice.
    let refs: Vec<&str> = venue["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["order_ref"].as_str())
        .collect();
    let unique: BTreeSet<&str> = refs.iter().copied().collect();
    assert_eq!(unique.len(), refs.len(), "a cOID placed twice: {refs:?}");
    assert!(!err.contains("duplicate"), "{err}");

    // Every execution stored, exactly once.
    let venue_ids: BTreeSet<String> = venue["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !traded || !venue_ids.is_empty(),
        "the bot never traded: {err}"
    );
    let stored = db_json(db, &["executions"]);
    let stored_ids: Vec<String> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap().to_owned())
        .collect();
    let stored_set: BTreeSet<String> = stored_ids.iter().cloned().collect();
    assert_eq!(
        stored_set.len(),
        stored_ids.len(),
        "an execution stored twice"
    );
    assert_eq!(
        stored_set, venue_ids,
        "the store and the venue disagree; the bot said: {err}"
    );

    // The stored positions are the venue's.
    let mut stored_pos: BTreeMap<String, String> = BTreeMap::new();
    for p in db_json(db, &["db", "positions"]).as_array().unwrap() {
        let q: rust_decimal::Decimal = p["quantity"].as_str().unwrap().parse().unwrap();
        if !q.is_zero() {
            stored_pos.insert(p["conid"].to_string(), q.normalize().to_string());
        }
    }
    let venue_pos: BTreeMap<String, String> = venue["positions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(c, q)| {
            let q: rust_decimal::Decimal = q.as_str().unwrap().parse().unwrap();
            (c.clone(), q.normalize().to_string())
        })
        .collect();
    assert_eq!(
        stored_pos, venue_pos,
        "positions: store vs venue; the bot said: {err}"
    );
}

/// SIGKILL at random moments while the bot trades, three times, each
/// followed by a restart on the same store: nothing placed twice, nothing
/// stored twice or lost (fills of the killed bot's working exits happen
/// while it is down), its working orders re-attached, and the last run
/// stopped by SIGTERM with nothing left working.
#[test]
fn killed_at_random_moments_and_restarted_the_bot_doubles_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let (_gw, port) = sim_gateway(&["--speed", SPEED, "--start", "2023-06-01T15:00:00Z"]);
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut adopted_total = 0u64;
    let mut kills = 0;
    let mut b = bot(port, &db);
    wait_running(&b, 1);
    assert!(
        b.wait_for_lines("order acknowledged", 3, Duration::from_secs(90)),
        "no order in 90 s: {}",
        b.stderr()
    );
    // At least three kills, and more (up to eight) until a restart found
    // orders of the killed run working: otherwise re-attaching is untested.
    while kills < 3 || (adopted_total == 0 && kills < 8) {
        kills += 1;
        std::thread::sleep(Duration::from_millis(1000 + next() % 3000));
        b.kill9();
        // The market goes on for half a replay day without the bot (exits
        // may fill), then holds still while it restarts.
        std::thread::sleep(Duration::from_millis(250));
        set_speed(port, "0");
        let working_at_venue = working(&ledger(port));
        b = bot(port, &db);
        wait_running(&b, 1);
        let err = b.stderr();
        assert!(!err.contains("panicked"), "{err}");
        let adopted: u64 = err
            .lines()
            .filter(|l| l.contains("working orders re-attached"))
            .filter_map(|l| l.split("adopted=").nth(1))
            .filter_map(|n| n.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        // Every working order at the venue is the bot's; an order acked
        // in the instant before the kill may not have reached the store.
        assert!(
            adopted as usize <= working_at_venue,
            "adopted {adopted} of {working_at_venue}: {err}"
        );
        adopted_total += adopted;
        set_speed(port, SPEED);
    }
    assert!(
        adopted_total > 0,
        "no restart found a working order of the run before: the test proves nothing"
    );
    stop_and_compare(port, &db, SPEED, b);
}

/// Several replay days of IBKR's nightly reset (`--reset-region america`:
/// midnight New York on the replay clock, a bulletin before it) and the
/// 24-hour session limit (`--session-max-age 24h`), a tenth of a day a
/// second: each time the bot pauses, re-opens the session, catches up and
/// trades on; its store equals the venue's ledger at the end.
#[test]
fn a_bot_trades_through_nightly_resets_and_the_24_hour_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let speed = "8640";
    let (_gw, port) = sim_gateway(&[
        "--speed",
        speed,
        "--start",
        "2023-06-01T15:00:00Z",
        "--reset-region",
        "america",
        "--session-max-age",
        "24h",
    ]);
    let b = bot(port, &db);
    wait_running(&b, 1);
    let resets = || admin_ok(port, "GET", "", None)["resets"].as_u64().unwrap();
    assert!(
        wait_for(Duration::from_secs(120), || (resets() >= 3).then_some(())).is_some(),
        "three resets in 120 s"
    );
    // The websocket client re-opens the session before it reconnects (or
    // the session keeper does, pausing trading meanwhile); either way a
    // catch-up follows each reset.
    assert!(
        b.wait_for_lines("caught up with the venue", 3, Duration::from_secs(120)),
        "the bot did not catch up after each reset: {}",
        b.stderr()
    );
    assert!(
        b.stderr().contains("IBKR bulletin") && b.stderr().contains("maintenance"),
        "the reset's bulletin was logged: {}",
        b.stderr()
    );
    // A daily-bar strategy may not trade in a few replay days: the store
    // must match the venue whether or not it did.
    set_speed(port, "0");
    stop_and_compare_paused(port, &db, b, false);
}

/// Pointed at `ibflow sim-gateway` with no extra flag, the bot checks each
/// contract's trading hours (`/trsrv/secdef/schedule`) on the venue's
/// clock, the replay time its quotes carry, not on its own wall clock: the
/// replay starts inside a session and steps a day per tick, so bar closes
/// fall in session and orders fill; the only refusals (a Friday's bar
/// closing on Saturday) name replay times.
#[test]
fn a_bot_on_sim_gateway_trades_on_the_venues_hours_with_no_extra_flag() {
    let (_gw, port) = sim_gateway(&["--speed", "864000", "--start", "2023-06-01T15:00:00Z"]);
    let mut cmd = ibflow();
    cmd.args([
        "run",
        "--gateway",
        &format!("http://127.0.0.1:{port}/v1/api"),
    ])
    .args(["--conid", "265598", "--bar-seconds", "86400"])
    .args(["--param", "fast=2", "--param", "slow=3"])
    .args(["--duration", "600", "--json"]);
    let mut b = Proc::spawn(cmd);
    let filled = b.wait_for_lines("order filled", 2, Duration::from_secs(120));
    b.signal("TERM");
    let status = b.exits_within(Duration::from_secs(90));
    let err = b.stderr();
    assert!(filled, "no fills: {err}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    assert!(
        !err.contains("hours not enforced") && !err.contains("no trading schedule"),
        "the schedule was loaded: {err}"
    );
    let wall_year = chrono::Utc::now().format(" at %Y-").to_string();
    for l in err
        .lines()
        .filter(|l| l.contains("outside its trading hours"))
    {
        assert!(
            l.contains(" at 2023-") && !l.contains(&wall_year),
            "judged on the wall clock: {l}"
        );
    }
}

/// Provoke `fault` (admin calls), then wait for the bot to catch up with
/// the venue once more than before.
fn survive(b: &Proc, name: &str, fault: impl FnOnce()) {
    let before = b.lines_with("caught up with the venue");
    fault();
    assert!(
        b.wait_for_lines(
            "caught up with the venue",
            before + 1,
            Duration::from_secs(120)
        ),
        "no catch-up after {name}: {}",
        b.stderr()
    );
}

/// One bot through a bad day, each fault survived with nothing lost: a
/// websocket gap in which exits fill, a session expiry, the daily reset, a
/// burst of 500s on the account endpoints, and a gateway restart. It
/// trades on after them all, and its store equals the venue's ledger.
#[test]
fn a_bot_survives_gaps_expiry_the_daily_reset_500s_and_a_gateway_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let (_gw, port) = sim_gateway(&["--speed", FAULT_SPEED, "--start", "2023-06-01T15:00:00Z"]);
    let b = bot(port, &db);
    wait_running(&b, 1);
    assert!(
        b.wait_for_lines("order acknowledged", 2, Duration::from_secs(90)),
        "no order in 90 s: {}",
        b.stderr()
    );
    survive(&b, "a websocket gap", || {
        admin_ok(
            port,
            "POST",
            "/faults/status",
            Some(r#"{"path": "/ws", "status": 503}"#),
        );
        admin_ok(port, "POST", "/websockets/drop", None);
        // A replay day without a feed: exits fill meanwhile.
        std::thread::sleep(Duration::from_secs(2));
        admin_ok(port, "POST", "/faults/clear", None);
    });
    survive(&b, "a session expiry", || {
        admin_ok(port, "POST", "/session/expire", None);
    });
    survive(&b, "the daily reset", || {
        admin_ok(port, "POST", "/daily-reset", None);
    });
    // Orders waited while the session was down, and went again after.
    assert!(
        b.lines_with("trading resumed") >= 2,
        "trading never resumed: {}",
        b.stderr()
    );
    let acked = b.lines_with("order acknowledged");
    admin_ok(
        port,
        "POST",
        "/faults/status",
        Some(r#"{"path": "/iserver/account", "status": 500, "times": 6}"#),
    );
    assert!(
        b.wait_for_lines("order acknowledged", acked + 1, Duration::from_secs(90)),
        "no order acknowledged after a burst of 500s: {}",
        b.stderr()
    );
    survive(&b, "a gateway restart", || {
        admin_ok(port, "POST", "/restart", Some(r#"{"down_ms": 1500}"#));
    });
    let acked = b.lines_with("order acknowledged");
    assert!(
        b.wait_for_lines("order acknowledged", acked + 1, Duration::from_secs(90)),
        "no order after the faults: {}",
        b.stderr()
    );
    assert!(!b.stderr().contains("panicked"), "{}", b.stderr());
    stop_and_compare(port, &db, FAULT_SPEED, b);
}

/// `ibflow bench-soak`, the long run's benchmark, works end to end on a
/// short run: three processes, a memory series with replay times and
/// websocket drops, the bot's summary, and a verdict. Whether memory is
/// flat over months is for the benchmark to say (README), not this test.
#[test]
fn bench_soak_samples_a_bots_memory_through_replay_days() {
    let out = ibflow()
        .args(["bench-soak", "--days", "12", "--speed", "86400"])
        .args(["--every", "1", "--drop-every", "4", "--max-growth", "1000"])
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (verdict, samples) = lines.split_last().unwrap();
    assert!(samples.len() >= 4, "{stdout}");
    for s in samples {
        assert!(s["rss_kib"].as_u64().unwrap() > 1024, "{s}");
        assert!(
            s["replay_time"].as_str().unwrap().starts_with("2019-"),
            "{s}"
        );
    }
    assert!(samples.last().unwrap()["websocket_drops"].as_u64().unwrap() >= 1);
    assert_eq!(verdict["samples"].as_u64().unwrap() as usize, samples.len());
    assert!(verdict["flat"].is_boolean(), "{verdict}");
    assert!(
        verdict["bot_summary"]["stats"]["quotes"].as_u64().unwrap() > 0,
        "{verdict}"
    );
}
