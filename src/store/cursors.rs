//! Positions in the audit trail that followers keep: the notifier reads the trail from its
//! cursor and tells people about the events it finds. The position lives in the store, so a
//! restart resumes where the last post left off, and a lease on the cursor means that with
//! several replicas exactly one follows it at a time.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait CursorStore: Send + Sync {
    /// Leases the cursor `name` to `worker_id` for `lease` and returns the last audit `seq`
    /// it has handled; `None` while another worker holds it. A cursor seen for the first
    /// time starts at the trail's current head: a follower configured today tells about what
    /// happens from today, not about the trail's whole history.
    async fn claim_cursor(
        &self,
        name: &str,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Option<i64>, StoreError>;
    /// Moves the cursor on to `seq` (never back) while `worker_id` still holds it;
    /// [`StoreError::LeaseLost`] when it does not.
    async fn advance_cursor(&self, name: &str, worker_id: &str, seq: i64)
    -> Result<(), StoreError>;
}
