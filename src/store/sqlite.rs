//! SQLite: the embedded default, for one process.
//!
//! One writer connection, several reader connections. WAL lets readers run beside the writer;
//! a single writer makes writes queue in the pool (first come, first served) instead of
//! colliding on `SQLITE_BUSY`, and `synchronous = FULL` makes every commit durable before it
//! returns, so an acknowledged alert survives a power cut. Throughput comes from group commit
//! ([`Store::insert_alerts_batch`](super::Store::insert_alerts_batch) and
//! [`Batcher`](super::Batcher)), not from relaxing durability.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;

/// How long a connection waits on a lock held by another process (e.g. `riposte audit verify`
/// run beside `riposte serve`) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers; more would only contend for two cores.
const READERS: u32 = 4;

/// The SQLite store; see the module documentation.
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    audit_key: Option<super::AuditKey>,
}

impl SqliteStore {
    /// Chains the audit records this store appends (and checks) with `key`.
    pub fn with_audit_key(mut self, key: Option<super::AuditKey>) -> SqliteStore {
        self.audit_key = key;
        self
    }

    /// Opens `sqlite://relative.db`, `sqlite:///absolute/path.db` or `sqlite::memory:`,
    /// creating the file if missing and applying migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Open)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let in_memory = path.starts_with(":memory:") || path.contains("mode=memory");
        let (write, read) = if in_memory {
            // An in-memory database lives as long as its one connection: keep it open forever
            // and let it serve reads too (another connection would see another database).
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(StoreError::Open)?;
            (pool.clone(), pool)
        } else {
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    options
                        .clone()
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full),
                )
                .await
                .map_err(StoreError::Open)?;
            let lock = migration_lock(options.get_filename()).await?;
            migrator().run(&write).await?;
            drop(lock);
            // Opened after the writer has switched the file to WAL (a persistent setting).
            let read = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options.create_if_missing(false).read_only(true))
                .await
                .map_err(StoreError::Open)?;
            return Ok(SqliteStore {
                write,
                read,
                audit_key: None,
            });
        };
        migrator().run(&write).await?;
        Ok(SqliteStore {
            write,
            read,
            audit_key: None,
        })
    }
}

/// Two processes opening a new database together (`riposte serve` starting while a command
/// runs) would both find it unmigrated and apply the same migration twice; sqlx takes no
/// lock on SQLite, so an exclusive lock on a file beside the database makes them take turns.
/// Held until dropped; the operating system releases it if the process dies.
async fn migration_lock(db: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut name = db.as_os_str().to_os_string();
    name.push(".migrate-lock");
    let path = std::path::PathBuf::from(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Open(sqlx::Error::Io(std::io::Error::other(e))))?;
    locked.map_err(|e| StoreError::Open(sqlx::Error::Io(e)))
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "run spec".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0002_run_spec.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "attempts".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0003_attempts.sql").into_sql_str(),
            // Opens its own transaction around a table rebuild (foreign keys off).
            true,
        ),
        Migration::new(
            4,
            "incidents and fencing".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0004_incidents.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "shared throttle".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0005_throttle.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            "sessions".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0006_sessions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            "audit followers".into(),
            MigrationType::Simple,
            include_str!("migrations/sqlite/0007_cursors.sql").into_sql_str(),
            false,
        ),
    ])
}

/// Timestamps are fixed-width UTC text (`2025-01-02T03:04:05.000006Z`), so SQLite's text
/// comparison orders them by time; sqlx reads them back as `DateTime<Utc>`.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// One statement, on the one writer connection: claims cannot interleave. A follow-up run
/// waits until the run it follows has finished, so it plans against what that run did. The lapsed-lease
/// condition is repeated outside the subquery so the update itself re-checks it.
const CLAIM_SQL: &str = "UPDATE runs SET lease_owner = $1, lease_until = $2, fence = fence + 1 \
     WHERE id IN (SELECT id FROM runs \
       WHERE status IN ('pending', 'planning', 'running') \
       AND (lease_until IS NULL OR lease_until <= $3) \
       AND (follows_run_id IS NULL OR EXISTS (SELECT 1 FROM runs p \
         WHERE p.id = runs.follows_run_id \
         AND p.status IN ('succeeded', 'failed', 'denied', 'rolled_back', 'cancelled'))) \
       AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
       ORDER BY created_at, id LIMIT $4) \
     AND (lease_until IS NULL OR lease_until <= $3) \
     RETURNING id, fence";

/// How an alert claim passes over the rows another matcher is claiming (nothing: one writer).
const CLAIM_LOCK: &str = "";

/// How a fenced journal write holds the run while it checks the fence (nothing: the one writer connection already serialises writes).
const FENCE_LOCK: &str = "";

super::sql_runs::run_fns!(SqliteStore, sqlx::Sqlite);
super::sql_sessions::session_fns!(SqliteStore, sqlx::Sqlite);
super::sql_cursors::cursor_impl!(SqliteStore);
super::sql::store_impl!(SqliteStore, sqlx::Sqlite, "sqlite");
