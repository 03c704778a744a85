//! What an operator does about work that is stuck or unwanted: make a failed alert pending
//! again (`alerts retry`), and cancel a run that has not started executing (`cancel`). Each
//! is one conditional update in the store, so it cannot race a worker: a run a worker has
//! already started executing is not cancelled, and a cancelled run is never carried on.

use super::events::Audit;
use super::runtime::{Service, internal};
use super::service::{Caller, ServiceError};
use crate::store::{AlertRecord, AlertStatus, RunRecord};

impl Service {
    /// Makes a `failed` alert pending and due, its attempts reset; any other status is a
    /// conflict.
    pub(super) async fn retry_failed_alert(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<AlertRecord, ServiceError> {
        let retried = self
            .store
            .retry_alert(id)
            .await
            .map_err(not_found_or_internal)?;
        let alert = self
            .store
            .get_alert(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ServiceError::NotFound(format!("no alert `{id}`")))?;
        if !retried {
            return Err(ServiceError::Conflict(format!(
                "alert {id} is {}; only a failed alert can be retried",
                alert.status.as_str()
            )));
        }
        self.emit(Audit::AlertRetried { alert_id: id }, Some(&caller.name))
            .await;
        self.wake.notify_one();
        Ok(alert)
    }

    /// Cancels a run that is pending, planning or awaiting approval; a run that is executing
    /// or finished is a conflict.
    pub(super) async fn cancel_run(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<RunRecord, ServiceError> {
        let before = self.get_run(id).await?;
        let cancelled = self
            .store
            .cancel_run(id)
            .await
            .map_err(not_found_or_internal)?;
        let run = self.get_run(id).await?;
        if !cancelled {
            return Err(ServiceError::Conflict(format!(
                "run {id} is {}; only a pending, planning or awaiting_approval run can be cancelled",
                run.status.as_str()
            )));
        }
        self.emit(
            Audit::RunCancelled {
                run_id: id,
                was: before.status.as_str(),
            },
            Some(&caller.name),
        )
        .await;
        Ok(run)
    }

    /// Stored alerts, newest first, optionally only those with `status`.
    pub(super) async fn list_alerts(
        &self,
        limit: u32,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, ServiceError> {
        self.store
            .list_alerts(limit, status)
            .await
            .map_err(internal)
    }
}

fn not_found_or_internal(e: crate::store::StoreError) -> ServiceError {
    match e {
        crate::store::StoreError::NotFound { what, id } => {
            ServiceError::NotFound(format!("no {what} `{id}`"))
        }
        other => internal(other),
    }
}
