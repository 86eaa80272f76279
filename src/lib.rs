//! The `ibflow` command line as a library: everything the stock binary
//! does, callable from another crate's `main`.

// The terminal front end: printing is its job (libraries log instead).
#![allow(clippy::print_stdout, clippy::print_stderr)]
pub mod backtest_cmd;
pub mod bench;
pub mod cli;
pub mod config;
pub mod control;
pub mod gateway_cmd;
pub mod logging;
pub mod run_cmd;
pub mod sim_gateway;
pub mod soak;
pub mod store_cmd;

use anyhow::Result;
use clap::Parser;

/// Parse the process arguments and run the command they name: the whole
/// `ibflow` binary.
pub fn main() -> Result<()> {
    let cli = cli::Cli::parse();
    let format = cli.log_format;
    // The level when neither -v nor IBFLOW_LOG says: a bot's operator
    // wants its orders, fills and minute status lines (INFO); every other
    // command is quiet (WARN). See docs/deploy.md, "Log levels".
    let default = match cli.command {
        cli::Command::Run(_) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    init_tracing(format, cli.verbose, default);
    let result = cli::dispatch(cli);
    if let (Err(e), LogFormat::Json) = (&result, format) {
        // The "Error: ..." line printed on the way out is plain text; a
        // JSON log consumer gets the reason as an event too.
        tracing::error!(error = format!("{e:#}"), "ibflow exited with an error");
    }
    result
}

pub use logging::{init_tracing, LogFormat};
