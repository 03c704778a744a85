//! Review-page sessions (DESIGN.md §3 "Review page"): who signed in, with which role, until
//! when. A session is state another replica must see (a sign-in on one replica is honoured by
//! the next request on another), so it is a row, not memory.
//!
//! The store never sees a session id: it keeps the sha256 of it, so reading the table (a
//! backup, a leak) grants nothing. The CSRF token is kept as is: it is worthless without the
//! session cookie it is bound to.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One signed-in session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex sha256 of the session id the cookie carries.
    pub id_sha256: String,
    /// The caller the session acts as (`token:<name>`, `oidc:<oid>`); runs and approvals
    /// record it.
    pub caller: String,
    /// The role granted at sign-in, in its configuration spelling (`viewer`, `approver`…); the
    /// server parses it, the store does not know roles.
    pub role: String,
    /// The token every form of the session carries.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    /// After this the session is gone: `find_session` no longer returns it.
    pub expires_at: DateTime<Utc>,
}

/// Where sessions live; every [`Store`](super::Store) is one.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session; a repeated id is [`StoreError::AlreadyExists`].
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session with this id digest, if it exists and has not expired at `now`.
    async fn find_session(
        &self,
        id_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Removes the session (sign-out); whether there was one.
    async fn delete_session(&self, id_sha256: &str) -> Result<bool, StoreError>;
    /// Removes every session expired at `now`; how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
