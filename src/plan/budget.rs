//! One budget of upstream reads per planning. Every page followed, every fact read and every
//! API-version lookup goes through the planner's [`Lookup`]; counting there bounds what one
//! alert or one request can make riposte read, however many pages or targets it names
//! (`connectors::paging::MAX_PAGES` bounds one listing only).

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use crate::connectors::{ApiError, ApiRequest, Lookup, LookupOutcome};

/// `[actions] max_planning_reads` when configuration does not set it.
pub const DEFAULT_MAX_PLANNING_READS: u32 = 1000;

/// A [`Lookup`] that refuses every read past `limit`, and remembers that it did.
pub(super) struct ReadBudget<'a> {
    inner: &'a dyn Lookup,
    limit: u32,
    used: AtomicU32,
}

impl<'a> ReadBudget<'a> {
    pub(super) fn new(inner: &'a dyn Lookup, limit: u32) -> ReadBudget<'a> {
        ReadBudget {
            inner,
            limit,
            used: AtomicU32::new(0),
        }
    }

    /// Whether a read was refused: the plan would be made from a partial view.
    pub(super) fn exceeded(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.limit
    }

    /// Reads sent so far.
    #[cfg(test)]
    pub(super) fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed).min(self.limit)
    }
}

#[async_trait]
impl Lookup for ReadBudget<'_> {
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
        // Counted before sending, so concurrent reads cannot overshoot the limit together.
        let n = self.used.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if n > self.limit {
            // Keep the counter above the limit without wrapping.
            self.used
                .store(self.limit.saturating_add(1), Ordering::Relaxed);
            return Err(ApiError::Invalid(format!(
                "the planning read budget ([actions] max_planning_reads = {}) is spent",
                self.limit
            )));
        }
        self.inner.read(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{Api, NoLookup};

    #[tokio::test]
    async fn reads_past_the_limit_are_refused_and_remembered() {
        let budget = ReadBudget::new(&NoLookup, 2);
        for _ in 0..2 {
            budget.get(Api::Graph, "https://g/v1.0/me").await.unwrap();
        }
        assert!(!budget.exceeded());
        assert_eq!(budget.used(), 2);
        let err = budget
            .get(Api::Graph, "https://g/v1.0/me")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("max_planning_reads = 2"), "{err}");
        assert!(budget.exceeded());
    }
}
