//! ibflow's core: the model every other part speaks, the strategy API, and
//! the one path from an intent to a venue.
//!
//! Nothing here does I/O: no sockets, no files, no database. The backtest,
//! the CP Gateway simulator and the live client all drive the same
//! [`dispatch::Dispatcher`] with the same strategies.

pub mod bars;
pub mod contracts;
pub mod dispatch;
pub mod event;
pub mod forecastex;
pub mod hours;
pub mod journal;
pub mod limits;
pub mod model;
pub mod num;
pub mod order_state;
pub mod portfolio;
pub mod registry;
pub mod risk;
pub mod router;
pub mod seen;
pub mod strategy;
pub mod venue;
pub mod working_orders;

pub use rust_decimal::Decimal;
