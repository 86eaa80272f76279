//! Orders against executions: what `ibflow db check` reports beyond
//! SQLite's own integrity check. A store whose orders and executions
//! disagree is a history that stopped being true (an order filled while
//! the bot was down and never resolved, an execution whose order row was
//! lost), and nothing else would say so.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::{Result, Store};
use engine::model::{ExecSide, OrderStatus};

/// One disagreement between the orders and the executions tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HistoryProblem {
    /// An order marked filled whose executions (by `order_ref`) do not add
    /// up to its quantity.
    FilledWithoutExecutions {
        /// Its cOID.
        client_order_id: String,
        /// Its quantity.
        quantity: Decimal,
        /// What its executions add up to.
        executed: Decimal,
    },
    /// An order still open in the store whose executions already add up to
    /// its quantity: its status was never updated.
    OpenButExecuted {
        /// Its cOID.
        client_order_id: String,
        /// The stored status.
        status: OrderStatus,
        /// What its executions add up to.
        executed: Decimal,
    },
    /// Executions whose `order_ref` is an ibflow cOID no order row has.
    ExecutionsWithoutOrder {
        /// The cOID they name.
        order_ref: String,
        /// How many executions.
        count: usize,
    },
    /// An order open in the store and not updated for longer than the
    /// broker's trades window: its fills, if any, can no longer be fetched.
    StaleOpenOrder {
        /// Its cOID.
        client_order_id: String,
        /// The stored status.
        status: OrderStatus,
        /// When it was last updated (RFC 3339).
        updated: String,
    },
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryCheck {
    /// Orders checked.
    pub orders: usize,
    /// Bracket children not checked: they carry no cOID on the wire, so
    /// their executions have no `order_ref` to match.
    pub children_unchecked: usize,
    /// Executions whose `order_ref` is not an ibflow cOID (TWS, imports):
    /// not expected to have an order row.
    pub foreign_executions: usize,
    /// The disagreements.
    pub problems: Vec<HistoryProblem>,
}

impl Store {
    /// Compare orders with executions (see [`HistoryProblem`]). An open
    /// order not updated within `trades_window_days` of `now` is stale:
    /// `/iserver/account/trades` reaches back 7 days at most.
    pub async fn check_history(
        &self,
        now: engine::model::Timestamp,
        trades_window_days: i64,
    ) -> Result<HistoryCheck> {
        let orders = self.orders().await?;
        let executions = self.executions(None).await?;
        let mut executed: HashMap<&str, (Decimal, usize)> = HashMap::new();
        for e in &executions {
            let e = &e.execution;
            if e.side == ExecSide::Netting {
                continue;
            }
            if let Some(r) = e.order_ref.as_deref() {
                let slot = executed.entry(r).or_default();
                slot.0 = slot.0.checked_add(e.size).unwrap_or(Decimal::MAX);
                slot.1 += 1;
            }
        }
        let mut out = HistoryCheck {
            orders: orders.len(),
            ..HistoryCheck::default()
        };
        // A window beyond chrono's range reaches back to the beginning.
        let cutoff = chrono::Duration::try_days(trades_window_days)
            .and_then(|w| now.checked_sub_signed(w))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        for o in &orders {
            let coid = o.client_order_id.as_str();
            let done = executed.get(coid).map(|x| x.0).unwrap_or_default();
            if o.parent.is_some() && done.is_zero() {
                out.children_unchecked += 1;
            } else if o.status == OrderStatus::Filled && done != o.quantity {
                out.problems.push(HistoryProblem::FilledWithoutExecutions {
                    client_order_id: coid.to_owned(),
                    quantity: o.quantity,
                    executed: done,
                });
            } else if o.is_open() && done >= o.quantity {
                out.problems.push(HistoryProblem::OpenButExecuted {
                    client_order_id: coid.to_owned(),
                    status: o.status,
                    executed: done,
                });
            }
            if o.is_open() && o.updated < cutoff {
                out.problems.push(HistoryProblem::StaleOpenOrder {
                    client_order_id: coid.to_owned(),
                    status: o.status,
                    updated: o.updated.to_rfc3339(),
                });
            }
        }
        let known: std::collections::HashSet<&str> =
            orders.iter().map(|o| o.client_order_id.as_str()).collect();
        let mut missing: Vec<(&str, usize)> = Vec::new();
        for (r, (_, n)) in &executed {
            if known.contains(r) {
                continue;
            }
            if cpapi::order_ticket::CoidParts::parse(r).is_some() {
                missing.push((r, *n));
            } else {
                out.foreign_executions += n;
            }
        }
        missing.sort_unstable();
        out.problems.extend(missing.into_iter().map(|(r, count)| {
            HistoryProblem::ExecutionsWithoutOrder {
                order_ref: r.to_owned(),
                count,
            }
        }));
        Ok(out)
    }
}

impl super::StoredOrder {
    /// Not yet filled, cancelled or inactive.
    pub fn is_open(&self) -> bool {
        !matches!(
            self.status,
            OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Inactive
        )
    }
}
