//! At start, orders the store holds as working are brought up to date with
//! what happened while the bot was down, rather than left `Submitted`
//! forever and reported missing at every start:
//!
//! * an order the broker lists as finished (filled, cancelled, inactive)
//!   takes the broker's status and filled quantity;
//! * an order the broker no longer lists is filled when its executions (by
//!   `order_ref`, after the broker's recent trades were ingested) add up to
//!   its quantity.
//!
//! What neither explains stays open and is reported by the comparison
//! ([`crate::Discrepancy::OrderMissingAtBroker`]). The broker's trades
//! reach back 7 days (`/iserver/account/trades?days=7`): a store last
//! written longer ago than that has a gap no fetch can fill, reported by
//! [`Store::history_gap`].

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::Row;

use super::codec::{from_ms, ms};
use super::{BrokerOrder, OrderStatusUpdate, Result, Store};
use engine::model::{OrderStatus, Timestamp};

/// One order whose stored status was brought up to date at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedOrder {
    /// Its cOID.
    pub client_order_id: String,
    /// The status stored before.
    pub was: OrderStatus,
    /// The status stored now.
    pub now: OrderStatus,
    /// Where the new status comes from.
    pub source: &'static str,
}

/// Days of the stored history a restart cannot recover from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryGap {
    /// The last time the store recorded anything (an execution, an order
    /// change).
    pub last_recorded: Timestamp,
    /// The earliest trade time the broker still reports: executions between
    /// `last_recorded` and this are lost to the store.
    pub recoverable_from: Timestamp,
}

impl Store {
    /// Bring the stored working orders up to date with the broker's list
    /// (`broker`) and the stored executions (see the module doc); returns
    /// what changed. Call after ingesting the broker's recent executions.
    pub async fn resolve_open_orders(
        &self,
        broker: &[BrokerOrder],
        now: Timestamp,
    ) -> Result<Vec<ResolvedOrder>> {
        let listed: HashMap<&str, &BrokerOrder> = broker
            .iter()
            .filter(|b| !b.client_order_id.is_empty())
            .map(|b| (b.client_order_id.as_str(), b))
            .collect();
        let mut out = Vec::new();
        for o in self.open_orders().await? {
            let coid = o.client_order_id.as_str();
            let update = match listed.get(coid) {
                Some(b) if b.status.is_terminal() => {
                    Some((b.status, b.filled_quantity, None, "the broker's order list"))
                }
                Some(_) => None,
                None => {
                    let (executed, avg) = self.executed(coid).await?;
                    (!executed.is_zero() && executed >= o.quantity).then_some((
                        OrderStatus::Filled,
                        executed,
                        avg,
                        "its executions (/iserver/account/trades)",
                    ))
                }
            };
            let Some((status, filled, avg, source)) = update else {
                continue;
            };
            self.store_resolution(coid, status, filled, avg, source, now)
                .await?;
            out.push(ResolvedOrder {
                client_order_id: o.client_order_id,
                was: o.status,
                now: status,
                source,
            });
        }
        Ok(out)
    }

    /// Apply what the broker's order status endpoint says of a stored
    /// working order (the live list no longer shows it): a final status
    /// (filled, cancelled, inactive) is stored with its filled quantity;
    /// anything else changes nothing. Returns whether the order was
    /// resolved.
    pub async fn resolve_from_status(
        &self,
        client_order_id: &str,
        status: OrderStatus,
        filled_quantity: Decimal,
        avg_fill_price: Option<Decimal>,
        now: Timestamp,
    ) -> Result<bool> {
        if !status.is_terminal() {
            return Ok(false);
        }
        self.store_resolution(
            client_order_id,
            status,
            filled_quantity,
            avg_fill_price,
            "/iserver/account/order/status",
            now,
        )
        .await
    }

    /// Store a status found at start for a stored working order, with
    /// where it came from as the reason; whether the row changed.
    async fn store_resolution(
        &self,
        client_order_id: &str,
        status: OrderStatus,
        filled_quantity: Decimal,
        avg_fill_price: Option<Decimal>,
        source: &str,
        now: Timestamp,
    ) -> Result<bool> {
        self.update_order_status(&OrderStatusUpdate {
            client_order_id: client_order_id.to_owned(),
            broker_order_id: None,
            status,
            filled_quantity,
            avg_fill_price,
            reason: Some(format!("resolved at start from {source}")),
            time: now,
        })
        .await
    }

    /// Units executed for `order_ref` and their average price (`None`
    /// without executions, or when the sum does not fit).
    async fn executed(&self, order_ref: &str) -> Result<(Decimal, Option<Decimal>)> {
        let rows = sqlx::query(
            "SELECT size, price FROM executions WHERE order_ref = ? AND side <> 'N' ORDER BY seq",
        )
        .bind(order_ref)
        .fetch_all(&self.pool)
        .await?;
        let mut size = Decimal::ZERO;
        let mut value = Some(Decimal::ZERO);
        for r in rows {
            let s = super::codec::dec("executions", "size", r.try_get("size")?)?;
            let p = super::codec::dec("executions", "price", r.try_get("price")?)?;
            size = size.checked_add(s).unwrap_or(Decimal::MAX);
            value = match (value, s.checked_mul(p)) {
                (Some(v), Some(x)) => v.checked_add(x),
                _ => None,
            };
        }
        let avg = value
            .and_then(|v| v.checked_div(size))
            .map(|a| a.round_dp(8));
        Ok((size, if size.is_zero() { None } else { avg }))
    }

    /// The span no restart can recover: when the store last recorded
    /// anything more than `window_days` before `now` (the broker's trades
    /// reach back that far at most), executions from then until
    /// `now - window_days` cannot be fetched any more. `None` for an empty
    /// store or a short absence.
    pub async fn history_gap(
        &self,
        now: Timestamp,
        window_days: i64,
    ) -> Result<Option<HistoryGap>> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(t) FROM (SELECT MAX(recorded_ms) AS t FROM executions \
             UNION ALL SELECT MAX(updated_ms) FROM orders)",
        )
        .fetch_one(&self.pool)
        .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        let last = from_ms("executions", "recorded_ms", last)?;
        // A window beyond chrono's range reaches back to the beginning.
        let recoverable_from = chrono::Duration::try_days(window_days)
            .and_then(|w| now.checked_sub_signed(w))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        if ms(last) >= ms(recoverable_from) {
            return Ok(None);
        }
        Ok(Some(HistoryGap {
            last_recorded: last,
            recoverable_from,
        }))
    }
}
