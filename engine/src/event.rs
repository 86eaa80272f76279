//! Everything that can happen to a strategy, as one enum: market data,
//! order and execution reports, timers, session state, venue PnL and
//! reconciliation findings. Backtest and live produce the same events.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::{Bar, Execution, Order, Quote, Timestamp};
use crate::strategy::TimerId;

/// Connection and session state reported by the venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionStatus {
    pub authenticated: bool,
    pub connected: bool,
    pub competing: bool,
    pub message: Option<String>,
}

/// Profit and loss for an account as the venue reports it (`spl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PnlUpdate {
    pub account: String,
    pub daily_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub net_liquidation: Option<Decimal>,
}

/// Everything that can happen to a strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Bar(Bar),
    Quote(Quote),
    OrderUpdate(Order),
    Execution(Execution),
    Timer {
        strategy: usize,
        id: TimerId,
        at: Timestamp,
    },
    Session(SessionStatus),
    Pnl(PnlUpdate),
    /// Reconciliation found the store and the broker disagreeing; the text
    /// says where. Nothing was overwritten.
    Discrepancy(String),
}
