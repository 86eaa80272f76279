//! Crash safety: the real `ibflow` binary importing a large capture of
//! websocket `str` messages is killed with SIGKILL at random moments. After
//! every kill the database passes `PRAGMA integrity_check`, holds each
//! execution at most once, keeps every batch whose commit was acknowledged
//! on stdout, and its positions equal the sum of its executions.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use store::{sqlx, Store};

const RECORDS: usize = 60_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Write the capture; returns the execution id of each record in file order
/// (duplicates included) and the expected final positions.
fn write_capture(path: &Path) -> (Vec<String>, BTreeMap<(String, i64), Decimal>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut ids = Vec::new();
    let mut originals: Vec<String> = Vec::new();
    let mut expected: BTreeMap<(String, i64), Decimal> = BTreeMap::new();
    let mut i = 0usize;
    while ids.len() < RECORDS {
        let r = rng.next();
        if r.is_multiple_of(50) {
            writeln!(f, r#"{{"topic":"system","hb":{r}}}"#).unwrap();
            continue;
        }
        let n = 1 + (r % 3) as usize;
        let mut args = Vec::new();
        for _ in 0..n {
            let r = rng.next();
            // Every 8th record repeats an earlier one (a replay).
            if r.is_multiple_of(8) && !originals.is_empty() {
                let j = (r >> 8) as usize % originals.len();
                args.push(originals[j].clone());
                ids.push(format!("x{j:07}"));
                continue;
            }
            let account = format!("U{}", 100 + r % 3);
            let conid = 265_000 + ((r >> 4) % 40) as i64;
            let side = if (r >> 12) & 1 == 0 { "B" } else { "S" };
            let size = 1 + (r >> 16) % 300;
            let price = format!("{}.{:02}", 10 + (r >> 24) % 400, (r >> 40) % 100);
            let signed = if side == "B" {
                size as i64
            } else {
                -(size as i64)
            };
            *expected.entry((account.clone(), conid)).or_default() += Decimal::from(signed);
            let rec = format!(
                r#"{{"execution_id":"x{i:07}","symbol":"S{conid}","side":"{side}","trade_time":"20231211-18:00:49","trade_time_r":{},"size":{size}.0,"price":"{price}","order_ref":"o{i}","exchange":"ISLAND","commission":"1.01","net_amount":1.5,"account":"{account}","accountCode":"{account}","sec_type":"STK","conid":{conid}}}"#,
                1_702_317_649_000u64 + i as u64
            );
            originals.push(rec.clone());
            args.push(rec);
            ids.push(format!("x{i:07}"));
            i += 1;
        }
        writeln!(f, r#"{{"topic":"str","args":[{}]}}"#, args.join(",")).unwrap();
    }
    f.flush().unwrap();
    (ids, expected)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Everything that must hold after a kill; returns the execution count.
fn check(db: &Path, acknowledged: &[String]) -> u64 {
    rt().block_on(async {
        let store = Store::open(db).await.unwrap();
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
        let (rows, distinct): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT execution_id) FROM executions")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(rows, distinct, "an execution stored twice");
        let stored: HashSet<String> = sqlx::query_scalar("SELECT execution_id FROM executions")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
        for id in acknowledged {
            assert!(stored.contains(id), "acknowledged execution {id} lost");
        }
        let positions = store.positions().await.unwrap();
        assert_eq!(
            positions,
            store.recompute_positions().await.unwrap(),
            "positions differ from the sum of stored executions"
        );
        store.close().await;
        rows as u64
    })
}

#[test]
fn killed_imports_leave_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("str.jsonl");
    let db = dir.path().join("crash.db");
    let (ids, expected) = write_capture(&capture);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Rng(seed);
    let mut killed_mid_import = 0;
    let mut last_count = 0;
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ibflow"))
            .arg("--db")
            .arg(&db)
            .args(["executions", "import", "--batch", "500"])
            .arg(&capture)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = 0usize;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("committed ") {
                    if let Some(n) = rest.split(' ').next().and_then(|n| n.parse().ok()) {
                        acked = n;
                    }
                }
            }
            acked
        });
        let wait = Duration::from_millis(30 + rng.next() % 1500);
        let start = Instant::now();
        while start.elapsed() < wait {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            killed_mid_import += 1;
        }
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        let count = check(&db, &ids[..acked.min(ids.len())]);
        eprintln!(
            "round {round}: killed after {wait:?}, {acked} records acknowledged, {count} stored"
        );
        assert!(count >= last_count, "executions disappeared");
        last_count = count;
    }
    assert!(
        killed_mid_import >= 3,
        "only {killed_mid_import} kills landed during an import"
    );
    // Finish the import: everything once, positions as the file implies.
    let out = Command::new(env!("CARGO_BIN_EXE_ibflow"))
        .arg("--db")
        .arg(&db)
        .args(["executions", "import"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(check(&db, &ids), unique.len() as u64);
    let got: BTreeMap<(String, i64), Decimal> = rt().block_on(async {
        let store = Store::open(&db).await.unwrap();
        let p = store.positions().await.unwrap();
        p.into_iter()
            .map(|p| ((p.account, p.conid.0), p.quantity))
            .collect()
    });
    let expected: BTreeMap<_, _> = expected.into_iter().collect();
    assert_eq!(got, expected);
}
