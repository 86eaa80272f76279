//! The seam between the engine and a venue: where approved orders go.
//!
//! The [`crate::router::Router`] is the only caller of [`Venue::place`],
//! [`Venue::cancel`] and [`Venue::modify`]; the backtest's simulated venue,
//! the CP Gateway simulator's desk and the live IBKR broker each implement
//! the trait, so the path from an intent to an order is written once.
//!
//! A venue answers by appending events to `out`: the order updates its
//! answer implies (accepted, rejected, cancel requested; a cancelled
//! parent's children too), and executions when it fills at once. Later
//! reports (fills on the next bar, websocket `sor`/`str`) reach the router
//! through [`crate::router::Router::deliver`].
//!
//! The methods are `async` because a live venue is a network round trip. A
//! simulated venue completes at once; the backtest drives it with
//! [`crate::router::now_or_never`] and never needs an executor.

use std::future::Future;

use crate::event::Event;
use crate::model::{Execution, Order, OrderChanges, OrderId, OrderRequest, Position, Timestamp};

/// Why a venue refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    /// The venue refused the order (its reason).
    #[error("order rejected: {0}")]
    Rejected(String),
    /// No such order at this venue.
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    /// The order is finished (filled, cancelled) and cannot change.
    #[error("order {0} can no longer be changed: it is {1}")]
    NotWorking(OrderId, String),
    /// The venue could not be asked (network, session, pacing).
    #[error("venue unavailable: {0}")]
    Unavailable(String),
    /// The venue answered with something the engine cannot read (an order
    /// of an unknown type, say). Not transient: retrying reads it again.
    #[error("venue sent what the engine cannot read: {0}")]
    Unreadable(String),
}

/// A venue that takes orders.
pub trait Venue {
    /// Place one batch (a single order, a bracket, or an OCA group) for
    /// `strategy`, as one submission. The orders' updates go to `out`; a
    /// refused batch is reported there too, each order `Inactive` with the
    /// reason, before the error returns.
    fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> impl Future<Output = Result<(), VenueError>> + Send;

    /// Ask to cancel a working order (its children go with it).
    fn cancel(
        &mut self,
        id: OrderId,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> impl Future<Output = Result<(), VenueError>> + Send;

    /// Change quantity or prices of a working order.
    fn modify(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> impl Future<Output = Result<(), VenueError>> + Send;
}

/// What a venue holds, for reconciliation and for seeding a restarted
/// engine.
pub trait VenueState {
    /// Non-flat positions.
    fn positions(&self) -> impl Future<Output = Result<Vec<Position>, VenueError>> + Send;
    /// Working orders. An order the venue lists but the engine cannot read
    /// is an error naming it, never skipped.
    fn orders(&self) -> impl Future<Output = Result<Vec<Order>, VenueError>> + Send;
    /// Recent executions.
    fn executions(&self) -> impl Future<Output = Result<Vec<Execution>, VenueError>> + Send;
}
