//! Persistence in SQLite through sqlx: orders and their status history,
//! executions stored exactly once, the positions they imply, strategy state,
//! backtest runs, the bar cache and ForecastEx strike pairs.
//!
//! Why the shape:
//! * One execution, however many times it arrives (websocket `str`, its
//!   replay after a reconnect, `/iserver/account/trades`), is one row: the
//!   insert is `ON CONFLICT(execution_id) DO NOTHING` and the position moves
//!   in the same transaction only for rows that were new. A crash between
//!   the two cannot happen; a crash before the commit loses nothing that was
//!   acknowledged.
//! * Decimals are TEXT (exact), instants INTEGER epoch milliseconds UTC.
//! * WAL with `synchronous = FULL`: a committed transaction survives a
//!   killed process and a power cut; readers never block the writer.
//! * Queries use the runtime `sqlx::query` API, so building needs no
//!   database; migrations are embedded with `sqlx::migrate!`.
//!
//! Reconciliation with a live broker (loading open orders and positions at
//! start, fetching orders/trades/positions, recording discrepancies) builds
//! on [`Store::open_orders`], [`Store::positions`],
//! [`Store::record_executions`] (which reports what was new),
//! [`Store::recompute_positions`] and the comparisons in `reconcile`
//! ([`Store::position_discrepancies`], [`Store::order_discrepancies`]);
//! the fetching belongs to the live client.

mod check;
mod codec;
mod executions;
pub mod import;
mod journal;
mod orders;
mod reconcile;
mod resolve;
mod state;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

pub use check::{HistoryCheck, HistoryProblem};
pub use executions::{Ingested, StoredExecution, StoredPosition};
pub use orders::{OrderStatusUpdate, StatusChange, StoredOrder};
pub use reconcile::{compare_orders, compare_positions, BrokerOrder, BrokerPosition, Discrepancy};
pub use resolve::{HistoryGap, ResolvedOrder};
/// Re-exported for queries through [`Store::pool`] that this API does not offer.
pub use sqlx;
pub use state::BacktestRun;

use engine::forecastex::NettingError;

/// The schema, embedded at compile time from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a store operation failed. Every write that fails leaves the database
/// as it was: each is one transaction.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created (a bad path, no permission,
    /// not a SQLite database).
    #[error("opening database {path}: {source}")]
    Open {
        /// The file asked for.
        path: PathBuf,
        /// SQLite's (sqlx's) error.
        source: sqlx::Error,
    },
    /// A migration failed, or the database has migrations this build does
    /// not know (a newer version wrote it).
    #[error("migrating database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other SQLite error (I/O, constraint, busy).
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value that does not parse back: the file was edited by
    /// something else, or is from an incompatible version.
    #[error("corrupt value in {table}.{column}: {value:?}")]
    Corrupt {
        /// The table read.
        table: &'static str,
        /// The column whose value does not parse.
        column: &'static str,
        /// The stored text, as found.
        value: String,
    },
    /// An execution refused before anything was written: an empty id, a
    /// size not in (0, 10^12], a price, commission or net amount out of
    /// range, or position arithmetic that would overflow. The whole batch
    /// is refused with it.
    #[error("execution {execution_id}: {reason}")]
    InvalidExecution {
        /// The offending execution's id.
        execution_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An execution id already stored (or repeated in the batch) with a
    /// different fill: the same id must mean the same execution. Nothing
    /// was written.
    #[error("execution {execution_id} conflicts with the one stored under that id: stored {stored}, now {new}")]
    ConflictingExecution {
        /// The id.
        execution_id: String,
        /// The stored (or first) fill: account, conid, side, size @ price.
        stored: String,
        /// The conflicting one.
        new: String,
    },
    /// An order's broker id is already stored for another cOID (two runs of
    /// a venue that reuses order ids, or a corrupt report). Nothing was
    /// written; the row is not dropped silently.
    #[error("order {client_order_id}: broker order id {broker_order_id} already belongs to order {held_by}")]
    BrokerIdTaken {
        /// The order being written.
        client_order_id: String,
        /// Its broker id.
        broker_order_id: String,
        /// The cOID stored with that broker id.
        held_by: String,
    },
    /// A database file that does not exist, where only an existing one will
    /// do (`db check`, listings): nothing is created.
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// The database changed under a transaction that holds the write lock:
    /// nothing was written.
    #[error("store inconsistency: {0}")]
    Inconsistent(String),
    /// ForecastEx netting refused its input: a strike record that cannot be
    /// paired, or an execution that does not belong to its strike.
    #[error(transparent)]
    Netting(#[from] NettingError),
    /// A JSON column (state values, backtest summaries, batch parameters)
    /// that does not serialize or parse.
    #[error("JSON value: {0}")]
    Json(#[from] serde_json::Error),
    /// A strategy state refused before anything was written: larger than
    /// [`engine::strategy::MAX_STATE_BYTES`], or an index the database
    /// cannot hold.
    #[error("strategy state of strategy {index} ({name}): {reason}")]
    InvalidState {
        /// The strategy's index in its run.
        index: usize,
        /// The strategy's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The store's result: [`StoreError`] unless said otherwise.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on one SQLite file. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Open (creating if missing) the database at `path` and bring its
    /// schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let store = Store::open_unmigrated(path).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Open an existing database only, bringing its schema up to date: a
    /// mistyped path is [`StoreError::Missing`], never a new empty database
    /// that then looks fine.
    pub async fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let store = Store::connect(path, false).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Open without migrating: for tools that only report the schema state.
    pub async fn open_unmigrated(path: &Path) -> Result<Store> {
        Store::connect(path, true).await
    }

    async fn connect(path: &Path, create: bool) -> Result<Store> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // 32 MiB of page cache per connection (default 2 MiB): index
            // pages of a large executions table stay in memory.
            .pragma("cache_size", "-32768")
            // Whole-table reads (recompute, listings) are slow by design;
            // only warn about statements that are slow for real.
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Store { pool })
    }

    /// Apply every migration not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        MIGRATOR.run(&self.pool).await?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The identity of the bot writing this store, for its cOIDs (see
    /// `cpapi::order_ticket`): drawn at random on first use (8 hex digits,
    /// SQLite's `randomblob`, seeded by the OS) and the same ever after, so
    /// a restarted bot recognises its earlier orders and two bots with
    /// their own stores never send the same cOIDs.
    pub async fn bot_id(&self) -> Result<String> {
        sqlx::query(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('bot_id', lower(hex(randomblob(4))))",
        )
        .execute(&self.pool)
        .await?;
        let id: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'bot_id'")
            .fetch_one(&self.pool)
            .await?;
        if !cpapi::order_ticket::valid_bot_id(&id) {
            return Err(StoreError::Corrupt {
                table: "meta",
                column: "value",
                value: id,
            });
        }
        Ok(id)
    }

    /// The bot id this store gave out, if it gave one ([`Store::bot_id`]
    /// creates it; this only reads).
    pub async fn stored_bot_id(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'bot_id'")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// `PRAGMA integrity_check`: `ok`, or the problems SQLite found.
    pub async fn integrity_check(&self) -> Result<String> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.join("\n"))
    }

    /// The underlying pool, for queries this API does not offer yet.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Close every connection (checkpointing the WAL).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Read an engine code column (`Side::from_code`, ...) back, naming the
/// column when it fails.
fn parse_code<T, E>(
    table: &'static str,
    column: &'static str,
    value: String,
    from_code: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    from_code(&value).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value,
    })
}

/// Parse a TEXT column back into its type, naming the column when it fails.
fn parse_col<T: FromStr>(table: &'static str, column: &'static str, value: String) -> Result<T> {
    value.parse().map_err(|_| StoreError::Corrupt {
        table,
        column,
        value,
    })
}
