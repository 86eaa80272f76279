//! Backtesting: bar replay, the simulated exchange, reports and sweeps.
//!
//! The replay feeds the same [`engine::dispatch::Dispatcher`] the live engine
//! uses; the simulated exchange stands where the broker would be.

pub mod data;
pub mod exchange;
pub mod report;
pub mod runner;
pub mod sim_venue;
pub mod sweep;
