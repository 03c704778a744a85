//! Runs within incidents, shared by both backends like `sql.rs`: creating or joining an
//! incident's run in one step, follow-up runs, claims and the fenced writes made under them,
//! blast-radius reservations and throttle holds — the writes replicas must agree on.

/// Expands to the module `runs` of free functions over `$store`, which `store_impl!`
/// delegates to.
macro_rules! run_fns {
    ($store:ident, $db:ty) => {
        mod runs {
        use super::{$store, CLAIM_LOCK, CLAIM_SQL, FENCE_LOCK, ts};
        use sqlx::Row as _;
        use sqlx::types::Json;

        use $crate::store::{
            AlertRecord, Claim, FailedAttempt, Fence, JournalEntry, Joined, NewRun, Reservation, RunStatus, StepState, Store,
            StoreError, lease_until, now, parse_status, truncate,
        };

        type Tx = sqlx::Transaction<'static, $db>;

        /// The statuses whose runs a worker may still be planning or executing.
        const WORKED_ON: &str = "('pending', 'planning', 'running')";

        /// When an incident is over.
        const EXPIRED: &str = "(incidents.opened_at < $5 OR EXISTS (SELECT 1 FROM runs \
            WHERE runs.id = incidents.latest_run_id AND runs.status = 'cancelled'))";

        /// How a reservation shows in the effects table: it counts towards the distinct
        /// principals of the window, never towards an action's own count.
        const RESERVATION_ACTION: &str = "riposte.reserve";

        /// Inserts a `pending` run inside `tx`, linked to its alert; its incident is its own
        /// unless it is a follow-up.
        pub(super) async fn insert_run_in(tx: &mut Tx, run: &NewRun) -> Result<(), StoreError> {
            let (incident_id, follows) = match &run.follows {
                Some(f) => (f.incident_id.as_str(), Some(f.run_id.as_str())),
                None => (run.id.as_str(), None),
            };
            let at = now();
            let done = sqlx::query(
                "INSERT INTO runs (id, status, playbook, principal_key, tenant, mode, \
                 requested_by, created_at, updated_at, spec, incident_id, follows_run_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&run.id)
            .bind(RunStatus::Pending.as_str())
            .bind(&run.playbook)
            .bind(&run.principal_key)
            .bind(&run.tenant)
            .bind(run.mode.as_str())
            .bind(&run.requested_by)
            .bind(ts(at))
            .bind(Json(&run.spec))
            .bind(incident_id)
            .bind(follows)
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_write(e, "run", &run.id))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::AlreadyExists { what: "run", id: run.id.clone() });
            }
            if let Some(alert_id) = &run.alert_id {
                super::imp::link_alert_in(tx, &run.id, alert_id).await?;
            }
            Ok(())
        }

        /// Why a fenced write touched no row: the run is gone, or its fence moved on.
        pub(super) async fn fence_refusal(
            read: &sqlx::Pool<$db>,
            run_id: &str,
            held: Fence,
        ) -> StoreError {
            let current: Result<Option<i64>, sqlx::Error> =
                sqlx::query_scalar("SELECT fence FROM runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(read)
                    .await;
            match current {
                Ok(Some(current)) => StoreError::Fenced {
                    run_id: run_id.to_string(),
                    held: held.0,
                    current,
                },
                Ok(None) => StoreError::NotFound { what: "run", id: run_id.to_string() },
                Err(e) => StoreError::Database(e),
            }
        }

        pub(super) async fn create_or_join_run(
            store: &$store,
            run: &NewRun,
            since: chrono::DateTime<chrono::Utc>,
        ) -> Result<Joined, StoreError> {
            let Some(key) = &run.principal_key else {
                // Nobody to coalesce on: every alert is its own incident.
                store.create_run(run).await?;
                return Ok(Joined::Created);
            };
            let mut tx = store.write.begin().await?;
            // The upsert locks the incident's row until commit, so matchers on every
            // replica take their turn for the same (playbook, principal).
            // An incident ends when its window passes or a person cancelled its latest run:
            // the next alert opens a new one.
            let sql = format!(
                "INSERT INTO incidents (playbook, principal_key, incident_id, latest_run_id, \
                 opened_at) VALUES ($1, $2, $3, $3, $4) \
                 ON CONFLICT (playbook, principal_key) DO UPDATE SET \
                 incident_id = CASE WHEN {EXPIRED} \
                   THEN excluded.incident_id ELSE incidents.incident_id END, \
                 latest_run_id = CASE WHEN {EXPIRED} \
                   THEN excluded.latest_run_id ELSE incidents.latest_run_id END, \
                 opened_at = CASE WHEN {EXPIRED} \
                   THEN excluded.opened_at ELSE incidents.opened_at END \
                 RETURNING incident_id, latest_run_id"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&run.playbook)
            .bind(key)
            .bind(&run.id)
            .bind(ts(now()))
            .bind(ts(truncate(since)))
            .fetch_one(&mut *tx)
            .await?;
            let incident_id: String = row.try_get("incident_id")?;
            let latest: String = row.try_get("latest_run_id")?;
            if latest == run.id {
                insert_run_in(&mut tx, run).await?;
                tx.commit().await?;
                return Ok(Joined::Created);
            }
            let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
                .bind(&latest)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Joined::Existing { incident_id, run_id: latest, status: parse_status(&status)? })
        }

        pub(super) async fn create_follow_up(store: &$store, run: &NewRun) -> Result<Option<String>, StoreError> {
            let (Some(follows), Some(key)) = (&run.follows, &run.principal_key) else {
                return Err(StoreError::Corrupt(format!(
                    "follow-up run {} names no incident or principal",
                    run.id
                )));
            };
            let mut tx = store.write.begin().await?;
            let moved = sqlx::query(
                "UPDATE incidents SET latest_run_id = $4 WHERE playbook = $1 \
                 AND principal_key = $2 AND incident_id = $3 AND latest_run_id = $5",
            )
            .bind(&run.playbook)
            .bind(key)
            .bind(&follows.incident_id)
            .bind(&run.id)
            .bind(&follows.run_id)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 1 {
                insert_run_in(&mut tx, run).await?;
                tx.commit().await?;
                return Ok(None);
            }
            // Another matcher moved the incident on first: join the run it made.
            let latest: Option<String> = sqlx::query_scalar(
                "SELECT latest_run_id FROM incidents WHERE playbook = $1 AND principal_key = $2",
            )
            .bind(&run.playbook)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let latest = latest.unwrap_or_else(|| follows.run_id.clone());
            if let Some(alert_id) = &run.alert_id {
                super::imp::link_alert_in(&mut tx, &latest, alert_id).await?;
            }
            tx.commit().await?;
            Ok(Some(latest))
        }

        pub(super) async fn reserve_principal(
            store: &$store,
            tenant: &str,
            principal_key: &str,
            cap: u64,
            since: chrono::DateTime<chrono::Utc>,
        ) -> Result<Reservation, StoreError> {
            let mut tx = store.write.begin().await?;
            // Every reservation in the tenant takes this row's lock first: on PostgreSQL
            // they run one after another, so each counts the ones before it.
            sqlx::query(
                "INSERT INTO budget_locks (tenant, at) VALUES ($1, $2) \
                 ON CONFLICT (tenant) DO UPDATE SET at = excluded.at",
            )
            .bind(tenant)
            .bind(ts(now()))
            .execute(&mut *tx)
            .await?;
            let mine: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM effects WHERE tenant = $1 AND principal_key = $2 \
                 AND at >= $3",
            )
            .bind(tenant)
            .bind(principal_key)
            .bind(ts(truncate(since)))
            .fetch_one(&mut *tx)
            .await?;
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT principal_key) FROM effects WHERE tenant = $1 \
                 AND at >= $2 AND principal_key <> $3",
            )
            .bind(tenant)
            .bind(ts(truncate(since)))
            .bind(principal_key)
            .fetch_one(&mut *tx)
            .await?;
            let others = others.max(0) as u64;
            let granted = mine > 0 || others < cap;
            if mine == 0 && granted {
                sqlx::query(
                    "INSERT INTO effects (tenant, action, principal_key, at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant)
                .bind(RESERVATION_ACTION)
                .bind(principal_key)
                .bind(ts(now()))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Reservation { granted, others })
        }

        pub(super) async fn set_run_status_fenced(
            store: &$store,
            id: &str,
            fence: Fence,
            status: RunStatus,
        ) -> Result<(), StoreError> {
            // A cancelled run stays cancelled, as with `set_run_status`.
            let done = sqlx::query(
                "UPDATE runs SET status = $2, updated_at = $3 \
                 WHERE id = $1 AND fence = $4 AND status <> 'cancelled'",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(ts(now()))
            .bind(fence.0)
            .execute(&store.write)
            .await?;
            if done.rows_affected() == 0 {
                if let Some(run) = store.get_run(id).await?
                    && run.fence == fence
                    && run.status == RunStatus::Cancelled
                {
                    return Ok(());
                }
                return Err(fence_refusal(&store.read, id, fence).await);
            }
            Ok(())
        }

        pub(super) async fn save_plan(
            store: &$store,
            run_id: &str,
            fence: Fence,
            plan: &serde_json::Value,
            plan_hash: &str,
        ) -> Result<(), StoreError> {
            let done = sqlx::query(
                "UPDATE runs SET plan = $2, plan_hash = $3, updated_at = $4 \
                 WHERE id = $1 AND fence = $5",
            )
            .bind(run_id)
            .bind(Json(plan))
            .bind(plan_hash)
            .bind(ts(now()))
            .bind(fence.0)
            .execute(&store.write)
            .await?;
            if done.rows_affected() == 0 {
                return Err(fence_refusal(&store.read, run_id, fence).await);
            }
            Ok(())
        }

        pub(super) async fn save_report(
            store: &$store,
            run_id: &str,
            fence: Fence,
            report: &serde_json::Value,
        ) -> Result<(), StoreError> {
            let done = sqlx::query(
                "UPDATE runs SET report = $2, updated_at = $3 WHERE id = $1 AND fence = $4",
            )
            .bind(run_id)
            .bind(Json(report))
            .bind(ts(now()))
            .bind(fence.0)
            .execute(&store.write)
            .await?;
            if done.rows_affected() == 0 {
                return Err(fence_refusal(&store.read, run_id, fence).await);
            }
            Ok(())
        }

        pub(super) async fn journal(
            store: &$store,
            run_id: &str,
            fence: Fence,
            step_id: &str,
            item: u32,
            state: StepState,
            detail: &serde_json::Value,
        ) -> Result<JournalEntry, StoreError> {
            let at = now();
            // The fence is checked in the same statement (on PostgreSQL under a share lock
            // on the run, so a concurrent claim waits for this write or refuses it).
            let sql = format!(
                "INSERT INTO journal (run_id, step_id, item, state, detail, at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
                 (SELECT 1 FROM runs WHERE id = $1 AND fence = $7{FENCE_LOCK}) RETURNING seq"
            );
            let seq: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(run_id)
                .bind(step_id)
                .bind(i64::from(item))
                .bind(state.as_str())
                .bind(Json(detail))
                .bind(ts(at))
                .bind(fence.0)
                .fetch_optional(&store.write)
                .await
                .map_err(|e| StoreError::from_write(e, "run", run_id))?;
            let Some(seq) = seq else {
                return Err(fence_refusal(&store.read, run_id, fence).await);
            };
            Ok(JournalEntry {
                seq,
                step_id: step_id.to_string(),
                item,
                state,
                detail: detail.clone(),
                at,
            })
        }

        pub(super) async fn claim_run(
            store: &$store,
            worker_id: &str,
            run_id: &str,
            lease: std::time::Duration,
        ) -> Result<Option<Fence>, StoreError> {
            let fence: Option<i64> = sqlx::query_scalar(
                "UPDATE runs SET lease_owner = $1, lease_until = $2, fence = fence + 1 \
                 WHERE id = $3 AND (lease_owner IS NULL OR lease_until IS NULL \
                   OR lease_until <= $4 OR lease_owner = $1) RETURNING fence",
            )
            .bind(worker_id)
            .bind(ts(lease_until(lease)))
            .bind(run_id)
            .bind(ts(now()))
            .fetch_optional(&store.write)
            .await?;
            if fence.is_none() && store.get_run(run_id).await?.is_none() {
                return Err(StoreError::NotFound { what: "run", id: run_id.to_string() });
            }
            Ok(fence.map(Fence))
        }

        pub(super) async fn claim_runs(
            store: &$store,
            worker_id: &str,
            lease: std::time::Duration,
            limit: u32,
        ) -> Result<Vec<Claim>, StoreError> {
            let rows = sqlx::query(CLAIM_SQL)
                .bind(worker_id)
                .bind(ts(lease_until(lease)))
                .bind(ts(now()))
                .bind(i64::from(limit))
                .fetch_all(&store.write)
                .await?;
            let mut claims = rows
                .iter()
                .map(|row| {
                    Ok(Claim { run_id: row.try_get("id")?, fence: Fence(row.try_get("fence")?) })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            claims.sort_by(|a, b| a.run_id.cmp(&b.run_id));
            Ok(claims)
        }

        pub(super) async fn heartbeat(
            store: &$store,
            worker_id: &str,
            run_id: &str,
            lease: std::time::Duration,
        ) -> Result<(), StoreError> {
            let done = sqlx::query(
                "UPDATE runs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(run_id)
            .bind(worker_id)
            .bind(ts(lease_until(lease)))
            .execute(&store.write)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::LeaseLost {
                    run_id: run_id.to_string(),
                    worker_id: worker_id.to_string(),
                });
            }
            Ok(())
        }

        pub(super) async fn release(store: &$store, worker_id: &str, run_id: &str) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE runs SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(run_id)
            .bind(worker_id)
            .execute(&store.write)
            .await?;
            Ok(())
        }

        pub(super) async fn record_run_failure(
            store: &$store,
            id: &str,
            failure: &FailedAttempt,
        ) -> Result<(), StoreError> {
            // A retry keeps the status: a running run that failed to re-plan resumes as
            // running, with recovery judging its stored plan.
            let sql = format!(
                "UPDATE runs SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = $3, updated_at = $4, \
                 status = CASE WHEN $3 IS NULL THEN 'failed' ELSE status END \
                 WHERE id = $1 AND status IN {WORKED_ON}"
            );
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(&failure.reason)
                .bind(failure.retry_at.map(|t| ts(truncate(t))))
                .bind(ts(now()))
                .execute(&store.write)
                .await?;
            if done.rows_affected() == 0 {
                store.run_exists(id).await?;
            }
            Ok(())
        }

        pub(super) async fn cancel_run(store: &$store, id: &str) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE runs SET status = 'cancelled', next_attempt_at = NULL, \
                 updated_at = $2 \
                 WHERE id = $1 AND status IN ('pending', 'planning', 'awaiting_approval')",
            )
            .bind(id)
            .bind(ts(now()))
            .execute(&store.write)
            .await?;
            if done.rows_affected() == 0 {
                store.run_exists(id).await?;
                return Ok(false);
            }
            Ok(true)
        }

        pub(super) async fn throttle_held_until(
            store: &$store,
            budget_key: &str,
            api: &str,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT held_until FROM throttle WHERE budget_key = $1 AND api = $2 \
                 AND held_until > $3",
            )
            .bind(budget_key)
            .bind(api)
            .bind(ts(now()))
            .fetch_optional(&store.read)
            .await?)
        }

        pub(super) async fn hold_throttle(
            store: &$store,
            budget_key: &str,
            api: &str,
            until: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO throttle (budget_key, api, held_until) VALUES ($1, $2, $3) \
                 ON CONFLICT (budget_key, api) DO UPDATE SET held_until = CASE \
                 WHEN excluded.held_until > throttle.held_until THEN excluded.held_until \
                 ELSE throttle.held_until END",
            )
            .bind(budget_key)
            .bind(api)
            .bind(ts(truncate(until)))
            .execute(&store.write)
            .await?;
            Ok(())
        }

        pub(super) async fn claim_alerts(
            store: &$store,
            limit: u32,
            hold: std::time::Duration,
        ) -> Result<Vec<AlertRecord>, StoreError> {
            use super::imp::{ALERT_COLUMNS, alert_from_row};
            // Claimed by moving the next attempt past the hold: another matcher skips it,
            // and if this one dies the alert is due again once the hold passes.
            let sql = format!(
                "UPDATE alerts SET next_attempt_at = $3 WHERE id IN (SELECT id FROM alerts \
                 WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $2) \
                 ORDER BY received_at, id LIMIT $1{CLAIM_LOCK}) \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $2) RETURNING {ALERT_COLUMNS}"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(limit))
                .bind(ts(now()))
                .bind(ts(lease_until(hold)))
                .fetch_all(&store.write)
                .await?;
            let mut alerts = rows.iter().map(alert_from_row).collect::<Result<Vec<_>, _>>()?;
            alerts.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
            Ok(alerts)
        }
        }
    };
}

pub(crate) use run_fns;
