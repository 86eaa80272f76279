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
    /// The brokerage session is authenticated: orders and market data work.
    /// False means the gateway needs a login (or a re-auth) first.
    pub authenticated: bool,
    /// The gateway is connected to IBKR's servers.
    pub connected: bool,
    /// Another session (TWS, the mobile app, a second gateway) holds the
    /// brokerage session for this user; this one cannot trade until it
    /// reconnects.
    pub competing: bool,
    /// The gateway's message or failure text, when it sent one.
    pub message: Option<String>,
}

/// Profit and loss for an account as the venue reports it (`spl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PnlUpdate {
    /// IBKR account id the figures are for.
    pub account: String,
    /// PnL since the start of the trading day (`dpl`), in the account
    /// currency; zero when not sent.
    pub daily_pnl: Decimal,
    /// Unrealized PnL of open positions (`upl`); zero when not sent.
    pub unrealized_pnl: Decimal,
    /// Net liquidation value of the account (`nl`); `None` when not sent.
    pub net_liquidation: Option<Decimal>,
}

/// Everything that can happen to a strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A completed bar; marks the portfolio at its close.
    Bar(Bar),
    /// A quote update; marks the portfolio at its last or mid price.
    Quote(Quote),
    /// A report of an order's state, from the venue or the engine.
    OrderUpdate(Order),
    /// A fill; books cash and position before strategies hear it.
    Execution(Execution),
    /// A timer a strategy set, due now.
    Timer {
        /// Index of the strategy that set it.
        strategy: usize,
        /// The id [`crate::strategy::Context::set_timer`] returned.
        id: TimerId,
        /// When it was due; engine time moves here.
        at: Timestamp,
    },
    /// The gateway session changed (login, disconnect, competing session).
    Session(SessionStatus),
    /// Account PnL as the venue reports it (`spl`). Informational: the
    /// engine keeps its own PnL in the portfolio.
    Pnl(PnlUpdate),
    /// Reconciliation found the store and the broker disagreeing; the text
    /// says where. Nothing was overwritten.
    Discrepancy(String),
    /// An urgent message from the venue (IBKR's `blt`: exchange issues,
    /// system problems): a strategy may want to stop trading on it.
    Bulletin {
        /// The bulletin's id.
        id: String,
        /// Its text.
        message: String,
    },
}
