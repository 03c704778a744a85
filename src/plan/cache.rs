//! One planning reads each thing once. Steps are planned side by side, and several of them
//! read the same object: `arm.get_resource` and the snapshot's target facts read the same VM,
//! `entra.get_user` reads the user by the alert's UPN and `entra.disable_user` reads it again
//! by the object id the first read found. The cache answers the second read from the first,
//! and a read asked while the same one is in flight waits for it instead of sending again —
//! which also keeps the number of reads a planning makes independent of scheduling.
//!
//! Only successful answers are kept; a read that failed is asked again by the next caller.
//! A cache lives for one planning: re-planning reads the tenant as it is then.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::connectors::{Api, ApiError, ApiRequest, Lookup, LookupOutcome};

type Key = (Api, String, BTreeMap<String, String>);

/// A [`Lookup`] that sends each distinct read once.
pub(super) struct ReadCache<'a> {
    inner: &'a dyn Lookup,
    cells: Mutex<HashMap<Key, Arc<OnceCell<LookupOutcome>>>>,
}

impl<'a> ReadCache<'a> {
    pub(super) fn new(inner: &'a dyn Lookup) -> ReadCache<'a> {
        ReadCache {
            inner,
            cells: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, key: Key) -> Arc<OnceCell<LookupOutcome>> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(cells.entry(key).or_default())
    }

    /// A user read by its UPN is the same read by the object id it answered with: the object
    /// the directory returned *is* the user with that id, so a later read by id (what steps
    /// after `entra.get_user` send) is answered from it.
    fn alias_user(&self, req: &ApiRequest, found: &LookupOutcome) {
        let LookupOutcome::Found(user) = found else {
            return;
        };
        let (Some(id), Some(key)) = (user["id"].as_str(), user_key_in(&req.url)) else {
            return;
        };
        if !crate::actions::is_guid(id) || key.eq_ignore_ascii_case(id) {
            return;
        }
        let Some(by_id) = with_user_key(&req.url, id) else {
            return;
        };
        let cell = self.cell((req.api, by_id, req.headers.clone()));
        // Only fills a cell nobody has filled: an answer read by id itself wins.
        let _ = cell.set(found.clone());
    }
}

#[async_trait]
impl Lookup for ReadCache<'_> {
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
        crate::connectors::check_read(req)?;
        let cell = self.cell((req.api, req.url.clone(), req.headers.clone()));
        let mut first = false;
        let found = cell
            .get_or_try_init(|| async {
                first = true;
                self.inner.read(req).await
            })
            .await?
            .clone();
        if first && req.api == Api::Graph {
            self.alias_user(req, &found);
        }
        Ok(found)
    }
}

/// The `{key}` of a Graph `…/users/{key}?…` read (one user, no further path), as written.
fn user_key_in(url: &str) -> Option<&str> {
    let (path, _) = url.split_once('?').unwrap_or((url, ""));
    let (before, key) = path.rsplit_once('/')?;
    (before.ends_with("/v1.0/users") || before.ends_with("/beta/users"))
        .then_some(key)
        .filter(|k| !k.is_empty())
}

/// `url` with its user key replaced by `id`.
fn with_user_key(url: &str, id: &str) -> Option<String> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let (before, _) = path.rsplit_once('/')?;
    Some(match query {
        Some(q) => format!("{before}/{id}?{q}"),
        None => format!("{before}/{id}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};

    const ID: &str = "0f6c3a52-8d1e-4b7a-9c3f-2e5d7a1b4c60";

    /// Answers every read with a user, counting reads and holding each one for a moment so
    /// concurrent callers overlap.
    struct Counting(AtomicU32);

    #[async_trait]
    impl Lookup for Counting {
        async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if req.url.contains("missing") {
                return Err(ApiError::Invalid("refused".into()));
            }
            Ok(LookupOutcome::Found(
                json!({"id": ID, "userPrincipalName": "alex@contoso.com"}),
            ))
        }
    }

    fn get(url: &str) -> ApiRequest {
        ApiRequest::get(Api::Graph, url)
    }

    #[tokio::test]
    async fn concurrent_reads_of_one_url_send_once() {
        let inner = Counting(AtomicU32::new(0));
        let cache = ReadCache::new(&inner);
        let url = "https://graph/v1.0/users/alex%40contoso.com?$select=id";
        let (first, second) = (get(url), get(url));
        let (a, b) = tokio::join!(cache.read(&first), cache.read(&second));
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_user_read_by_upn_answers_the_read_by_its_id() {
        let inner = Counting(AtomicU32::new(0));
        let cache = ReadCache::new(&inner);
        cache
            .read(&get(
                "https://graph/v1.0/users/alex%40contoso.com?$select=id,accountEnabled",
            ))
            .await
            .unwrap();
        let by_id = format!("https://graph/v1.0/users/{ID}?$select=id,accountEnabled");
        cache.read(&get(&by_id)).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        // Another selection is another read.
        let other = format!("https://graph/v1.0/users/{ID}?$select=id");
        cache.read(&get(&other)).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_writes_are_refused() {
        let inner = Counting(AtomicU32::new(0));
        let cache = ReadCache::new(&inner);
        let url = "https://graph/v1.0/users/missing";
        assert!(cache.read(&get(url)).await.is_err());
        assert!(cache.read(&get(url)).await.is_err());
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        let mut post = get("https://graph/v1.0/users");
        post.method = crate::connectors::Method::Post;
        assert!(cache.read(&post).await.is_err());
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn only_a_single_user_read_has_a_user_key() {
        assert_eq!(
            user_key_in("https://g/v1.0/users/a%40b.com?$select=id"),
            Some("a%40b.com")
        );
        assert_eq!(user_key_in("https://g/v1.0/users/x/memberOf"), None);
        assert_eq!(user_key_in("https://g/v1.0/groups/x"), None);
    }
}
