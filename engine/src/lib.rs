//! ibflow's core library: the model every other part speaks, the event bus,
//! the strategy API and the async seams to venues.
//!
//! Nothing here does I/O. Backtest, the CP Gateway simulator and the live
//! client all drive the same [`bus::Dispatcher`] with the same strategies.

pub mod bars;
pub mod broker;
pub mod bus;
pub mod execution;
pub mod forecastex;
pub mod history;
pub mod hours;
#[cfg(feature = "ibkr")]
pub mod ibkr;
pub mod model;
pub mod num;
pub mod order_ticket;
pub mod orders;
pub mod portfolio;
pub mod registry;
pub mod risk;
#[cfg(feature = "store")]
pub mod store;
pub mod strategy;

pub use rust_decimal::Decimal;
