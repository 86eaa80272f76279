//! The simulated exchange.
