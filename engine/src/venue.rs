//! The async seams between the engine and a venue.
//!
//! [`Venue`] is the only way orders leave the engine; [`MarketData`] the only
//! way prices enter it. The backtest, the CP Gateway simulator and the live
//! IBKR client each implement them, so execution logic is written once.

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::event::Event;
use crate::model::{Execution, Order, OrderId, OrderRequest, Position};

/// Why a venue refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    #[error("order rejected: {0}")]
    Rejected(String),
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    #[error("order {0} can no longer be changed: it is {1}")]
    NotWorking(OrderId, String),
    #[error("venue unavailable: {0}")]
    Unavailable(String),
    /// The venue answered with something the engine cannot read (an order
    /// of an unknown type, say). Not transient: retrying reads it again.
    #[error("venue sent what the engine cannot read: {0}")]
    Unreadable(String),
}

/// Changes to a working order; `None` keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderChanges {
    pub quantity: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
}

impl OrderChanges {
    /// Write the given values into `req`, keeping the rest.
    pub fn apply_to(&self, req: &mut OrderRequest) {
        if let Some(q) = self.quantity {
            req.quantity = q;
        }
        if self.limit_price.is_some() {
            req.limit_price = self.limit_price;
        }
        if self.stop_price.is_some() {
            req.stop_price = self.stop_price;
        }
    }
}

/// A venue that takes orders.
#[async_trait]
pub trait Venue: Send {
    /// Place one batch (single order, bracket or OCA group). Returns the
    /// accepted orders in batch order.
    async fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
    ) -> Result<Vec<Order>, VenueError>;
    async fn cancel(&mut self, id: OrderId) -> Result<Order, VenueError>;
    async fn modify(&mut self, id: OrderId, changes: OrderChanges) -> Result<Order, VenueError>;
    async fn positions(&self) -> Result<Vec<Position>, VenueError>;
    /// Working orders.
    async fn orders(&self) -> Result<Vec<Order>, VenueError>;
    async fn executions(&self) -> Result<Vec<Execution>, VenueError>;
}

/// Why a market data source stopped.
#[derive(Debug, thiserror::Error)]
pub enum MarketDataError {
    #[error("market data source failed: {0}")]
    Source(String),
}

/// A source of market events in time order.
///
/// Events come in batches: one await per batch keeps the async overhead off
/// the per-bar path when a backtest replays millions of bars.
#[async_trait]
pub trait MarketData: Send {
    /// Append the next events to `out`; returns how many were added, zero at
    /// the end of the data.
    async fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<usize, MarketDataError>;
}
