//! The domain model shared by backtest, simulator and live trading.
//!
//! Prices and quantities are [`Decimal`] everywhere: a fill price that drifts by
//! a binary rounding error is a reconciliation bug waiting to happen. Times are
//! `DateTime<Utc>`; exchange time zones only appear at the edges.

mod contract;
mod execution;
mod market;
mod order;
mod position;

pub use contract::{Conid, Contract, SecType};
pub use execution::{ExecSide, Execution};
pub use market::{Bar, BarError, Quote};
pub use order::{
    Order, OrderChanges, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif, Trail,
    TrailUnit, UnknownValue,
};
pub use position::Position;

pub use rust_decimal::Decimal;

/// UTC timestamp used for every instant inside the engine.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// UTC instant from epoch milliseconds, or `None` when out of chrono's range.
pub fn from_epoch_ms(ms: i64) -> Option<Timestamp> {
    chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, ms).single()
}
