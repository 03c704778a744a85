//! The SQL of [`SessionStore`](super::SessionStore), shared by both backends like `sql.rs`.

/// Expands to `impl SessionStore for $store` over the sqlx database `$db`.
macro_rules! session_fns {
    ($store:ident, $db:ty) => {
        mod sessions {
        use super::{$store, ts};
        use sqlx::Row as _;

        use $crate::store::{SessionRecord, SessionStore, StoreError, truncate};

        type Row = <$db as sqlx::Database>::Row;

        const SESSION_COLUMNS: &str =
            "id_sha256, caller, role, csrf_token, created_at, expires_at";

        fn session_from_row(row: &Row) -> Result<SessionRecord, StoreError> {
            Ok(SessionRecord {
                id_sha256: row.try_get("id_sha256")?,
                caller: row.try_get("caller")?,
                role: row.try_get("role")?,
                csrf_token: row.try_get("csrf_token")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        #[async_trait::async_trait]
        impl SessionStore for $store {
            async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id_sha256, caller, role, csrf_token, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&session.id_sha256)
                .bind(&session.caller)
                .bind(&session.role)
                .bind(&session.csrf_token)
                .bind(ts(truncate(session.created_at)))
                .bind(ts(truncate(session.expires_at)))
                .execute(&self.write)
                .await
                // The id is a digest, not a secret, but there is no reason to print it.
                .map_err(|e| StoreError::from_write(e, "session", "(new)"))?;
                Ok(())
            }

            async fn find_session(
                &self,
                id_sha256: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<SessionRecord>, StoreError> {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_sha256 = $1 AND expires_at > $2"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id_sha256)
                    .bind(ts(now))
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn delete_session(&self, id_sha256: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1")
                    .bind(id_sha256)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_expired_sessions(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(ts(now))
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected())
            }
        }
        }
    };
}

pub(crate) use session_fns;
