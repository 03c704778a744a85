//! Group commit for ingestion: many concurrent `insert` calls share one transaction.
//!
//! A durable commit costs an fsync, and an fsync costs the same for one alert as for 256. The
//! batcher collects the alerts that arrive within [`MAX_WAIT`] of the first (at most
//! [`MAX_BATCH`]), stores them with one [`Store::insert_alerts_batch`], and only then answers
//! each caller: an alert is durable before it is acknowledged, exactly as with
//! [`Store::insert_alert`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{InsertOutcome, NewAlert, Store, StoreError};

/// How long the first alert of a batch waits for company.
pub const MAX_WAIT: Duration = Duration::from_millis(2);
/// The most alerts one commit carries.
pub const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

/// A cloneable handle to the batching task; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<(NewAlert, Reply)>,
}

impl Batcher {
    /// Starts the batching task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Batcher {
        Batcher::with_limits(store, MAX_WAIT, MAX_BATCH)
    }

    /// As [`Batcher::spawn`] with other limits (tests, tuning).
    pub fn with_limits(store: Arc<dyn Store>, max_wait: Duration, max_batch: usize) -> Batcher {
        let max_batch = max_batch.max(1);
        // Room for a few batches in flight behind the one being committed: back-pressure
        // beyond that reaches the HTTP handlers instead of growing memory.
        let (tx, rx) = mpsc::channel(max_batch * 4);
        tokio::spawn(run(store, rx, max_wait, max_batch));
        Batcher { tx }
    }

    /// Stores one alert as part of the next group commit; returns once that commit is durable.
    pub async fn insert(&self, alert: NewAlert) -> Result<InsertOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((alert, reply))
            .await
            .map_err(|_| StoreError::BatcherClosed)?;
        answer.await.map_err(|_| StoreError::BatcherClosed)?
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(NewAlert, Reply)>,
    max_wait: Duration,
    max_batch: usize,
) {
    let mut alerts = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some((alert, reply)) = rx.recv().await {
        alerts.push(alert);
        replies.push(reply);
        let deadline = Instant::now() + max_wait;
        while alerts.len() < max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((alert, reply))) => {
                    alerts.push(alert);
                    replies.push(reply);
                }
                // Deadline reached, or every handle dropped: commit what we have.
                Ok(None) | Err(_) => break,
            }
        }
        match store.insert_alerts_batch(&alerts).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    // A caller that went away still has its alert stored; nothing to do.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(message = "Alert batch was not stored.", %error, alerts = alerts.len());
                let error = Arc::new(error);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::BatchFailed(error.clone())));
                }
            }
        }
        alerts.clear();
    }
}
