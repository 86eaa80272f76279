//! The command line: the argument tree and the dispatch to one module per
//! command group.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// The database file when neither `--db`, `IBFLOW_DB` nor a config says.
pub const DEFAULT_DB: &str = "ibflow.db";

#[derive(Debug, Parser)]
#[command(
    name = "ibflow",
    version,
    about = "Event-driven trading engine for the IBKR Client Portal Web API"
)]
/// The whole `ibflow` command line: global flags and one command.
pub struct Cli {
    /// More logging (-v info, -vv debug); IBFLOW_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines on stderr: `human` (text, coloured only on a terminal) or
    /// `json` (one object per line: timestamp, level, target, fields).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "IBFLOW_LOG_FORMAT",
        default_value_t = crate::logging::LogFormat::Human
    )]
    pub log_format: crate::logging::LogFormat,
    /// SQLite database file (orders, executions, positions). Precedence:
    /// this flag, then IBFLOW_DB, then `[store] db` of a `--config` file,
    /// then ./ibflow.db.
    #[arg(long, global = true, env = "IBFLOW_DB")]
    pub db: Option<PathBuf>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `ibflow` command, each handled by its module.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay historical bars through a strategy and write a report.
    Backtest(crate::backtest_cmd::BacktestArgs),
    /// Measure the replay pipeline on synthetic bars: bars/s and peak memory.
    Bench(crate::bench::BenchArgs),
    /// A bot on `sim-gateway` for simulated months, its memory sampled:
    /// the series, and whether it stayed flat.
    BenchSoak(crate::soak::SoakArgs),
    /// Run a strategy live: on a CP Gateway, or on the built-in simulator.
    Run(crate::run_cmd::RunArgs),
    /// Serve the CP Gateway simulator (the CP Web API on 127.0.0.1).
    SimGateway(crate::sim_gateway::Args),
    /// List the strategies this build knows, with their descriptions.
    Strategies,
    /// Write the bundled sample data set into a directory (it is generated
    /// deterministically; the copy in data/sample is this output).
    SampleData {
        /// Directory to write the files into.
        #[arg(long, default_value = "data/sample")]
        out: PathBuf,
    },
    /// The local database: migrate, positions, orders, check.
    #[command(subcommand)]
    Db(crate::store_cmd::DbCommand),
    /// Stored executions (`executions import FILE` to add some).
    Executions(crate::store_cmd::ExecutionsArgs),
    /// Measure execution ingestion into the database.
    #[command(hide = true)]
    BenchStore(crate::store_cmd::BenchStoreArgs),
    /// CP Gateway session: `gateway status`.
    #[command(subcommand)]
    Gateway(crate::gateway_cmd::GatewayCommand),
    /// Snapshot quotes from the gateway: `quote CONID...`.
    Quote(crate::gateway_cmd::QuoteArgs),
    /// Download history from the gateway: `history fetch`.
    #[command(subcommand)]
    History(crate::gateway_cmd::HistoryCommand),
    /// Live orders on the gateway.
    Orders(crate::gateway_cmd::OrdersArgs),
    /// Executions reported by the gateway.
    Trades(crate::gateway_cmd::TradesArgs),
    /// Positions reported by the gateway.
    Positions(crate::gateway_cmd::PositionsArgs),
    /// A running bot's status, from its control endpoint.
    Status(crate::control::client::StatusArgs),
    /// Pull a running bot's kill switch through its control endpoint.
    Kill(crate::control::client::KillArgs),
}

/// Run the command `cli` names. The database path is `--db` (or
/// `IBFLOW_DB`), else [`DEFAULT_DB`]; `run` passes only the flag on, since
/// its config file may name another one.
pub fn dispatch(cli: Cli) -> Result<()> {
    let db = cli.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    match cli.command {
        Command::Backtest(args) => crate::backtest_cmd::backtest(args),
        Command::Bench(args) => crate::bench::run(args),
        Command::BenchSoak(args) => crate::soak::run(args),
        Command::Run(args) => crate::run_cmd::run(args, cli.db.as_deref()),
        Command::SimGateway(args) => crate::sim_gateway::run(args),
        Command::Db(cmd) => crate::store_cmd::db(&db, cmd),
        Command::Executions(args) => crate::store_cmd::executions(&db, args),
        Command::BenchStore(args) => crate::store_cmd::bench_store(args),
        Command::Gateway(cmd) => crate::gateway_cmd::gateway(cmd),
        Command::Quote(args) => crate::gateway_cmd::quote(args),
        Command::History(cmd) => crate::gateway_cmd::history(cmd),
        Command::Orders(args) => crate::gateway_cmd::orders(args, &db),
        Command::Trades(args) => crate::gateway_cmd::trades(args),
        Command::Positions(args) => crate::gateway_cmd::positions(args, &db),
        Command::Status(args) => crate::control::client::status(args),
        Command::Kill(args) => crate::control::client::kill(args),
        Command::Strategies => {
            for e in strategies::registry().entries() {
                println!("{:<16} {}", e.name, e.description);
            }
            Ok(())
        }
        Command::SampleData { out } => {
            backtest::data::generate_sample(&out)
                .with_context(|| format!("writing sample data to {}", out.display()))?;
            println!("sample data written to {}", out.display());
            Ok(())
        }
    }
}
