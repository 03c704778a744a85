//! [`CursorStore`](super::CursorStore) for both backends, one SQL text like `sql.rs`.

/// Expands to `impl CursorStore for $store`.
macro_rules! cursor_impl {
    ($store:ident) => {
        mod cursors {
            use super::{$store, ts};
            use $crate::store::{CursorStore, StoreError, lease_until, now};

            #[async_trait::async_trait]
            impl CursorStore for $store {
                async fn claim_cursor(
                    &self,
                    name: &str,
                    worker_id: &str,
                    lease: std::time::Duration,
                ) -> Result<Option<i64>, StoreError> {
                    sqlx::query(
                        "INSERT INTO cursors (name, seq) SELECT $1, count FROM audit_head \
                         WHERE id = 1 ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .execute(&self.write)
                    .await?;
                    let seq: Option<(i64,)> = sqlx::query_as(
                        "UPDATE cursors SET owner = $2, lease_until = $3 WHERE name = $1 \
                         AND (owner IS NULL OR owner = $2 OR lease_until < $4) RETURNING seq",
                    )
                    .bind(name)
                    .bind(worker_id)
                    .bind(ts(lease_until(lease)))
                    .bind(ts(now()))
                    .fetch_optional(&self.write)
                    .await?;
                    Ok(seq.map(|(s,)| s))
                }

                async fn advance_cursor(
                    &self,
                    name: &str,
                    worker_id: &str,
                    seq: i64,
                ) -> Result<(), StoreError> {
                    let done = sqlx::query(
                        "UPDATE cursors SET seq = CASE WHEN seq < $3 THEN $3 ELSE seq END \
                         WHERE name = $1 AND owner = $2",
                    )
                    .bind(name)
                    .bind(worker_id)
                    .bind(seq)
                    .execute(&self.write)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::LeaseLost {
                            run_id: format!("cursor {name}"),
                            worker_id: worker_id.to_string(),
                        });
                    }
                    Ok(())
                }
            }
        }
    };
}

pub(super) use cursor_impl;
