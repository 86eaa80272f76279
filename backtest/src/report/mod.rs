//! Backtest outputs: metrics, CSV files, the equity plot and the HTML report.
