//! Commands that read and write the SQLite store: `db`, `executions`, and the
//! hidden ingestion benchmark `bench-store`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{NaiveDate, TimeZone, Utc};
use clap::{Args, Subcommand};
use rust_decimal::Decimal;

use cpapi::messages::TRADES_WINDOW_DAYS;
use engine::forecastex::NetPosition;
use engine::model::{Conid, ExecSide, Execution, Timestamp};
use store::{import, Store, StoredExecution};

/// `ibflow db` commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the database if needed and apply every pending migration.
    Migrate,
    /// Positions implied by the stored executions.
    Positions {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Orders stored locally (cOID, status, fills).
    Orders {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// PRAGMA integrity_check, and positions recomputed from executions.
    Check,
}

/// Flags of `ibflow executions`: list the stored executions, or import some.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExecutionsArgs {
    /// `import FILE`; absent: list.
    #[command(subcommand)]
    pub action: Option<ExecutionsAction>,
    /// Only executions traded at or after T (RFC 3339, YYYY-MM-DD as
    /// midnight UTC, or epoch milliseconds).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `ibflow executions` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExecutionsAction {
    /// Import a saved /iserver/account/trades response (a JSON array) or a
    /// capture of websocket messages, one JSON per line (only `str` topics
    /// are used). Every execution is stored exactly once.
    Import {
        /// The response or capture to read.
        file: PathBuf,
        /// Executions per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

/// Flags of the hidden `ibflow bench-store`.
#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Executions to ingest.
    #[arg(long, default_value_t = 200_000)]
    pub n: usize,
    /// Executions per transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Directory for the database file (default: a fresh temp directory,
    /// removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn open(db: &Path) -> Result<Store> {
    Store::open(db)
        .await
        .with_context(|| format!("opening database {}", db.display()))
}

/// An existing database only: a command that reads must not create an
/// empty file at a mistyped path and then report on it.
async fn open_existing(db: &Path) -> Result<Store> {
    Store::open_existing(db)
        .await
        .with_context(|| format!("opening database {}", db.display()))
}

/// Run an `ibflow db` command on the database file `db`.
pub fn db(db: &Path, cmd: DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Migrate => runtime()?.block_on(async {
            let store = Store::open_unmigrated(db)
                .await
                .with_context(|| format!("opening database {}", db.display()))?;
            let n = store.migrate().await?;
            println!(
                "{}: {n} migration(s) applied, schema up to date",
                db.display()
            );
            store.close().await;
            Ok(())
        }),
        DbCommand::Positions { json } => print_positions(db, json),
        DbCommand::Orders { json } => print_orders(db, json),
        DbCommand::Check => runtime()?.block_on(async {
            let store = open_existing(db).await?;
            let integrity = store.integrity_check().await?;
            let stored = store.positions().await?;
            let recomputed = store.recompute_positions().await?;
            let n = store.execution_count().await?;
            let history = store
                .check_history(Utc::now(), i64::from(TRADES_WINDOW_DAYS))
                .await?;
            store.close().await;
            println!("integrity_check: {integrity}");
            println!("executions: {n}");
            if integrity != "ok" {
                bail!("database is damaged");
            }
            // Flat positions with no executions behind them cannot exist;
            // compare only what executions imply.
            if stored != recomputed {
                bail!("positions differ from the sum of stored executions");
            }
            println!("positions: {} (equal to the executions' sum)", stored.len());
            println!(
                "orders: {} ({} bracket children without executions not checked, \
                 {} executions of orders not placed by ibflow)",
                history.orders, history.children_unchecked, history.foreign_executions
            );
            for p in &history.problems {
                println!("problem: {}", describe_problem(p));
            }
            if !history.problems.is_empty() {
                bail!(
                    "{} disagreement(s) between orders and executions",
                    history.problems.len()
                );
            }
            Ok(())
        }),
    }
}

fn describe_problem(p: &store::HistoryProblem) -> String {
    use store::HistoryProblem as P;
    match p {
        P::FilledWithoutExecutions {
            client_order_id,
            quantity,
            executed,
        } => format!(
            "order {client_order_id} is Filled ({quantity}) but its executions add up to {executed}"
        ),
        P::OpenButExecuted {
            client_order_id,
            status,
            executed,
        } => format!(
            "order {client_order_id} is still {status} but its executions add up to {executed}"
        ),
        P::ExecutionsWithoutOrder { order_ref, count } => {
            format!("{count} execution(s) of order {order_ref}, which is not stored")
        }
        P::StaleOpenOrder {
            client_order_id,
            status,
            updated,
        } => format!(
            "order {client_order_id} is still {status}, last updated {updated}: older than the \
             broker's {TRADES_WINDOW_DAYS}-day trades window, its fate cannot be fetched"
        ),
    }
}

/// Print the stored positions, as a table or as JSON.
pub fn print_positions(db: &Path, json: bool) -> Result<()> {
    let (positions, strikes) = runtime()?.block_on(async {
        let store = open_existing(db).await?;
        let p = store.positions().await?;
        let e = store.event_positions().await?;
        store.close().await;
        anyhow::Ok((p, e))
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &positions)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:>12} {:>14} {:>14} {:>14}",
        "account", "conid", "quantity", "avg_cost", "realized_pnl"
    )?;
    for p in &positions {
        writeln!(
            out,
            "{:<12} {:>12} {:>14} {:>14} {:>14}",
            p.account,
            p.conid,
            p.quantity,
            p.avg_cost.round_dp(6).normalize(),
            p.realized_pnl.round_dp(6).normalize()
        )?;
    }
    if !strikes.is_empty() {
        // ForecastEx: YES and NO of one strike net; show the net holding.
        writeln!(out)?;
        writeln!(
            out,
            "{:<12} {:>12} {:>8} {:<16} {:>12} {:>12}  net",
            "account", "market", "strike", "label", "yes_conid", "no_conid"
        )?;
        for (account, pair, pos) in &strikes {
            let net = match pos.net() {
                NetPosition::Flat => "flat".to_owned(),
                NetPosition::Yes(q) => format!("YES {q}"),
                NetPosition::No(q) => format!("NO {q}"),
            };
            writeln!(
                out,
                "{:<12} {:>12} {:>8} {:<16} {:>12} {:>12}  {net}",
                account,
                pair.underlying,
                pair.strike.normalize(),
                pair.strike_label.as_deref().unwrap_or("-"),
                pair.yes,
                pair.no
            )?;
        }
    }
    Ok(())
}

/// Print the locally stored orders, as a table or as JSON.
pub fn print_orders(db: &Path, json: bool) -> Result<()> {
    let orders = runtime()?.block_on(async {
        let store = open_existing(db).await?;
        let o = store.orders().await?;
        store.close().await;
        anyhow::Ok(o)
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &orders)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:>12} {:<4} {:<10} {:>10} {:>10} {:<14} {:<12}",
        "cOID", "conid", "side", "type", "qty", "filled", "status", "strategy"
    )?;
    for o in &orders {
        writeln!(
            out,
            "{:<20} {:>12} {:<4} {:<10} {:>10} {:>10} {:<14} {:<12}",
            o.client_order_id,
            o.conid,
            o.side,
            o.order_type,
            o.quantity,
            o.filled_quantity,
            o.status,
            o.strategy.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// Run `ibflow executions`: import a file, or list the stored executions
/// (optionally since `--since`).
pub fn executions(db: &Path, args: ExecutionsArgs) -> Result<()> {
    match args.action {
        Some(ExecutionsAction::Import { file, batch }) => import_file(db, &file, batch),
        None => {
            let since = args.since.as_deref().map(parse_since).transpose()?;
            list_executions(db, since, args.json)
        }
    }
}

fn parse_since(s: &str) -> Result<Timestamp> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    if let Ok(ms) = s.parse::<i64>() {
        if let Some(t) = Utc.timestamp_millis_opt(ms).single() {
            return Ok(t);
        }
    }
    bail!("--since: expected RFC 3339, YYYY-MM-DD or epoch milliseconds, got {s:?}")
}

fn list_executions(db: &Path, since: Option<Timestamp>, json: bool) -> Result<()> {
    let rows: Vec<StoredExecution> = runtime()?.block_on(async {
        let store = open_existing(db).await?;
        let e = store.executions(since).await?;
        store.close().await;
        anyhow::Ok(e)
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        let plain: Vec<&Execution> = rows.iter().map(|r| &r.execution).collect();
        serde_json::to_writer_pretty(&mut out, &plain)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<28} {:<10} {:>12} {:<1} {:>10} {:>12} {:>8} {:<16}",
        "time", "execution_id", "account", "conid", "s", "size", "price", "comm", "order_ref"
    )?;
    for r in &rows {
        let e = &r.execution;
        writeln!(
            out,
            "{:<20} {:<28} {:<10} {:>12} {:<1} {:>10} {:>12} {:>8} {:<16}",
            e.time.format("%Y-%m-%dT%H:%M:%SZ"),
            e.execution_id,
            e.account,
            e.conid,
            e.side.code(),
            e.size,
            e.price,
            e.commission,
            e.order_ref.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// Running totals of an import, printed after every committed batch so a
/// caller knows exactly what is durable.
#[derive(Default)]
struct Totals {
    records: u64,
    new: u64,
    duplicates: u64,
    other_messages: u64,
}

async fn flush(
    store: &Store,
    pending: &mut Vec<(Execution, Option<String>)>,
    totals: &mut Totals,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let got = store.record_executions(pending).await?;
    totals.records += pending.len() as u64;
    totals.new += got.new_count() as u64;
    totals.duplicates += got.duplicates as u64;
    pending.clear();
    println!(
        "committed {} records: {} new, {} already stored",
        totals.records, totals.new, totals.duplicates
    );
    Ok(())
}

fn import_file(db: &Path, file: &Path, batch: usize) -> Result<()> {
    let batch = batch.max(1);
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut reader = BufReader::new(f);
    let first = loop {
        let buf = reader.fill_buf()?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => break Some(buf[i]),
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    let name = file.display().to_string();
    let rt = runtime()?;
    rt.block_on(async {
        let store = open(db).await?;
        let mut totals = Totals::default();
        let mut pending = Vec::with_capacity(batch);
        match first {
            None => bail!("{name}: empty file"),
            Some(b'[') => {
                // A saved /iserver/account/trades response.
                let mut text = String::new();
                reader.read_to_string(&mut text)?;
                let list: Vec<serde_json::Value> = serde_json::from_str(&text)
                    .with_context(|| format!("{name}: not a trades response (JSON array)"))?;
                for (i, rec) in import::records(&list).into_iter().enumerate() {
                    let (e, raw) = rec.map_err(|e| anyhow!("{name}: record {i}: {e}"))?;
                    pending.push((e, Some(raw)));
                    if pending.len() >= batch {
                        flush(&store, &mut pending, &mut totals).await?;
                    }
                }
            }
            Some(_) => {
                // Websocket messages, one JSON per line.
                for (n, line) in reader.lines().enumerate() {
                    let line = line.with_context(|| format!("{name}: line {}", n + 1))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let msg = import::parse_message(&line)
                        .map_err(|e| anyhow!("{name}: line {}: {e}", n + 1))?;
                    let import::Message::Trades(args) = msg else {
                        totals.other_messages += 1;
                        continue;
                    };
                    for rec in import::records(&args) {
                        let (e, raw) = rec.map_err(|e| anyhow!("{name}: line {}: {e}", n + 1))?;
                        pending.push((e, Some(raw)));
                    }
                    if pending.len() >= batch {
                        flush(&store, &mut pending, &mut totals).await?;
                    }
                }
            }
        }
        flush(&store, &mut pending, &mut totals).await?;
        store.close().await;
        println!(
            "imported {name}: {} records, {} new, {} already stored, {} other messages skipped",
            totals.records, totals.new, totals.duplicates, totals.other_messages
        );
        Ok(())
    })
}

/// Deterministic synthetic executions: a few accounts, a few hundred conids,
/// buys and sells of odd sizes at cent prices.
fn synthetic(n: usize) -> Vec<(Execution, Option<String>)> {
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 2, 14, 30, 0)
        .single()
        .unwrap_or_default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let size = Decimal::from(1 + r % 500);
            let price = Decimal::new(1_000 + (r >> 20) as i64 % 50_000, 2);
            let e = Execution {
                execution_id: format!("{:08x}.{:08x}.01.01", i, r as u32),
                order_id: None,
                order_ref: Some(format!("bench-{}", i / 4)),
                account: format!("U{}", 1_000_000 + r % 4),
                conid: Conid(100_000 + ((r >> 8) % 300) as i64),
                side: if r & 1 == 0 {
                    ExecSide::Bought
                } else {
                    ExecSide::Sold
                },
                size,
                price,
                commission: Decimal::new(100 + (r % 50) as i64, 2),
                net_amount: size * price,
                time: t0 + chrono::Duration::milliseconds(i as i64 * 37),
            };
            (e, None)
        })
        .collect()
}

/// Run `ibflow bench-store`: ingest `--n` synthetic executions in batches,
/// ingest them again (each must be found a duplicate), print both rates.
pub fn bench_store(args: BenchStoreArgs) -> Result<()> {
    let batch = args.batch.max(1);
    let (dir, cleanup) = match args.dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("ibflow-bench-store-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let data = synthetic(args.n);
    let result = runtime()?.block_on(async {
        let store = open(&path).await?;
        let start = Instant::now();
        let mut new = 0usize;
        for chunk in data.chunks(batch) {
            new += store.record_executions(chunk).await?.new_count();
        }
        let secs = start.elapsed().as_secs_f64();
        // Everything again: all duplicates, nothing moves.
        let start_dup = Instant::now();
        let mut dup = 0usize;
        for chunk in data.chunks(batch) {
            dup += store.record_executions(chunk).await?.duplicates;
        }
        let secs_dup = start_dup.elapsed().as_secs_f64();
        let ok = store.recompute_positions().await? == store.positions().await?;
        store.close().await;
        anyhow::Ok((new, secs, dup, secs_dup, ok))
    });
    if cleanup {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (new, secs, dup, secs_dup, ok) = result?;
    if new != args.n || dup != args.n || !ok {
        bail!("benchmark check failed: new {new}, duplicates {dup}, positions consistent {ok}");
    }
    println!(
        "{:>10} executions  batch {:>5}  {:>7.3} s  {:>9.0} executions/s  (re-ingest as duplicates: {:>9.0}/s)",
        args.n,
        batch,
        secs,
        args.n as f64 / secs,
        args.n as f64 / secs_dup
    );
    Ok(())
}
