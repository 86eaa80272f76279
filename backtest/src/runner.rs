//! The backtest loop.
