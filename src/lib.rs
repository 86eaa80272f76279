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
pub mod run_cmd;
pub mod sim_gateway;
pub mod store_cmd;

use anyhow::Result;
use clap::Parser;

/// Parse the process arguments and run the command they name: the whole
/// `ibflow` binary.
pub fn main() -> Result<()> {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    cli::dispatch(cli)
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("IBFLOW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
