//! The one implementation of [`Store`](super::Store), instantiated for each backend.
//!
//! Both backends run the same SQL text (SQLite accepts PostgreSQL's `$1` placeholders,
//! `ON CONFLICT … DO NOTHING` and `RETURNING`), so behaviour cannot drift between them. What
//! differs lives in the backend's own file and is reached by name from here:
//!
//! - `ts(DateTime<Utc>)`: how a timestamp is bound (PostgreSQL `timestamptz`; SQLite fixed-width
//!   UTC text, so comparing text compares time);
//! - `CLAIM_SQL`: PostgreSQL adds `FOR UPDATE SKIP LOCKED`;
//! - `self.write` / `self.read`: the pools (SQLite has one writer connection, which serialises
//!   writes in the order they were asked for instead of retrying on `SQLITE_BUSY`).
//!
//! A generic `impl<DB: Database>` would need a dozen higher-ranked bounds repeated on every
//! function; a macro over two concrete types keeps the code plain.

/// Expands to `impl Store for $store` over the sqlx database `$db`.
macro_rules! store_impl {
    ($store:ident, $db:ty, $name:literal) => {
        // A module of its own, so the backend file's imports and these cannot collide.
        mod imp {
        use super::{$store, ts};
        use sqlx::Row as _;
        use sqlx::types::Json;

        use $crate::store::{
            AlertRecord, AlertRef, AlertStatus, Approval, AuditEvent, AuditRecord, ChainCheck,
            Claim, Evidence, EvidenceRecord, FailedAttempt, Fence, InsertOutcome, JournalEntry,
            Joined, NewAlert, NewEvidence, NewRun, Reservation, RunRecord, RunStatus, StepState,
            Store, StoreError, audit_hash, audit_material, canonical_text,
            new_id, now, parse_alert_status, parse_decision, parse_mode, parse_state,
            parse_status,
            sha256_hex, truncate,
        };

        type Row = <$db as sqlx::Database>::Row;
        type Tx = sqlx::Transaction<'static, $db>;

        pub(super) const ALERT_COLUMNS: &str =
            "id, source, source_id, principal_key, body, received_at, processed_at, ingested_by, \
             status, attempts, next_attempt_at, last_error";
        const RUN_COLUMNS: &str = "id, status, playbook, principal_key, tenant, mode, \
             requested_by, plan, plan_hash, created_at, updated_at, lease_owner, lease_until, \
             spec, report, attempts, next_attempt_at, last_error, incident_id, follows_run_id, \
             fence";
        const JOURNAL_COLUMNS: &str = "seq, step_id, item, state, detail, at";
        const EVIDENCE_COLUMNS: &str =
            "id, run_id, step_id, name, content_type, sha256, size, at";
        const AUDIT_COLUMNS: &str =
            "seq, at, kind, run_id, actor, body, prev_hash, hash";
        /// Verification reads the chain in pages of this many records.
        const AUDIT_PAGE: i64 = 1000;

        pub(super) fn alert_from_row(row: &Row) -> Result<AlertRecord, StoreError> {
            Ok(AlertRecord {
                id: row.try_get("id")?,
                source: row.try_get("source")?,
                source_id: row.try_get("source_id")?,
                principal_key: row.try_get("principal_key")?,
                body: row.try_get::<Json<serde_json::Value>, _>("body")?.0,
                received_at: row.try_get("received_at")?,
                processed_at: row.try_get("processed_at")?,
                ingested_by: row.try_get("ingested_by")?,
                status: parse_alert_status(&row.try_get::<String, _>("status")?)?,
                attempts: attempts_from(row)?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_error: row.try_get("last_error")?,
            })
        }

        fn attempts_from(row: &Row) -> Result<u32, StoreError> {
            let n: i64 = row.try_get("attempts")?;
            u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("attempts {n}")))
        }

        fn run_from_row(row: &Row, alerts: Vec<AlertRef>) -> Result<RunRecord, StoreError> {
            Ok(RunRecord {
                id: row.try_get("id")?,
                status: parse_status(&row.try_get::<String, _>("status")?)?,
                playbook: row.try_get("playbook")?,
                principal_key: row.try_get("principal_key")?,
                tenant: row.try_get("tenant")?,
                mode: parse_mode(&row.try_get::<String, _>("mode")?)?,
                requested_by: row.try_get("requested_by")?,
                alerts,
                plan: row
                    .try_get::<Option<Json<serde_json::Value>>, _>("plan")?
                    .map(|j| j.0),
                plan_hash: row.try_get("plan_hash")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                lease_owner: row.try_get("lease_owner")?,
                lease_until: row.try_get("lease_until")?,
                spec: row
                    .try_get::<Option<Json<serde_json::Value>>, _>("spec")?
                    .map(|j| serde_json::from_value(j.0))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("run spec: {e}")))?,
                report: row
                    .try_get::<Option<Json<serde_json::Value>>, _>("report")?
                    .map(|j| j.0),
                attempts: attempts_from(row)?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_error: row.try_get("last_error")?,
                incident_id: row.try_get("incident_id")?,
                follows_run_id: row.try_get("follows_run_id")?,
                fence: Fence(row.try_get("fence")?),
            })
        }

        fn journal_from_row(row: &Row) -> Result<JournalEntry, StoreError> {
            let item: i64 = row.try_get("item")?;
            Ok(JournalEntry {
                seq: row.try_get("seq")?,
                step_id: row.try_get("step_id")?,
                item: u32::try_from(item)
                    .map_err(|_| StoreError::Corrupt(format!("journal item {item}")))?,
                state: parse_state(&row.try_get::<String, _>("state")?)?,
                detail: row.try_get::<Json<serde_json::Value>, _>("detail")?.0,
                at: row.try_get("at")?,
            })
        }

        fn evidence_from_row(row: &Row) -> Result<EvidenceRecord, StoreError> {
            let size: i64 = row.try_get("size")?;
            Ok(EvidenceRecord {
                id: row.try_get("id")?,
                run_id: row.try_get("run_id")?,
                step_id: row.try_get("step_id")?,
                name: row.try_get("name")?,
                content_type: row.try_get("content_type")?,
                sha256: row.try_get("sha256")?,
                size: u64::try_from(size)
                    .map_err(|_| StoreError::Corrupt(format!("evidence size {size}")))?,
                at: row.try_get("at")?,
            })
        }

        fn audit_from_row(row: &Row) -> Result<AuditRecord, StoreError> {
            let body: String = row.try_get("body")?;
            Ok(AuditRecord {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                kind: row.try_get("kind")?,
                run_id: row.try_get("run_id")?,
                actor: row.try_get("actor")?,
                // Text that no longer parses was edited; verification reports it as such.
                body: serde_json::from_str(&body)
                    .unwrap_or(serde_json::Value::String(body)),
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        }

        /// Inserts one alert inside `tx`; a conflict on `(source, source_id)` reads the
        /// stored ids instead.
        async fn insert_alert_in(tx: &mut Tx, a: &NewAlert) -> Result<InsertOutcome, StoreError> {
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO alerts (id, source, source_id, principal_key, body, received_at, \
                 ingested_by) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (source, source_id) DO NOTHING RETURNING id",
            )
            .bind(new_id())
            .bind(&a.source)
            .bind(&a.source_id)
            .bind(&a.principal_key)
            .bind(Json(&a.body))
            .bind(ts(truncate(a.received_at)))
            .bind(&a.ingested_by)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(alert_id) = inserted {
                return Ok(InsertOutcome::Inserted { alert_id });
            }
            let alert_id: String =
                sqlx::query_scalar("SELECT id FROM alerts WHERE source = $1 AND source_id = $2")
                    .bind(&a.source)
                    .bind(&a.source_id)
                    .fetch_one(&mut **tx)
                    .await?;
            let run_ids: Vec<String> = sqlx::query_scalar(
                "SELECT run_id FROM run_alerts WHERE alert_id = $1 ORDER BY attached_at, run_id",
            )
            .bind(&alert_id)
            .fetch_all(&mut **tx)
            .await?;
            Ok(InsertOutcome::Duplicate { alert_id, run_ids })
        }

        pub(super) async fn link_alert_in(tx: &mut Tx, run_id: &str, alert_id: &str) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO run_alerts (run_id, alert_id, attached_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_id, alert_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(alert_id)
            .bind(ts(now()))
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_write(e, "run or alert", &format!("{run_id}/{alert_id}")))?;
            Ok(())
        }

        /// How many rows of each status one `SELECT status, COUNT(*) AS n … GROUP BY status`
        /// finds (alerts and runs, for `/metrics`).
        async fn status_counts<S: Ord>(
            read: &sqlx::Pool<$db>,
            sql: &'static str,
            parse: fn(&str) -> Result<S, StoreError>,
        ) -> Result<std::collections::BTreeMap<S, u64>, StoreError> {
            let rows = sqlx::query(sql).fetch_all(read).await?;
            let mut counts = std::collections::BTreeMap::new();
            for row in rows {
                let n: i64 = row.try_get("n")?;
                counts.insert(
                    parse(&row.try_get::<String, _>("status")?)?,
                    u64::try_from(n).unwrap_or(0),
                );
            }
            Ok(counts)
        }

        /// The alerts of the runs `filter_sql` selects, grouped by run id.
        fn group_alerts(
            rows: Vec<Row>,
        ) -> Result<std::collections::HashMap<String, Vec<AlertRef>>, StoreError> {
            let mut out: std::collections::HashMap<String, Vec<AlertRef>> =
                std::collections::HashMap::new();
            for row in rows {
                out.entry(row.try_get("run_id")?).or_default().push(AlertRef {
                    alert_id: row.try_get("alert_id")?,
                    source: row.try_get("source")?,
                    source_id: row.try_get("source_id")?,
                });
            }
            Ok(out)
        }

        impl $store {
            /// After a conditional update changed nothing: `NotFound` unless the alert exists.
            async fn alert_exists(&self, id: &str) -> Result<(), StoreError> {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.write)
                        .await?;
                match exists {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound { what: "alert", id: id.to_string() }),
                }
            }

            /// After a conditional update changed nothing: `NotFound` unless the run exists.
            pub(super) async fn run_exists(&self, id: &str) -> Result<(), StoreError> {
                let exists: Option<String> = sqlx::query_scalar("SELECT id FROM runs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.write)
                    .await?;
                match exists {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound { what: "run", id: id.to_string() }),
                }
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn insert_alert(&self, alert: &NewAlert) -> Result<InsertOutcome, StoreError> {
                let mut tx = self.write.begin().await?;
                let outcome = insert_alert_in(&mut tx, alert).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn insert_alerts_batch(
                &self,
                alerts: &[NewAlert],
            ) -> Result<Vec<InsertOutcome>, StoreError> {
                if alerts.is_empty() {
                    return Ok(Vec::new());
                }
                // Insert in key order so two concurrent batches that share keys take their
                // row locks in the same order and cannot deadlock (PostgreSQL).
                let mut order: Vec<usize> = (0..alerts.len()).collect();
                order.sort_by(|&a, &b| {
                    (&alerts[a].source, &alerts[a].source_id)
                        .cmp(&(&alerts[b].source, &alerts[b].source_id))
                });
                let mut outcomes: Vec<Option<InsertOutcome>> = vec![None; alerts.len()];
                let mut tx = self.write.begin().await?;
                for i in order {
                    outcomes[i] = Some(insert_alert_in(&mut tx, &alerts[i]).await?);
                }
                tx.commit().await?;
                Ok(outcomes.into_iter().map(|o| o.expect("every alert inserted")).collect())
            }

            async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
                let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(alert_from_row).transpose()
            }

            async fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertRecord>, StoreError> {
                let sql = format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'pending' \
                     AND (next_attempt_at IS NULL OR next_attempt_at <= $2) \
                     ORDER BY received_at, id LIMIT $1"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(i64::from(limit))
                    .bind(ts(now()))
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(alert_from_row).collect()
            }

            async fn claim_alerts(
                &self,
                limit: u32,
                hold: std::time::Duration,
            ) -> Result<Vec<AlertRecord>, StoreError> {
                super::runs::claim_alerts(self, limit, hold).await
            }

            async fn record_alert_failure(
                &self,
                id: &str,
                failure: &FailedAttempt,
            ) -> Result<(), StoreError> {
                let at = now();
                let (status, processed_at) = match failure.retry_at {
                    Some(_) => (AlertStatus::Pending, None),
                    None => (AlertStatus::Failed, Some(ts(at))),
                };
                let done = sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = $2, \
                     next_attempt_at = $3, status = $4, processed_at = $5 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(&failure.reason)
                .bind(failure.retry_at.map(|t| ts(truncate(t))))
                .bind(status.as_str())
                .bind(processed_at)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    self.alert_exists(id).await?;
                }
                Ok(())
            }

            async fn list_alerts(
                &self,
                limit: u32,
                status: Option<AlertStatus>,
            ) -> Result<Vec<AlertRecord>, StoreError> {
                let sql = format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 IS NULL OR status = $1) \
                     ORDER BY received_at DESC, id DESC LIMIT $2"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(status.map(AlertStatus::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(alert_from_row).collect()
            }

            async fn retry_alert(&self, id: &str) -> Result<bool, StoreError> {
                // The reason stays: it says why the alert had failed until the next attempt
                // replaces it.
                let done = sqlx::query(
                    "UPDATE alerts SET status = 'pending', attempts = 0, next_attempt_at = NULL, \
                     processed_at = NULL WHERE id = $1 AND status = 'failed'",
                )
                .bind(id)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    self.alert_exists(id).await?;
                    return Ok(false);
                }
                Ok(true)
            }

            async fn count_alerts_by_status(
                &self,
            ) -> Result<std::collections::BTreeMap<AlertStatus, u64>, StoreError> {
                status_counts(
                    &self.read,
                    "SELECT status, COUNT(*) AS n FROM alerts GROUP BY status",
                    parse_alert_status,
                )
                .await
            }

            async fn mark_alert_processed(&self, id: &str) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE alerts SET processed_at = $2, next_attempt_at = NULL, status = CASE \
                     WHEN EXISTS (SELECT 1 FROM run_alerts ra WHERE ra.alert_id = alerts.id) \
                     THEN 'matched' ELSE 'unmatched' END \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(ts(now()))
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    self.alert_exists(id).await?;
                }
                Ok(())
            }

            async fn save_enriched_alert(
                &self,
                id: &str,
                body: &serde_json::Value,
            ) -> Result<(), StoreError> {
                let done = sqlx::query("UPDATE alerts SET body = $2 WHERE id = $1")
                    .bind(id)
                    .bind(Json(body))
                    .execute(&self.write)
                    .await?;
                if done.rows_affected() == 0 {
                    self.alert_exists(id).await?;
                }
                Ok(())
            }

            async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                super::runs::insert_run_in(&mut tx, run).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_or_join_run(
                &self,
                run: &NewRun,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<Joined, StoreError> {
                super::runs::create_or_join_run(self, run, since).await
            }

            async fn create_follow_up(&self, run: &NewRun) -> Result<Option<String>, StoreError> {
                super::runs::create_follow_up(self, run).await
            }

            async fn incident_runs(&self, incident_id: &str) -> Result<Vec<RunRecord>, StoreError> {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE incident_id = $1 ORDER BY created_at, id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(incident_id)
                    .fetch_all(&self.read)
                    .await?;
                let alerts = sqlx::query(
                    "SELECT ra.run_id, a.id AS alert_id, a.source, a.source_id FROM run_alerts ra \
                     JOIN alerts a ON a.id = ra.alert_id JOIN runs r ON r.id = ra.run_id \
                     WHERE r.incident_id = $1 ORDER BY ra.attached_at, a.received_at, a.id",
                )
                .bind(incident_id)
                .fetch_all(&self.read)
                .await?;
                let mut alerts = group_alerts(alerts)?;
                rows.iter()
                    .map(|row| {
                        let id: String = row.try_get("id")?;
                        run_from_row(row, alerts.remove(&id).unwrap_or_default())
                    })
                    .collect()
            }

            async fn attach_alert(&self, run_id: &str, alert_id: &str) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                link_alert_in(&mut tx, run_id, alert_id).await?;
                sqlx::query("UPDATE runs SET updated_at = $2 WHERE id = $1")
                    .bind(run_id)
                    .bind(ts(now()))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_open_run(
                &self,
                playbook: &str,
                principal_key: &str,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM runs WHERE playbook = $1 AND principal_key = $2 \
                     AND created_at >= $3 \
                     AND status NOT IN ('succeeded', 'failed', 'denied', 'rolled_back', \
                     'cancelled') \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(playbook)
                .bind(principal_key)
                .bind(ts(truncate(since)))
                .fetch_optional(&self.read)
                .await?)
            }

            async fn set_run_status(&self, id: &str, status: RunStatus) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE runs SET status = $2, updated_at = $3 \
                     WHERE id = $1 AND status <> 'cancelled'",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(ts(now()))
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    self.run_exists(id).await?;
                }
                Ok(())
            }

            async fn record_run_failure(
                &self,
                id: &str,
                failure: &FailedAttempt,
            ) -> Result<(), StoreError> {
                super::runs::record_run_failure(self, id, failure).await
            }
            async fn set_run_status_fenced(
                &self,
                id: &str,
                fence: Fence,
                status: RunStatus,
            ) -> Result<(), StoreError> {
                super::runs::set_run_status_fenced(self, id, fence, status).await
            }
            async fn cancel_run(&self, id: &str) -> Result<bool, StoreError> {
                super::runs::cancel_run(self, id).await
            }
            async fn get_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
                let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
                let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?
                else {
                    return Ok(None);
                };
                let alerts = sqlx::query(
                    "SELECT ra.run_id, a.id AS alert_id, a.source, a.source_id FROM run_alerts ra \
                     JOIN alerts a ON a.id = ra.alert_id WHERE ra.run_id = $1 \
                     ORDER BY ra.attached_at, a.received_at, a.id",
                )
                .bind(id)
                .fetch_all(&self.read)
                .await?;
                let mut alerts = group_alerts(alerts)?;
                run_from_row(&row, alerts.remove(id).unwrap_or_default()).map(Some)
            }

            async fn list_runs(
                &self,
                limit: u32,
                status: Option<RunStatus>,
            ) -> Result<Vec<RunRecord>, StoreError> {
                const FILTER: &str = "SELECT id FROM runs WHERE ($1 IS NULL OR status = $1) \
                     ORDER BY created_at DESC, id DESC LIMIT $2";
                let status = status.map(RunStatus::as_str);
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE id IN ({FILTER}) \
                     ORDER BY created_at DESC, id DESC"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(status)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                let sql = format!(
                    "SELECT ra.run_id, a.id AS alert_id, a.source, a.source_id FROM run_alerts ra \
                     JOIN alerts a ON a.id = ra.alert_id WHERE ra.run_id IN ({FILTER}) \
                     ORDER BY ra.attached_at, a.received_at, a.id"
                );
                let alerts = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(status)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                let mut alerts = group_alerts(alerts)?;
                rows.iter()
                    .map(|row| {
                        let id: String = row.try_get("id")?;
                        run_from_row(row, alerts.remove(&id).unwrap_or_default())
                    })
                    .collect()
            }

            async fn save_plan(
                &self,
                run_id: &str,
                fence: Fence,
                plan: &serde_json::Value,
                plan_hash: &str,
            ) -> Result<(), StoreError> {
                super::runs::save_plan(self, run_id, fence, plan, plan_hash).await
            }
            async fn save_report(
                &self,
                run_id: &str,
                fence: Fence,
                report: &serde_json::Value,
            ) -> Result<(), StoreError> {
                super::runs::save_report(self, run_id, fence, report).await
            }
            async fn count_runs_by_status(
                &self,
            ) -> Result<std::collections::BTreeMap<RunStatus, u64>, StoreError> {
                status_counts(
                    &self.read,
                    "SELECT status, COUNT(*) AS n FROM runs GROUP BY status",
                    parse_status,
                )
                .await
            }

            async fn journal(
                &self,
                run_id: &str,
                fence: Fence,
                step_id: &str,
                item: u32,
                state: StepState,
                detail: &serde_json::Value,
            ) -> Result<JournalEntry, StoreError> {
                super::runs::journal(self, run_id, fence, step_id, item, state, detail).await
            }
            async fn journal_for(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
                let sql = format!(
                    "SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = $1 ORDER BY seq"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(journal_from_row).collect()
            }

            async fn latest_step_states(
                &self,
                run_id: &str,
            ) -> Result<Vec<JournalEntry>, StoreError> {
                let sql = format!(
                    "SELECT {JOURNAL_COLUMNS} FROM journal j WHERE run_id = $1 AND seq = \
                     (SELECT MAX(seq) FROM journal l WHERE l.run_id = j.run_id \
                      AND l.step_id = j.step_id AND l.item = j.item) \
                     ORDER BY step_id, item"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(journal_from_row).collect()
            }

            async fn claim_runs(
                &self,
                worker_id: &str,
                lease: std::time::Duration,
                limit: u32,
            ) -> Result<Vec<Claim>, StoreError> {
                super::runs::claim_runs(self, worker_id, lease, limit).await
            }
            async fn claim_run(
                &self,
                worker_id: &str,
                run_id: &str,
                lease: std::time::Duration,
            ) -> Result<Option<Fence>, StoreError> {
                super::runs::claim_run(self, worker_id, run_id, lease).await
            }
            async fn heartbeat(
                &self,
                worker_id: &str,
                run_id: &str,
                lease: std::time::Duration,
            ) -> Result<(), StoreError> {
                super::runs::heartbeat(self, worker_id, run_id, lease).await
            }
            async fn release(&self, worker_id: &str, run_id: &str) -> Result<(), StoreError> {
                super::runs::release(self, worker_id, run_id).await
            }
            async fn record_approval(&self, a: &Approval) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO approvals (run_id, plan_hash, approver, decision, expires_at, at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&a.run_id)
                .bind(&a.plan_hash)
                .bind(&a.approver)
                .bind(a.decision.as_str())
                .bind(a.expires_at.map(|t| ts(truncate(t))))
                .bind(ts(truncate(a.at)))
                .execute(&self.write)
                .await
                .map_err(|e| StoreError::from_write(e, "run", &a.run_id))?;
                Ok(())
            }

            async fn approvals_for(&self, run_id: &str) -> Result<Vec<Approval>, StoreError> {
                let rows = sqlx::query(
                    "SELECT run_id, plan_hash, approver, decision, expires_at, at \
                     FROM approvals WHERE run_id = $1 ORDER BY seq",
                )
                .bind(run_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(Approval {
                            run_id: row.try_get("run_id")?,
                            plan_hash: row.try_get("plan_hash")?,
                            approver: row.try_get("approver")?,
                            decision: parse_decision(&row.try_get::<String, _>("decision")?)?,
                            expires_at: row.try_get("expires_at")?,
                            at: row.try_get("at")?,
                        })
                    })
                    .collect()
            }

            async fn record_effect(
                &self,
                tenant: &str,
                action: &str,
                principal_key: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO effects (tenant, action, principal_key, at) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant)
                .bind(action)
                .bind(principal_key)
                .bind(ts(truncate(at)))
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn count_effects(
                &self,
                tenant: &str,
                action: &str,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM effects WHERE tenant = $1 AND action = $2 AND at >= $3",
                )
                .bind(tenant)
                .bind(action)
                .bind(ts(truncate(since)))
                .fetch_one(&self.read)
                .await?;
                Ok(n.max(0) as u64)
            }

            async fn count_principals(
                &self,
                tenant: &str,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT principal_key) FROM effects \
                     WHERE tenant = $1 AND at >= $2",
                )
                .bind(tenant)
                .bind(ts(truncate(since)))
                .fetch_one(&self.read)
                .await?;
                Ok(n.max(0) as u64)
            }

            async fn throttle_held_until(
                &self,
                budget_key: &str,
                api: &str,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
                super::runs::throttle_held_until(self, budget_key, api).await
            }

            async fn hold_throttle(
                &self,
                budget_key: &str,
                api: &str,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                super::runs::hold_throttle(self, budget_key, api, until).await
            }

            async fn latest_effects(
                &self,
                tenant: &str,
                principal_key: &str,
            ) -> Result<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>, StoreError> {
                let rows = sqlx::query(
                    "SELECT action, MAX(at) AS at FROM effects \
                     WHERE tenant = $1 AND principal_key = $2 GROUP BY action",
                )
                .bind(tenant)
                .bind(principal_key)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get("action")?, row.try_get("at")?)))
                    .collect()
            }

            async fn reserve_principal(
                &self,
                tenant: &str,
                principal_key: &str,
                cap: u64,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<Reservation, StoreError> {
                super::runs::reserve_principal(self, tenant, principal_key, cap, since).await
            }

            async fn store_evidence(&self, e: &NewEvidence) -> Result<EvidenceRecord, StoreError> {
                let record = EvidenceRecord {
                    id: new_id(),
                    run_id: e.run_id.clone(),
                    step_id: e.step_id.clone(),
                    name: e.name.clone(),
                    content_type: e.content_type.clone(),
                    // The one digest riposte shows for evidence: the run report and the
                    // audit trail carry the same `sha256:<hex>` of these bytes.
                    sha256: format!("sha256:{}", sha256_hex(&e.bytes)),
                    size: e.bytes.len() as u64,
                    at: now(),
                };
                sqlx::query(
                    "INSERT INTO evidence (id, run_id, step_id, name, content_type, sha256, size, \
                     content, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&record.id)
                .bind(&record.run_id)
                .bind(&record.step_id)
                .bind(&record.name)
                .bind(&record.content_type)
                .bind(&record.sha256)
                .bind(i64::try_from(record.size).unwrap_or(i64::MAX))
                .bind(&e.bytes)
                .bind(ts(record.at))
                .execute(&self.write)
                .await
                .map_err(|err| StoreError::from_write(err, "run", &e.run_id))?;
                Ok(record)
            }

            async fn evidence_for(&self, run_id: &str) -> Result<Vec<EvidenceRecord>, StoreError> {
                let sql = format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE run_id = $1 ORDER BY at, id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(evidence_from_row).collect()
            }

            async fn get_evidence(&self, id: &str) -> Result<Option<Evidence>, StoreError> {
                let sql =
                    format!("SELECT {EVIDENCE_COLUMNS}, content FROM evidence WHERE id = $1");
                let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(Evidence {
                    record: evidence_from_row(&row)?,
                    bytes: row.try_get("content")?,
                }))
            }

            async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
                let mut tx = self.write.begin().await?;
                // The first statement writes the head row: every other append (on any
                // replica) waits here until this transaction ends, so each sees the hash
                // the previous one left and the chain cannot fork.
                let (seq, prev_hash): (i64, String) = sqlx::query_as(
                    "UPDATE audit_head SET count = count + 1 WHERE id = 1 \
                     RETURNING count, head_hash",
                )
                .fetch_one(&mut *tx)
                .await?;
                let at = now();
                let material = audit_material(
                    seq,
                    at,
                    &event.kind,
                    event.run_id.as_deref(),
                    event.actor.as_deref(),
                    &event.body,
                );
                let hash = audit_hash(&prev_hash, &material, self.audit_key.as_ref());
                sqlx::query(
                    "INSERT INTO audit_log (seq, at, kind, run_id, actor, body, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(ts(at))
                .bind(&event.kind)
                .bind(&event.run_id)
                .bind(&event.actor)
                .bind(canonical_text(&event.body))
                .bind(&prev_hash)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE audit_head SET head_hash = $1 WHERE id = 1")
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(AuditRecord {
                    seq,
                    at,
                    kind: event.kind.clone(),
                    run_id: event.run_id.clone(),
                    actor: event.actor.clone(),
                    body: event.body.clone(),
                    prev_hash,
                    hash,
                })
            }

            async fn audit_records(
                &self,
                from_seq: i64,
                limit: u32,
            ) -> Result<Vec<AuditRecord>, StoreError> {
                let sql = format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(from_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn verify_audit(&self) -> Result<u64, StoreError> {
                // The head first: records appended while we walk are beyond it and ignored.
                let (count, head_hash): (i64, String) =
                    sqlx::query_as("SELECT count, head_hash FROM audit_head WHERE id = 1")
                        .fetch_one(&self.read)
                        .await?;
                let sql = format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 \
                     ORDER BY seq LIMIT $3"
                );
                let mut check = ChainCheck::new(self.audit_key.as_ref());
                let mut from = 1;
                loop {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(from)
                        .bind(count)
                        .bind(AUDIT_PAGE)
                        .fetch_all(&self.read)
                        .await?;
                    let Some(last) = rows.last() else { break };
                    from = last.try_get::<i64, _>("seq")? + 1;
                    for row in &rows {
                        check
                            .check(&audit_from_row(row)?)
                            .map_err(StoreError::AuditChainBroken)?;
                    }
                }
                check.finish(count, &head_hash).map_err(StoreError::AuditChainBroken)
            }
        }
        }
    };
}

pub(crate) use store_impl;
