//! PostgreSQL: one database shared by every `riposte serve` replica (DESIGN.md §4).
//!
//! Replicas coordinate only through the database: runs are claimed with
//! `SELECT … FOR UPDATE SKIP LOCKED` plus a lease, audit appends serialise on the head row, and
//! migrations run under sqlx's advisory lock so replicas starting together migrate once.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::StoreError;

/// Connections per replica; enough for the engine's parallel steps and the API.
const CONNECTIONS: u32 = 10;

/// The PostgreSQL store; see the module documentation.
pub struct PgStore {
    write: PgPool,
    /// The same pool: PostgreSQL needs no reader/writer split.
    read: PgPool,
    audit_key: Option<super::AuditKey>,
}

impl PgStore {
    /// Chains the audit records this store appends (and checks) with `key`.
    pub fn with_audit_key(mut self, key: Option<super::AuditKey>) -> PgStore {
        self.audit_key = key;
        self
    }

    /// Opens `postgres://user[:password]@host:port/db` (sqlx URL parameters such as `sslmode`
    /// and `options[search_path]` apply) and applies migrations.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::Open)?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(StoreError::Open)?;
        migrator().run(&pool).await?;
        Ok(PgStore {
            write: pool.clone(),
            read: pool,
            audit_key: None,
        })
    }
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "run spec".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0002_run_spec.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "attempts".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0003_attempts.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "incidents and fencing".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0004_incidents.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "shared throttle".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0005_throttle.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            "sessions".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0006_sessions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            "audit followers".into(),
            MigrationType::Simple,
            include_str!("migrations/postgres/0007_cursors.sql").into_sql_str(),
            false,
        ),
    ])
}

/// Bound as `timestamptz`.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

/// A follow-up run waits until the run it follows has finished, so it plans against what that
/// run did. `SKIP LOCKED` lets replicas claim concurrently without waiting on each other's rows; the
/// lapsed-lease condition is repeated on the update so a row changed since the subquery read it
/// is re-checked (READ COMMITTED re-evaluates the outer `WHERE` on the new row version).
const CLAIM_SQL: &str = "UPDATE runs SET lease_owner = $1, lease_until = $2, fence = fence + 1 \
     WHERE id IN (SELECT id FROM runs \
       WHERE status IN ('pending', 'planning', 'running') \
       AND (lease_until IS NULL OR lease_until <= $3) \
       AND (follows_run_id IS NULL OR EXISTS (SELECT 1 FROM runs p \
         WHERE p.id = runs.follows_run_id \
         AND p.status IN ('succeeded', 'failed', 'denied', 'rolled_back', 'cancelled'))) \
       AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
       ORDER BY created_at, id LIMIT $4 \
       FOR UPDATE SKIP LOCKED) \
     AND (lease_until IS NULL OR lease_until <= $3) \
     RETURNING id, fence";

/// How an alert claim passes over the rows another matcher is claiming.
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

/// How a fenced journal write holds the run while it checks the fence.
const FENCE_LOCK: &str = " FOR SHARE";

super::sql_runs::run_fns!(PgStore, sqlx::Postgres);
super::sql_sessions::session_fns!(PgStore, sqlx::Postgres);
super::sql_cursors::cursor_impl!(PgStore);
super::sql::store_impl!(PgStore, sqlx::Postgres, "postgres");
