//! The last look before a request leaves. A caller that may lose its right to send while a
//! request waits — a worker whose lease on a run can lapse while the request sits in the
//! token bucket, behind a shared throttle hold, an ARM slowdown, a token fetch or a retry's
//! backoff — runs the send inside [`guarded`] with a gate; the HTTP client asks the gate right
//! before each attempt goes on the wire, after every wait, and sends nothing when it says no.
//! A task-local value rather than a parameter, so every path to the wire (Graph, ARM, their
//! long-running operations, pages) is covered without each one passing it along.

use std::future::Future;
use std::sync::Arc;

/// Whether a request may still be sent; `Err` says why not.
pub type SendGate = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

tokio::task_local! {
    static GATE: SendGate;
}

/// Runs `send` with `gate` consulted before each attempt of each request it makes.
pub async fn guarded<F: Future>(gate: SendGate, send: F) -> F::Output {
    GATE.scope(gate, send).await
}

/// The gate's answer for the current task; no gate, no objection.
pub(crate) fn check() -> Result<(), String> {
    GATE.try_with(|gate| gate()).unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_is_asked_inside_its_scope_only() {
        assert!(check().is_ok());
        let closed: SendGate = Arc::new(|| Err("lease lapsed".into()));
        assert_eq!(
            guarded(closed, async { check() }).await,
            Err("lease lapsed".to_string())
        );
        assert!(check().is_ok());
    }
}
