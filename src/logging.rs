//! Where the `tracing` events of every crate go, and how they look.
//!
//! All logs go to stderr (stdout is for a command's results: reports,
//! summaries, `--json` answers), as [`LogFormat::Human`] text, coloured only
//! when stderr is a terminal and `NO_COLOR` is unset or empty, or as
//! [`LogFormat::Json`], one object per line. Times are UTC, RFC 3339, to the
//! microsecond, in both. The level: `IBFLOW_LOG` (an `EnvFilter` directive
//! such as `info,ibflow_ibkr=debug`) if set, else the more verbose of the
//! caller's default and `-v` (info), `-vv` (debug), `-vvv` (trace).
//!
//! Some commands also print plain-text progress lines on stderr
//! (`eprintln!`), whatever the format. `docs/deploy.md` ("Logs") shows both
//! formats and their fields, as operators see them.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The environment variable holding an `EnvFilter` directive that overrides
/// `-v` and the default level.
const LOG_FILTER_ENV: &str = "IBFLOW_LOG";

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
fn verbosity_level(verbose: u8) -> Option<Level> {
    match verbose {
        0 => None,
        1 => Some(Level::INFO),
        2 => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    }
}

/// The level when `IBFLOW_LOG` is not set: the more verbose of `default`
/// and what `-v` asks for.
fn effective_level(default: Level, verbose: u8) -> Level {
    // tracing orders levels by verbosity: TRACE is the greatest.
    verbosity_level(verbose).map_or(default, |v| v.max(default))
}

/// Whether the human format may colour its output: stderr is a terminal
/// and `NO_COLOR` (<https://no-color.org>) is unset or empty.
fn stderr_wants_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Install the global `tracing` subscriber: events to stderr in `format`,
/// filtered by `IBFLOW_LOG` if set, else at the more verbose of `default`
/// and the level `verbose` (the count of `-v`) asks for. `ibflow` passes WARN as `default` for every
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
