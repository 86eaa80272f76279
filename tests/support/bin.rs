//! The real `ibflow` binary as a process, for the end-to-end tests that
//! run a bot against a separately started `ibflow sim-gateway`: free
//! ports, commands with the operator's environment cleared, stderr
//! collected line by line as it comes, signals, and a guard that never
//! lets a process outlive its test.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "http.rs"]
pub(crate) mod http_support;

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ibflow` with the variables an operator may have set removed, so the
/// test's flags are all it reads.
pub(crate) fn ibflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ibflow"));
    for v in [
        "IBFLOW_CONTROL",
        "IBFLOW_CONTROL_TOKEN",
        "IBFLOW_GATEWAY",
        "IBFLOW_DB",
        "IBFLOW_LOG",
    ] {
        c.env_remove(v);
    }
    c
}

/// `ibflow --db DB <args> --json` (a store query), as JSON; the command
/// must succeed.
pub(crate) fn db_json(db: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = ibflow()
        .arg("--db")
        .arg(db)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Poll `f` until it gives a value, for up to `limit`.
pub(crate) fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(x) = f() {
            return Some(x);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `ibflow` process; killed (SIGKILL) when dropped.
pub(crate) struct Proc {
    pub(crate) child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

fn collect(from: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let into = Arc::new(Mutex::new(String::new()));
    let sink = into.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    into
}

impl Proc {
    /// Start `cmd` with stdout and stderr collected.
    pub(crate) fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        let stdout = collect(child.stdout.take().unwrap());
        Proc {
            child,
            stderr,
            stdout,
        }
    }

    /// Everything written to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything written to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Wait up to `limit` for stderr to hold `n` lines containing `text`.
    pub(crate) fn wait_for_lines(&self, text: &str, n: usize, limit: Duration) -> bool {
        wait_for(limit, || (self.lines_with(text) >= n).then_some(())).is_some()
    }

    /// How many stderr lines so far contain `text`.
    pub(crate) fn lines_with(&self, text: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(text)).count()
    }

    /// Signal the process by name (`TERM`, `INT`, `USR1`).
    pub(crate) fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {}", self.child.id());
    }

    /// SIGKILL and reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its exit status if it ends within `limit`; `None` (still running)
    /// otherwise.
    pub(crate) fn exits_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = &mut self.child;
        let status = wait_for(limit, || child.try_wait().unwrap());
        // Let the reader threads drain what the process wrote last.
        if status.is_some() {
            std::thread::sleep(Duration::from_millis(200));
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// `ibflow sim-gateway --admin` on a free port with `extra` flags, once it
/// answers; returns the process and its port.
pub(crate) fn sim_gateway(extra: &[&str]) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = ibflow();
        cmd.args(["sim-gateway", "--admin", "--port", &port.to_string()])
            .args(extra);
        let mut gw = Proc::spawn(cmd);
        let up = wait_for(Duration::from_secs(60), || {
            if gw.child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            admin(port, "GET", "", None).ok().map(|_| true)
        });
        if up == Some(true) {
            return (gw, port);
        }
        gw.kill9();
    }
    panic!("ibflow sim-gateway never came up");
}

/// A call to the simulator's admin API (`/sim/admin{path}`): status and
/// body as JSON (`Null` when not JSON).
pub(crate) fn admin(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, serde_json::Value)> {
    let a = http_support::request(
        port,
        method,
        &format!("/sim/admin{path}"),
        &[],
        body,
        Duration::from_secs(30),
    )?;
    Ok((a.status, serde_json::from_str(&a.body).unwrap_or_default()))
}

/// An admin call that must succeed.
pub(crate) fn admin_ok(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> serde_json::Value {
    let (status, v) = admin(port, method, path, body).unwrap();
    assert_eq!(status, 200, "{method} /sim/admin{path}: {v}");
    v
}
