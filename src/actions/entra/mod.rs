//! Actions on Entra ID users and groups, through Microsoft Graph.

pub mod disable_user;
pub mod enable_user;
pub mod force_password_reset;
pub mod get_user;
pub mod require_mfa;
pub mod revoke_sessions;

use serde_json::Value;

use super::encode;
use super::unknown;
use super::{ActionError, PlanContext};
use crate::connectors::{Api, LookupOutcome};

/// The properties a user GET must `$select` (they are not in Graph's default set).
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,accountEnabled,onPremisesSyncEnabled,onPremisesImmutableId,userType,signInSessionsValidFromDateTime";

/// `{graph}/v1.0/users/{id|upn}`. A UPN starting with `$` must use the `users('…')` form
/// (reference B0); a guest's `#EXT#` is percent-encoded.
pub fn user_url(base_v1: &str, user: &str) -> String {
    if user.starts_with('$') {
        format!(
            "{base_v1}/users({})",
            encode::segment(&encode::odata_string(user))
        )
    } else {
        format!("{base_v1}/users/{}", encode::segment(user))
    }
}

/// Reads the user the step names. `Ok(None)` means no credentials: the state is unknown.
pub async fn lookup_user(ctx: &PlanContext<'_>, user: &str) -> Result<Option<Value>, ActionError> {
    if unknown::is_placeholder(user) {
        return Ok(None);
    }
    let url = format!(
        "{}?$select={}",
        user_url(&ctx.endpoints.graph_v1(), user),
        USER_SELECT
    );
    match ctx.lookup.get(Api::Graph, &url).await? {
        LookupOutcome::Found(v) => Ok(Some(v)),
        LookupOutcome::NotFound => Err(ActionError::Refused(format!(
            "user `{user}` does not exist in the tenant"
        ))),
        LookupOutcome::Unavailable => Ok(None),
    }
}

/// The id to put in a request URL: the object id when the lookup found one, else what the
/// step was given.
pub fn user_key(found: Option<&Value>, given: &str) -> String {
    found
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| given.to_string())
}

/// The user's object id, for bodies that accept nothing else (`directoryObjects/{id}`,
/// `userIds`): the looked-up id, the given value when it already is one, else a placeholder
/// the run fills in.
pub fn object_id(found: Option<&Value>, given: &str) -> String {
    if let Some(id) = found.and_then(|u| u.get("id")).and_then(Value::as_str) {
        return id.to_string();
    }
    if super::is_guid(given) || unknown::is_placeholder(given) {
        return given.to_string();
    }
    unknown::placeholder(&format!("object id of {given}"))
}

/// Whether the user is a B2B guest: `userType` says so, or the UPN carries `#EXT#`.
pub fn is_guest(found: Option<&Value>, given: &str) -> bool {
    let upn = found
        .and_then(|u| u.get("userPrincipalName"))
        .and_then(Value::as_str)
        .unwrap_or(given);
    found.is_some_and(|u| u["userType"] == "Guest")
        || upn.to_ascii_uppercase().contains("#EXT#")
        || given.to_ascii_uppercase().contains("#EXT#")
}

/// Whether Active Directory is the user's source of authority.
pub fn is_synced(found: Option<&Value>) -> bool {
    found.is_some_and(|u| u["onPremisesSyncEnabled"] == Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_urls() {
        let b = "https://graph.microsoft.com/v1.0";
        assert_eq!(
            user_url(b, "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"),
            "https://graph.microsoft.com/v1.0/users/ann_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
        );
        assert_eq!(
            user_url(b, "$adm@contoso.com"),
            "https://graph.microsoft.com/v1.0/users('$adm@contoso.com')"
        );
        assert_eq!(
            user_url(b, "o'brien@contoso.com"),
            "https://graph.microsoft.com/v1.0/users/o'brien@contoso.com"
        );
    }
}
