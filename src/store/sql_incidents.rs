//! Runs within incidents, shared by both backends like `sql.rs`: creating or joining an
//! incident's run in one step, follow-up runs, fenced writes and blast-radius reservations —
//! the writes replicas must agree on.

/// Expands to the module `incidents` of free functions over `$store`, which `store_impl!`
/// delegates to.
macro_rules! incident_fns {
    ($store:ident, $db:ty) => {
        mod incidents {
        use super::{$store, ts};
        use sqlx::Row as _;
        use sqlx::types::Json;

        use $crate::store::{
            Fence, Joined, NewRun, Reservation, RunStatus, Store, StoreError, now, parse_status,
            truncate,
        };

        type Tx = sqlx::Transaction<'static, $db>;

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
            let row = sqlx::query(
                "INSERT INTO incidents (playbook, principal_key, incident_id, latest_run_id, \
                 opened_at) VALUES ($1, $2, $3, $3, $4) \
                 ON CONFLICT (playbook, principal_key) DO UPDATE SET \
                 incident_id = CASE WHEN incidents.opened_at < $5 \
                   THEN excluded.incident_id ELSE incidents.incident_id END, \
                 latest_run_id = CASE WHEN incidents.opened_at < $5 \
                   THEN excluded.latest_run_id ELSE incidents.latest_run_id END, \
                 opened_at = CASE WHEN incidents.opened_at < $5 \
                   THEN excluded.opened_at ELSE incidents.opened_at END \
                 RETURNING incident_id, latest_run_id",
            )
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
        }
    };
}

pub(crate) use incident_fns;
