//! The journal seam: where a live run writes down every order change and
//! every execution as it happens, and what it compares with the venue at
//! start.
//!
//! The engine does not know how a journal stores things (the `store` crate
//! implements it on SQLite); it only promises to call it for each change,
//! so a restarted bot can tell what it owns and what it sent. A journal
//! failure is reported, never fatal to trading: the venue is the record of
//! truth, and reconciliation finds what a failed write missed.

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::{Conid, Execution, Order, OrderStatus};
use crate::strategy::SavedState;

/// An order as the journal keeps it: the engine's order with the names the
/// venue knows it by.
#[derive(Debug, Clone, Copy)]
pub struct JournalOrder<'a> {
    /// The order, as the engine now holds it.
    pub order: &'a Order,
    /// The account it was placed in.
    pub account: &'a str,
    /// The cOID on the wire (with the run's prefix).
    pub client_order_id: &'a str,
    /// The parent's cOID on the wire, for bracket children.
    pub parent: Option<&'a str>,
}

/// How a journal knows a working order: the gateway's id, the cOID on the
/// wire, and the parent's cOID for a bracket child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingOrderIds {
    /// The gateway's order id.
    pub broker_order_id: String,
    /// The cOID (with the run's prefix).
    pub client_order_id: String,
    /// The parent's cOID, for bracket children.
    pub parent: Option<String>,
}

/// A position as the broker reports it (`/portfolio/{acct}/positions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerPosition {
    /// Account holding it.
    pub account: String,
    /// Contract.
    pub conid: Conid,
    /// Signed quantity.
    pub quantity: Decimal,
}

/// An order as the broker reports it (`/iserver/account/orders`, `sor`),
/// matched to ours by `order_ref` (the cOID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerOrder {
    /// The cOID on the wire.
    pub client_order_id: String,
    /// The broker's status.
    pub status: OrderStatus,
    /// Quantity filled so far.
    pub filled_quantity: Decimal,
}

/// What the venue reports at start, for [`Journal::reconcile`].
#[derive(Debug, Clone, Default)]
pub struct VenueReport {
    /// The venue's recent executions (the last 7 days on IBKR).
    pub executions: Vec<Execution>,
    /// Positions, or `None` when they could not be fetched.
    pub positions: Option<Vec<BrokerPosition>>,
    /// Working orders, or `None` when they could not be fetched.
    pub orders: Option<Vec<BrokerOrder>>,
}

/// One difference between the journal and the venue that the journal
/// could not explain. Reported, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Discrepancy {
    /// Quantities differ (a missing or extra execution, or a position
    /// opened outside the engine).
    Position {
        /// Account.
        account: String,
        /// Contract.
        conid: Conid,
        /// What the journal's executions add up to.
        local: Decimal,
        /// What the broker reports.
        broker: Decimal,
    },
    /// An order we hold as open that the broker does not list.
    OrderMissingAtBroker {
        /// Its cOID.
        client_order_id: String,
    },
    /// The broker lists an order with a cOID we never stored.
    UnknownOrder {
        /// Its cOID.
        client_order_id: String,
    },
    /// Status or filled quantity differ.
    OrderState {
        /// Its cOID.
        client_order_id: String,
        /// Ours: status and filled quantity.
        local: (OrderStatus, Decimal),
        /// The broker's.
        broker: (OrderStatus, Decimal),
    },
}

/// What reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Executions the journal had missed and has now ingested.
    pub ingested: usize,
    /// Differences left after ingesting them.
    pub discrepancies: Vec<Discrepancy>,
}

/// Why a journal write or read failed.
#[derive(Debug, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

/// Where a live run records what it does.
#[async_trait]
pub trait Journal: Send {
    /// An order was placed, or its status, fill or shape changed.
    async fn record_order(&mut self, order: JournalOrder<'_>) -> Result<(), JournalError>;
    /// An execution arrived (the same id twice is kept once).
    async fn record_execution(&mut self, execution: &Execution) -> Result<(), JournalError>;
    /// Ingest the venue's executions the journal missed, then compare
    /// positions and open orders with the venue's.
    async fn reconcile(
        &mut self,
        account: &str,
        venue: VenueReport,
    ) -> Result<Reconciled, JournalError>;

    /// Keep `json` as the state of the strategy at `index` named `name`,
    /// replacing what was kept for that index (last write wins). A journal
    /// refuses a state larger than
    /// [`MAX_STATE_BYTES`](crate::strategy::MAX_STATE_BYTES).
    ///
    /// The default keeps nothing (a journal without state storage): the
    /// next run's strategies then start without saved state.
    async fn save_strategy_state(
        &mut self,
        index: usize,
        name: &str,
        json: &str,
    ) -> Result<(), JournalError> {
        let _ = (index, name, json);
        Ok(())
    }

    /// Every strategy state kept, for
    /// [`Dispatcher::restore_states`](crate::dispatch::Dispatcher::restore_states)
    /// at start. The JSON is returned as stored: whether it still fits the
    /// strategy is for the strategy to find out (it gets an error, never a
    /// panic). The default (a journal without state storage) has none.
    async fn load_strategy_states(&mut self) -> Result<Vec<SavedState>, JournalError> {
        Ok(Vec::new())
    }

    /// The ids of each order the journal last saw working. A restarted
    /// bot finds its bracket children by these: the gateway lists a child
    /// without its cOID (the spec sends none for children). The default (a
    /// journal that cannot read back) knows none.
    async fn working_order_ids(&mut self) -> Result<Vec<WorkingOrderIds>, JournalError> {
        Ok(Vec::new())
    }
}
