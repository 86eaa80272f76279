//! Executions, stored exactly once, and the positions they imply.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::codec::{dec, from_ms, ms, now_ms};
use super::{parse_code, Result, Store, StoreError};
use engine::model::{Conid, ExecSide, Execution, OrderId, Position, Timestamp};

/// Rows per multi-row INSERT: 14 parameters each stays far below SQLite's
/// 32766-parameter limit, and a full chunk reuses one prepared statement.
const CHUNK: usize = 256;

/// Sizes and prices beyond this are refused: they cannot be real, and they
/// keep every product in the position arithmetic far from `Decimal`'s range.
const LIMIT: i64 = 1_000_000_000_000;

/// Longest execution id, `order_ref` or account accepted: real ones are a
/// few dozen characters; a megabyte of id is an attack or a broken file.
pub(crate) const MAX_ID_LEN: usize = 128;

/// How far after now a trade time may be (clock skew, time zones): beyond
/// it the time is wrong, not early.
const FUTURE_SLACK_DAYS: i64 = 2;

/// One stored execution with what came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredExecution {
    /// The execution as the engine knows it (flattened when serialized).
    #[serde(flatten)]
    pub execution: Execution,
    /// The JSON the execution was parsed from, when it came from the venue.
    pub raw_json: Option<String>,
    /// When this store first recorded it (UTC), not when it traded.
    pub recorded: Timestamp,
}

/// The position of one account in one conid, as implied by the executions
/// stored so far. `realized_pnl` is in price units times quantity: an
/// execution report does not carry the contract multiplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPosition {
    /// The account the executions were booked to.
    pub account: String,
    /// The contract.
    pub conid: Conid,
    /// Signed units held: positive long, negative short, zero flat (the row
    /// stays, with its realized PnL).
    pub quantity: Decimal,
    /// Average price of the open quantity, without the multiplier; stored in
    /// the `avg_cost` column.
    pub avg_cost: Decimal,
    /// Realized profit so far, in price units times quantity (no multiplier).
    pub realized_pnl: Decimal,
}

/// What an ingestion did: the executions that were new (and moved positions)
/// and how many were already stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// The `execution_id`s that were new, in the order given: these, and only
    /// these, moved positions.
    pub new_ids: Vec<String>,
    /// Records not stored: already in the table, or repeated within the batch.
    pub duplicates: usize,
}

impl Ingested {
    /// How many executions were new.
    pub fn new_count(&self) -> usize {
        self.new_ids.len()
    }
}

fn validate(e: &Execution) -> Result<()> {
    let bad = |reason: String| {
        Err(StoreError::InvalidExecution {
            execution_id: e.execution_id.clone(),
            reason,
        })
    };
    let limit = Decimal::from(LIMIT);
    if e.execution_id.trim().is_empty() {
        return bad("empty execution_id".into());
    }
    let printable = |s: &str| s.chars().all(|c| !c.is_control());
    if e.execution_id.len() > MAX_ID_LEN || !printable(&e.execution_id) {
        return Err(StoreError::InvalidExecution {
            // The id itself may be the problem: name it shortened.
            execution_id: e.execution_id.chars().take(40).collect::<String>() + "...",
            reason: format!(
                "execution_id of {} bytes (at most {MAX_ID_LEN} printable characters)",
                e.execution_id.len()
            ),
        });
    }
    if e.order_ref
        .as_deref()
        .is_some_and(|r| r.len() > MAX_ID_LEN || !printable(r))
    {
        return bad(format!(
            "order_ref longer than {MAX_ID_LEN} characters or not printable"
        ));
    }
    if e.account.trim().is_empty() || e.account.len() > MAX_ID_LEN || !printable(&e.account) {
        return bad("account empty, too long or not printable".into());
    }
    if e.size <= Decimal::ZERO || e.size > limit {
        return bad(format!("size must be in (0, {LIMIT}], got {}", e.size));
    }
    if e.price.abs() > limit {
        return bad(format!("price out of range: {}", e.price));
    }
    // A trade has a positive price; a netting report (ForecastEx) may
    // carry zero, never less.
    let price_ok = match e.side {
        ExecSide::Netting => e.price >= Decimal::ZERO,
        ExecSide::Bought | ExecSide::Sold => e.price > Decimal::ZERO,
    };
    if !price_ok {
        return bad(format!("price must be positive, got {}", e.price));
    }
    let latest = chrono::Utc::now() + chrono::Duration::days(FUTURE_SLACK_DAYS);
    if e.time.timestamp_millis() <= 0 || e.time > latest {
        return bad(format!(
            "trade time {} is not after 1970 and before {}",
            e.time.to_rfc3339(),
            latest.date_naive()
        ));
    }
    if e.commission.abs() > limit || e.net_amount.abs() > limit * limit {
        return bad("commission or net amount out of range".into());
    }
    Ok(())
}

/// The position arithmetic shared by ingestion and recomputation, so the two
/// cannot drift: `B` adds, `S` and `N` reduce ([`ExecSide::signed`]), average
/// cost and realized PnL by [`Position::checked_apply_fill`]: a hostile file
/// gets an error, not an overflow panic.
fn apply(pos: &mut Position, e: &Execution) -> Result<()> {
    match pos.checked_apply_fill(e.side.signed(e.size), e.price) {
        Some(_) => Ok(()),
        // Unchanged on overflow, so the message shows the position as it was.
        None => Err(StoreError::InvalidExecution {
            execution_id: e.execution_id.clone(),
            reason: format!(
                "position arithmetic overflows (position {} in {})",
                pos.quantity, e.conid
            ),
        }),
    }
}

fn flat(conid: Conid) -> Position {
    Position::flat(conid, Decimal::ONE)
}

impl Store {
    /// Store one execution exactly once; moves its position only when it was
    /// new. Returns whether it was new.
    pub async fn record_execution(&self, exec: &Execution, raw_json: Option<&str>) -> Result<bool> {
        let got = self
            .record_executions(&[(exec.clone(), raw_json.map(str::to_owned))])
            .await?;
        Ok(got.new_count() == 1)
    }

    /// Store a batch in one transaction: every execution not yet stored is
    /// inserted and applied to its position, in the order given; the rest
    /// are counted as duplicates. Nothing is written when any is invalid.
    pub async fn record_executions(
        &self,
        batch: &[(Execution, Option<String>)],
    ) -> Result<Ingested> {
        for (e, _) in batch {
            validate(e)?;
        }
        // IMMEDIATE: take the write lock first, so no other writer can add
        // an execution between the lookup of known ids and the insert.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let recorded = now_ms();
        let mut out = Ingested::default();
        let mut seen: HashSet<&str> = HashSet::with_capacity(batch.len());
        let candidates: Vec<&(Execution, Option<String>)> = batch
            .iter()
            .filter(|(e, _)| seen.insert(e.execution_id.as_str()))
            .collect();
        // One JSON parameter in, one JSON row out: sqlx moves every row
        // between threads, which costs more than SQLite's work here.
        let ids: Vec<&str> = candidates
            .iter()
            .map(|(e, _)| e.execution_id.as_str())
            .collect();
        let known: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(execution_id) FROM executions \
             WHERE execution_id IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(&ids)?)
        .fetch_one(&mut *tx)
        .await?;
        let known: HashSet<String> = serde_json::from_str(known.as_deref().unwrap_or("[]"))?;
        check_same(&mut tx, batch, &known).await?;
        let fresh: Vec<&(Execution, Option<String>)> = candidates
            .into_iter()
            .filter(|(e, _)| !known.contains(&e.execution_id))
            .collect();
        out.duplicates = batch.len() - fresh.len();
        let mut inserted = 0u64;
        for chunk in fresh.chunks(CHUNK) {
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT INTO executions (execution_id, order_ref, engine_order_id, account, conid, \
                 side, size, price, commission, net_amount, trade_time_ms, raw_json, recorded_ms) ",
            );
            qb.push_values(chunk, |mut b, (e, raw)| {
                b.push_bind(e.execution_id.clone())
                    .push_bind(e.order_ref.clone())
                    .push_bind(e.order_id.map(|o| o.0 as i64))
                    .push_bind(e.account.clone())
                    .push_bind(e.conid.0)
                    .push_bind(e.side.code())
                    .push_bind(e.size.to_string())
                    .push_bind(e.price.to_string())
                    .push_bind(e.commission.to_string())
                    .push_bind(e.net_amount.to_string())
                    .push_bind(ms(e.time))
                    .push_bind(raw.clone())
                    .push_bind(recorded);
            });
            // The guard stays: a conflict here would mean the lookup lied.
            qb.push(" ON CONFLICT(execution_id) DO NOTHING");
            inserted += qb.build().execute(&mut *tx).await?.rows_affected();
        }
        if inserted != fresh.len() as u64 {
            return Err(StoreError::Inconsistent(format!(
                "expected to insert {} new executions, inserted {inserted}; nothing written",
                fresh.len()
            )));
        }
        let fresh: Vec<&Execution> = fresh.into_iter().map(|(e, _)| e).collect();
        out.new_ids = fresh.iter().map(|e| e.execution_id.clone()).collect();
        if fresh.is_empty() {
            tx.commit().await?;
            return Ok(out);
        }
        let mut keys: Vec<(&str, Conid)> = fresh
            .iter()
            .map(|e| (e.account.as_str(), e.conid))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut positions = load_positions(&mut tx, &keys).await?;
        for e in &fresh {
            let p = positions
                .entry((e.account.clone(), e.conid))
                .or_insert_with(|| flat(e.conid));
            apply(p, e)?;
        }
        let rows: Vec<_> = positions.into_iter().collect();
        for chunk in rows.chunks(CHUNK) {
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT INTO positions (account, conid, quantity, avg_cost, realized_pnl, updated_ms) ",
            );
            qb.push_values(chunk, |mut b, ((account, conid), p)| {
                b.push_bind(account.clone())
                    .push_bind(conid.0)
                    .push_bind(p.quantity.normalize().to_string())
                    .push_bind(p.avg_price.normalize().to_string())
                    .push_bind(p.realized_pnl.normalize().to_string())
                    .push_bind(recorded);
            });
            qb.push(
                " ON CONFLICT(account, conid) DO UPDATE SET quantity = excluded.quantity, \
                 avg_cost = excluded.avg_cost, realized_pnl = excluded.realized_pnl, \
                 updated_ms = excluded.updated_ms",
            );
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Stored executions with a trade time at or after `since` (all when
    /// `None`), oldest first.
    pub async fn executions(&self, since: Option<Timestamp>) -> Result<Vec<StoredExecution>> {
        let rows = sqlx::query(
            "SELECT execution_id, order_ref, engine_order_id, account, conid, side, size, price, \
             commission, net_amount, trade_time_ms, raw_json, recorded_ms FROM executions \
             WHERE trade_time_ms >= ? ORDER BY trade_time_ms, seq",
        )
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| execution_from_row(&r)).collect()
    }

    /// Whether `execution_id` is stored.
    pub async fn has_execution(&self, execution_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE execution_id = ?")
            .bind(execution_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// How many executions are stored.
    pub async fn execution_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM executions")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Every stored position, flat ones included (they keep realized PnL).
    pub async fn positions(&self) -> Result<Vec<StoredPosition>> {
        let rows = sqlx::query(
            "SELECT account, conid, quantity, avg_cost, realized_pnl FROM positions \
             ORDER BY account, conid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredPosition {
                    account: r.try_get("account")?,
                    conid: Conid(r.try_get("conid")?),
                    quantity: dec("positions", "quantity", r.try_get("quantity")?)?,
                    avg_cost: dec("positions", "avg_cost", r.try_get("avg_cost")?)?,
                    realized_pnl: dec("positions", "realized_pnl", r.try_get("realized_pnl")?)?,
                })
            })
            .collect()
    }

    /// Positions rebuilt from the executions table alone, in arrival order:
    /// what [`Store::positions`] must equal. For checks after a crash and
    /// for reconciliation.
    pub async fn recompute_positions(&self) -> Result<Vec<StoredPosition>> {
        let rows = sqlx::query(
            "SELECT execution_id, order_ref, engine_order_id, account, conid, side, size, price, \
             commission, net_amount, trade_time_ms, NULL AS raw_json, recorded_ms \
             FROM executions ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut book: HashMap<(String, Conid), Position> = HashMap::new();
        for r in rows {
            let e = execution_from_row(&r)?.execution;
            let p = book
                .entry((e.account.clone(), e.conid))
                .or_insert_with(|| flat(e.conid));
            apply(p, &e)?;
        }
        let mut out: Vec<StoredPosition> = book
            .into_iter()
            .map(|((account, conid), p)| StoredPosition {
                account,
                conid,
                quantity: p.quantity.normalize(),
                avg_cost: p.avg_price.normalize(),
                realized_pnl: p.realized_pnl.normalize(),
            })
            .collect();
        out.sort_by(|a, b| (&a.account, a.conid).cmp(&(&b.account, b.conid)));
        Ok(out)
    }
}

/// What makes two reports of one execution id the same fill: who, what,
/// which way, how many, at what price, for which order (when both name
/// one: a later run's fill under a reused id names another cOID).
/// Commission and net amount are left out (a `str` message may carry them
/// before the commission is known).
fn same_fill(a: &Execution, b: &Execution) -> bool {
    let same_order = match (&a.order_ref, &b.order_ref) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    same_order
        && a.account == b.account
        && a.conid == b.conid
        && a.side == b.side
        && a.size == b.size
        && a.price == b.price
}

fn conflict(new: &Execution, old: &Execution) -> StoreError {
    StoreError::ConflictingExecution {
        execution_id: new.execution_id.clone(),
        stored: describe(old),
        new: describe(new),
    }
}

fn describe(e: &Execution) -> String {
    format!(
        "{} {} {} {} @ {} (order {})",
        e.account,
        e.conid,
        e.side.code(),
        e.size,
        e.price,
        e.order_ref.as_deref().unwrap_or("-")
    )
}

/// A repeated execution id must be the same fill, within the batch and
/// against the table: a different fill under a known id (a venue or a
/// simulator that reuses ids, an edited file) is an error naming the id,
/// never silently dropped as a duplicate.
async fn check_same(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &[(Execution, Option<String>)],
    known: &HashSet<String>,
) -> Result<()> {
    let mut first: HashMap<&str, &Execution> = HashMap::with_capacity(batch.len());
    for (e, _) in batch {
        match first.get(e.execution_id.as_str()) {
            Some(f) if !same_fill(f, e) => return Err(conflict(e, f)),
            Some(_) => {}
            None => {
                first.insert(e.execution_id.as_str(), e);
            }
        }
    }
    if known.is_empty() {
        return Ok(());
    }
    let ids: Vec<&String> = known.iter().collect();
    let rows = sqlx::query(
        "SELECT execution_id, order_ref, engine_order_id, account, conid, side, size, price, \
         commission, net_amount, trade_time_ms, NULL AS raw_json, recorded_ms FROM executions \
         WHERE execution_id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&ids)?)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let stored = execution_from_row(&r)?.execution;
        if let Some(e) = first.get(stored.execution_id.as_str()) {
            if !same_fill(e, &stored) {
                return Err(conflict(e, &stored));
            }
        }
    }
    Ok(())
}

/// The stored positions of `keys`, in a few multi-row lookups rather than
/// one query per key (the per-statement cost dominates ingestion).
async fn load_positions(
    tx: &mut Transaction<'_, Sqlite>,
    keys: &[(&str, Conid)],
) -> Result<HashMap<(String, Conid), Position>> {
    let mut out = HashMap::with_capacity(keys.len());
    let wanted: Vec<(&str, i64)> = keys.iter().map(|(a, c)| (*a, c.0)).collect();
    let found: Option<String> = sqlx::query_scalar(
        "SELECT json_group_array(json_array(account, conid, quantity, avg_cost, realized_pnl)) \
         FROM positions WHERE (account, conid) IN \
         (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
    )
    .bind(serde_json::to_string(&wanted)?)
    .fetch_one(&mut **tx)
    .await?;
    let rows: Vec<(String, i64, String, String, String)> =
        serde_json::from_str(found.as_deref().unwrap_or("[]"))?;
    for (account, conid, quantity, avg_cost, realized) in rows {
        let conid = Conid(conid);
        let mut p = flat(conid);
        p.quantity = dec("positions", "quantity", quantity)?;
        p.avg_price = dec("positions", "avg_cost", avg_cost)?;
        p.realized_pnl = dec("positions", "realized_pnl", realized)?;
        out.insert((account, conid), p);
    }
    Ok(out)
}

fn execution_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredExecution> {
    const T: &str = "executions";
    let side: String = r.try_get("side")?;
    let engine_order_id: Option<i64> = r.try_get("engine_order_id")?;
    Ok(StoredExecution {
        execution: Execution {
            execution_id: r.try_get("execution_id")?,
            order_id: engine_order_id.map(|v| OrderId(v as u64)),
            order_ref: r.try_get("order_ref")?,
            account: r.try_get("account")?,
            conid: Conid(r.try_get("conid")?),
            side: parse_code(T, "side", side, ExecSide::from_code)?,
            size: dec(T, "size", r.try_get("size")?)?,
            price: dec(T, "price", r.try_get("price")?)?,
            commission: dec(T, "commission", r.try_get("commission")?)?,
            net_amount: dec(T, "net_amount", r.try_get("net_amount")?)?,
            time: from_ms(T, "trade_time_ms", r.try_get("trade_time_ms")?)?,
        },
        raw_json: r.try_get("raw_json")?,
        recorded: from_ms(T, "recorded_ms", r.try_get("recorded_ms")?)?,
    })
}
