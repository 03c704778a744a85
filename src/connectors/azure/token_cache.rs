//! Access tokens per (tenant, scope), refreshed before they expire, fetched once however
//! many callers ask at the same moment.
//!
//! The hit path is a read lock on a small map plus a read lock on the slot and an `Instant`
//! comparison: no allocation, no await. Only a miss takes the slot's async mutex, so 100
//! concurrent callers on a cold cache cause one token request (single flight).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::connectors::error::ApiError;

/// Refresh this long before expiry for ordinary (about an hour) tokens...
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An access token and when to stop using it.
pub struct CachedToken {
    secret: SecretString,
    expires_at: Instant,
    refresh_at: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

impl CachedToken {
    /// A token valid for `lifetime` from now. It is refreshed 5 minutes before expiry, or
    /// at half its lifetime when it lives less than 10 minutes, so a short-lived token is
    /// never used in its last moments.
    pub fn new(secret: SecretString, lifetime: Duration) -> CachedToken {
        let now = Instant::now();
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        CachedToken {
            secret,
            expires_at: now + lifetime,
            refresh_at: now + lifetime - margin,
        }
    }

    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether it is still fresh enough to hand out.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Arc<CachedToken>>>,
    /// Held while a token is being fetched; waiters re-check `current` after acquiring it.
    refreshing: tokio::sync::Mutex<()>,
}

impl Slot {
    fn fresh(&self) -> Option<Arc<CachedToken>> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(t) if t.is_fresh(Instant::now()) => Some(t.clone()),
            _ => None,
        }
    }
}

/// Tokens keyed by tenant, then scope (nested so a lookup borrows both `&str`s).
#[derive(Default)]
pub struct TokenCache {
    slots: RwLock<HashMap<String, HashMap<String, Arc<Slot>>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    fn slot(&self, tenant: &str, scope: &str) -> Arc<Slot> {
        {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slots.get(tenant).and_then(|m| m.get(scope)) {
                return slot.clone();
            }
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(tenant.to_string())
            .or_default()
            .entry(scope.to_string())
            .or_default()
            .clone()
    }

    /// The cached token if it is fresh; never waits.
    pub fn peek(&self, tenant: &str, scope: &str) -> Option<Arc<CachedToken>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(tenant)?.get(scope)?.fresh()
    }

    /// A fresh token, calling `fetch` only when none is cached and no other caller is
    /// already fetching one. A failed fetch is not cached: the next caller tries again.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        tenant: &str,
        scope: &str,
        fetch: F,
    ) -> Result<Arc<CachedToken>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, ApiError>>,
    {
        if let Some(token) = self.peek(tenant, scope) {
            return Ok(token);
        }
        let slot = self.slot(tenant, scope);
        let _flight = slot.refreshing.lock().await;
        if let Some(token) = slot.fresh() {
            return Ok(token);
        }
        let token = Arc::new(fetch().await?);
        *slot.current.write().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Ok(token)
    }

    /// Drops a token the server rejected (401), so the next call fetches a new one.
    pub fn invalidate(&self, tenant: &str, scope: &str) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(tenant).and_then(|m| m.get(scope)) {
            *slot.current.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn token(n: u32, lifetime: Duration) -> CachedToken {
        CachedToken::new(SecretString::from(format!("t{n}")), lifetime)
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_before_expiry() {
        let cache = TokenCache::new();
        let fetches = AtomicU32::new(0);
        let get = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(token(n, Duration::from_secs(3600)))
        };
        let t = cache.get_or_fetch("t", "s", get).await.unwrap();
        assert_eq!(t.secret().expose_secret(), "t0");
        tokio::time::advance(Duration::from_secs(3600 - 301)).await;
        let t = cache.get_or_fetch("t", "s", get).await.unwrap();
        assert_eq!(
            t.secret().expose_secret(),
            "t0",
            "still outside the 5 min margin"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let t = cache.get_or_fetch("t", "s", get).await.unwrap();
        assert_eq!(
            t.secret().expose_secret(),
            "t1",
            "inside the margin: refreshed"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_refresh_at_half_life() {
        let cache = TokenCache::new();
        let fetches = AtomicU32::new(0);
        let get = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(token(n, Duration::from_secs(60)))
        };
        cache.get_or_fetch("t", "s", get).await.unwrap();
        tokio::time::advance(Duration::from_secs(29)).await;
        cache.get_or_fetch("t", "s", get).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.get_or_fetch("t", "s", get).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::new());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch("t", "s", || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(token(0, Duration::from_secs(3600)))
                    })
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn scopes_and_tenants_are_separate_and_errors_are_not_cached() {
        let cache = TokenCache::new();
        let err = cache
            .get_or_fetch("t", "a", || async { Err(ApiError::Config("no".into())) })
            .await;
        assert!(err.is_err());
        let a = cache
            .get_or_fetch("t", "a", || async {
                Ok(token(1, Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        let b = cache
            .get_or_fetch("t", "b", || async {
                Ok(token(2, Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        let c = cache
            .get_or_fetch("u", "a", || async {
                Ok(token(3, Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        assert_eq!(a.secret().expose_secret(), "t1");
        assert_eq!(b.secret().expose_secret(), "t2");
        assert_eq!(c.secret().expose_secret(), "t3");
        cache.invalidate("t", "a");
        assert!(cache.peek("t", "a").is_none());
    }

    /// A micro-benchmark, not a test (STYLE.md: no wall-clock assertions in the suite):
    /// `cargo test --release --lib hit_path -- --ignored --nocapture` prints the cost of
    /// one hit; the target is well under 1 µs.
    #[tokio::test]
    #[ignore = "micro-benchmark"]
    async fn hit_path_is_cheap() {
        let cache = TokenCache::new();
        cache
            .get_or_fetch("tenant", "https://graph.microsoft.com/.default", || async {
                Ok(token(0, Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        let n = 100_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let t = cache.peek("tenant", "https://graph.microsoft.com/.default");
            assert!(t.is_some());
        }
        let per = start.elapsed() / n;
        println!("{per:?} per cache hit");
    }
}
