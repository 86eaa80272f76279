//! Where the `tracing` events of every crate go, and how they look.
//!
//! All logs go to stderr (stdout is for a command's results: reports,
//! summaries, `--json` answers), in one of two [`LogFormat`]s:
//!
//! - **human** (the default): `2026-11-30T20:11:12.103784Z  INFO
//!   ibflow_ibkr::node: portfolio seeded from the account account=DU1234567
//!   cash=1000000 equity=1000000 positions=0`. Coloured only when
//!   stderr is a terminal and `NO_COLOR` is unset or empty, so a file or a
//!   journal never receives escape codes.
//! - **json**: one object per line, for journald, Docker and log shippers:
//!   `{"timestamp":"2026-11-30T20:11:16.765405Z","level":"INFO",
//!   "fields":{"message":"portfolio seeded from the account","positions":0,
//!   ...},"target":"ibflow_ibkr::node"}`. The message and the event's own fields are
//!   under `fields`; a span, if any, adds `span` and `spans`.
//!
//! Timestamps are UTC, RFC 3339, to the microsecond, in both formats.
//!
//! The level: `IBFLOW_LOG` (an `EnvFilter` directive such as
//! `info,ibflow_ibkr=debug`) wins over everything; otherwise the more verbose of
//! the caller's default and `-v` (info), `-vv` (debug), `-vvv` (trace).
//!
//! Some commands also print progress lines with `eprintln!` (the
//! simulator's address, the reconciliation result of `ibflow run`); those
//! are plain text in both formats. A JSON consumer should keep only the
//! lines that start with `{`.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The environment variable holding an `EnvFilter` directive that overrides
/// `-v` and the default level.
pub const LOG_FILTER_ENV: &str = "IBFLOW_LOG";

/// How log lines are written on stderr (`--log-format`,
/// `IBFLOW_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One text line per event: UTC time, level, target, message, fields.
    /// Coloured only on a terminal.
    #[default]
    Human,
    /// One JSON object per line: `timestamp` (UTC, RFC 3339), `level`,
    /// `target`, and `fields` (with `message`).
    Json,
}

/// The level `-v` asks for: none says nothing (the caller's default
/// stands), one info, two debug, three or more trace.
pub fn verbosity_level(verbose: u8) -> Option<Level> {
    match verbose {
        0 => None,
        1 => Some(Level::INFO),
        2 => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    }
}

/// The level when `IBFLOW_LOG` is not set: the more verbose of `default`
/// and what `-v` asks for.
pub fn effective_level(default: Level, verbose: u8) -> Level {
    // tracing orders levels by verbosity: TRACE is the greatest.
    verbosity_level(verbose).map_or(default, |v| v.max(default))
}

/// Whether the human format may colour its output: stderr is a terminal
/// and `NO_COLOR` (<https://no-color.org>) is unset or empty.
pub fn stderr_wants_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Install the global `tracing` subscriber: events to stderr in `format`,
/// filtered by `IBFLOW_LOG` if set, else by [`effective_level`] of
/// `default` and `verbose`. `ibflow` passes WARN as `default` for every
/// command; a command that should say more unasked (a headless bot's
/// order lines) can pass INFO. Does nothing if a subscriber is already
/// installed (a test harness, an embedding program).
pub fn init_tracing(format: LogFormat, verbose: u8, default: Level) {
    let level = effective_level(default, verbose);
    let filter = EnvFilter::try_from_env(LOG_FILTER_ENV)
        .unwrap_or_else(|_| EnvFilter::default().add_directive(LevelFilter::from(level).into()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The default timer is SystemTime: UTC, RFC 3339, microseconds.
    let _ = match format {
        LogFormat::Human => builder.with_ansi(stderr_wants_colour()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_raises_the_default_and_never_lowers_it() {
        assert_eq!(effective_level(Level::WARN, 0), Level::WARN);
        assert_eq!(effective_level(Level::WARN, 1), Level::INFO);
        assert_eq!(effective_level(Level::WARN, 2), Level::DEBUG);
        assert_eq!(effective_level(Level::WARN, 3), Level::TRACE);
        assert_eq!(effective_level(Level::WARN, 9), Level::TRACE);
        // A command defaulting to INFO: -v changes nothing, -vv is debug.
        assert_eq!(effective_level(Level::INFO, 0), Level::INFO);
        assert_eq!(effective_level(Level::INFO, 1), Level::INFO);
        assert_eq!(effective_level(Level::INFO, 2), Level::DEBUG);
    }
}
