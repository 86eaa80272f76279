//! Strategy state, backtest runs, the bar cache and ForecastEx strike pairs.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::codec::{dec, from_ms, ms, now_ms, opt_dec};
use super::{Result, Store, StoreError};
use engine::forecastex::{Pairing, Right, StrikePair, StrikePosition, StrikeSide};
use engine::model::{Bar, Conid, Timestamp};
use engine::strategy::{SavedState, MAX_STATE_BYTES};

/// A finished backtest: what ran, on what, and its summary document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestRun {
    /// Strategy name.
    pub strategy: String,
    /// The parameters it ran with, as text.
    pub params: BTreeMap<String, String>,
    /// What data it ran on (a file path or a description).
    pub data: String,
    /// When the run was made.
    pub created: Timestamp,
    /// The `summary.json` document. Its scalar top-level fields are also
    /// stored one per row (backtest_metrics) for ranking in SQL.
    pub summary: serde_json::Value,
}

impl Store {
    /// Set one key of a strategy's resumable state.
    pub async fn set_state(
        &self,
        strategy: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO strategy_state (strategy, key, value, updated_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT(strategy, key) DO UPDATE SET value = excluded.value, \
             updated_ms = excluded.updated_ms",
        )
        .bind(strategy)
        .bind(key)
        .bind(serde_json::to_string(value)?)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One key of a strategy's state; `None` when never set (or deleted).
    pub async fn get_state(&self, strategy: &str, key: &str) -> Result<Option<serde_json::Value>> {
        let v: Option<String> =
            sqlx::query_scalar("SELECT value FROM strategy_state WHERE strategy = ? AND key = ?")
                .bind(strategy)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.map(|s| serde_json::from_str(&s)).transpose()?)
    }

    /// Every key of a strategy's state.
    pub async fn state(&self, strategy: &str) -> Result<BTreeMap<String, serde_json::Value>> {
        let rows = sqlx::query("SELECT key, value FROM strategy_state WHERE strategy = ?")
            .bind(strategy)
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let v: String = r.try_get("value")?;
            out.insert(r.try_get("key")?, serde_json::from_str(&v)?);
        }
        Ok(out)
    }

    /// Delete one key of a strategy's state; returns whether it existed.
    pub async fn delete_state(&self, strategy: &str, key: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM strategy_state WHERE strategy = ? AND key = ?")
            .bind(strategy)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Keep `json` as the state of the strategy at `index` named `name`
    /// (the live engine's [`engine::journal::Journal::save_strategy_state`]),
    /// replacing what that index held: last write wins, with the time of
    /// the write. Refused, writing nothing, when larger than
    /// [`MAX_STATE_BYTES`] ([`StoreError::InvalidState`]) or not JSON
    /// ([`StoreError::Json`]).
    pub async fn save_strategy_snapshot(&self, index: usize, name: &str, json: &str) -> Result<()> {
        let invalid = |reason: String| StoreError::InvalidState {
            index,
            name: name.to_owned(),
            reason,
        };
        if json.len() > MAX_STATE_BYTES {
            return Err(invalid(format!(
                "{} bytes of JSON, more than the {MAX_STATE_BYTES} allowed",
                json.len()
            )));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(json)?;
        let slot = i64::try_from(index).map_err(|_| invalid("index out of range".into()))?;
        sqlx::query(
            "INSERT INTO strategy_snapshots (slot, name, state_json, updated_ms) \
             VALUES (?, ?, ?, ?) \
             ON CONFLICT(slot) DO UPDATE SET name = excluded.name, \
             state_json = excluded.state_json, updated_ms = excluded.updated_ms",
        )
        .bind(slot)
        .bind(name)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every strategy state kept, by index, with when it was written. The
    /// JSON comes back as stored, parsed or not (the strategy reading it
    /// finds out whether it still fits); a row no strategy could have
    /// written (a negative index, text over [`MAX_STATE_BYTES`]) is
    /// [`StoreError::Corrupt`].
    pub async fn strategy_snapshots(&self) -> Result<Vec<(SavedState, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT slot, name, state_json, updated_ms FROM strategy_snapshots ORDER BY slot",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let slot: i64 = r.try_get("slot")?;
            let index = usize::try_from(slot).map_err(|_| StoreError::Corrupt {
                table: "strategy_snapshots",
                column: "slot",
                value: slot.to_string(),
            })?;
            let json: String = r.try_get("state_json")?;
            if json.len() > MAX_STATE_BYTES {
                return Err(StoreError::Corrupt {
                    table: "strategy_snapshots",
                    column: "state_json",
                    value: format!("{} bytes of text", json.len()),
                });
            }
            let updated = from_ms("strategy_snapshots", "updated_ms", r.try_get("updated_ms")?)?;
            out.push((
                SavedState {
                    index,
                    name: r.try_get("name")?,
                    json,
                },
                updated,
            ));
        }
        Ok(out)
    }

    /// Forget the state of the strategy at `index` (e.g. before running a
    /// changed strategy that must start afresh); returns whether one was
    /// kept.
    pub async fn delete_strategy_snapshot(&self, index: usize) -> Result<bool> {
        let Ok(slot) = i64::try_from(index) else {
            return Ok(false);
        };
        let r = sqlx::query("DELETE FROM strategy_snapshots WHERE slot = ?")
            .bind(slot)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Save a backtest run; returns its id.
    pub async fn save_backtest_run(&self, run: &BacktestRun) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO backtest_runs (strategy, params_json, data, created_ms, summary_json) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&run.strategy)
        .bind(serde_json::to_string(&run.params)?)
        .bind(&run.data)
        .bind(ms(run.created))
        .bind(serde_json::to_string(&run.summary)?)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(obj) = run.summary.as_object() {
            for (name, v) in obj {
                let text = match v {
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                sqlx::query("INSERT INTO backtest_metrics (run_id, name, value) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(name)
                    .bind(text)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Stored runs, oldest first, with their ids.
    pub async fn backtest_runs(&self) -> Result<Vec<(i64, BacktestRun)>> {
        let rows = sqlx::query(
            "SELECT id, strategy, params_json, data, created_ms, summary_json FROM backtest_runs \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let params: String = r.try_get("params_json")?;
                let summary: String = r.try_get("summary_json")?;
                Ok((
                    r.try_get("id")?,
                    BacktestRun {
                        strategy: r.try_get("strategy")?,
                        params: serde_json::from_str(&params)?,
                        data: r.try_get("data")?,
                        created: from_ms("backtest_runs", "created_ms", r.try_get("created_ms")?)?,
                        summary: serde_json::from_str(&summary)?,
                    },
                ))
            })
            .collect()
    }

    /// Cache bars of one bar size (the API's spelling, e.g. `1min`, `1d`);
    /// a bar already cached at the same time is replaced.
    pub async fn put_bars(&self, bar_size: &str, bars: &[Bar]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in bars.chunks(512) {
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO bar_cache (conid, bar_size, time_ms, open, high, low, \
                 close, volume) ",
            );
            qb.push_values(chunk, |mut b, bar| {
                b.push_bind(bar.conid.0)
                    .push_bind(bar_size.to_owned())
                    .push_bind(ms(bar.time))
                    .push_bind(bar.open.to_string())
                    .push_bind(bar.high.to_string())
                    .push_bind(bar.low.to_string())
                    .push_bind(bar.close.to_string())
                    .push_bind(bar.volume.to_string());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cached bars of `conid` and `bar_size` with `from <= time < to`, in
    /// time order.
    pub async fn bars(
        &self,
        conid: Conid,
        bar_size: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Bar>> {
        let rows = sqlx::query(
            "SELECT time_ms, open, high, low, close, volume FROM bar_cache \
             WHERE conid = ? AND bar_size = ? AND time_ms >= ? AND time_ms < ? ORDER BY time_ms",
        )
        .bind(conid.0)
        .bind(bar_size)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        const T: &str = "bar_cache";
        rows.into_iter()
            .map(|r| {
                Ok(Bar {
                    conid,
                    time: from_ms(T, "time_ms", r.try_get("time_ms")?)?,
                    open: dec(T, "open", r.try_get("open")?)?,
                    high: dec(T, "high", r.try_get("high")?)?,
                    low: dec(T, "low", r.try_get("low")?)?,
                    close: dec(T, "close", r.try_get("close")?)?,
                    volume: dec(T, "volume", r.try_get("volume")?)?,
                })
            })
            .collect()
    }

    /// Remember the event contracts (`/trsrv/event/contracts` records, read
    /// by `cpapi::messages::EventContracts::records`) so positions can be
    /// netted per strike. Records are validated by pairing them first.
    pub async fn put_event_contracts(&self, records: &[StrikeSide]) -> Result<()> {
        Pairing::from_records(records)?;
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT OR REPLACE INTO event_contracts (conid, underlying_conid, expiration, \
                 strike, strike_label, put_or_call, payout) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.conid.0)
            .bind(r.underlying_conid.0)
            .bind(&r.expiration)
            .bind(r.strike.normalize().to_string())
            .bind(&r.strike_label)
            .bind(r.right.as_put_or_call())
            .bind(r.payout.unwrap_or(rust_decimal::Decimal::ONE).to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The YES/NO pairing of every stored event contract.
    pub async fn pairing(&self) -> Result<Pairing> {
        let rows = sqlx::query(
            "SELECT conid, underlying_conid, expiration, strike, strike_label, put_or_call, payout \
             FROM event_contracts ORDER BY conid",
        )
        .fetch_all(&self.pool)
        .await?;
        const T: &str = "event_contracts";
        let mut records = Vec::with_capacity(rows.len());
        for r in rows {
            let right: String = r.try_get("put_or_call")?;
            records.push(StrikeSide {
                conid: Conid(r.try_get("conid")?),
                underlying_conid: Conid(r.try_get("underlying_conid")?),
                expiration: r.try_get("expiration")?,
                strike: dec(T, "strike", r.try_get("strike")?)?,
                strike_label: r.try_get("strike_label")?,
                right: right.parse::<Right>().map_err(|_| StoreError::Corrupt {
                    table: T,
                    column: "put_or_call",
                    value: right.clone(),
                })?,
                payout: opt_dec(T, "payout", r.try_get("payout")?)?,
            });
        }
        Ok(Pairing::from_records(&records)?)
    }

    /// Holdings per ForecastEx strike and account, from the stored
    /// positions. A strike whose netting is complete has at most one side.
    pub async fn event_positions(&self) -> Result<Vec<(String, StrikePair, StrikePosition)>> {
        let pairing = self.pairing().await?;
        let mut out: BTreeMap<(String, Conid, Conid), (StrikePair, StrikePosition)> =
            BTreeMap::new();
        for p in self.positions().await? {
            let Some((pair, right)) = pairing.lookup(p.conid) else {
                continue;
            };
            let e = out
                .entry((p.account.clone(), pair.yes, pair.no))
                .or_insert_with(|| (pair.clone(), StrikePosition::default()));
            match right {
                Right::Yes => e.1.yes = p.quantity,
                Right::No => e.1.no = p.quantity,
            }
        }
        Ok(out
            .into_iter()
            .map(|((account, _, _), (pair, pos))| (account, pair, pos))
            .collect())
    }
}
