//! Actions on Entra ID users and groups, through Microsoft Graph.

pub mod disable_user;
pub mod enable_user;
pub mod force_password_reset;
pub mod get_user;
pub mod require_mfa;
pub mod revoke_sessions;

use serde_json::{Value, json};

use super::encode;
use super::unknown;
use super::{ActionError, Compensation, Executed, PlanContext, Verification};
use crate::connectors::{Api, ApiRequest, Lookup, LookupOutcome, Method};

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
    if !crate::alert::is_user_key(user) {
        return Err(ActionError::Params(format!(
            "user `{user}` is not an object id or a user principal name"
        )));
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

/// `{owner}/transitiveMemberOf/microsoft.graph.directoryRole?$select=…&$count=true`: the
/// active directory roles of a user or service principal, including those held through
/// role-assignable groups (reference B7). The type cast makes it an advanced query, which
/// Graph serves only with `ConsistencyLevel: eventual` and `$count=true`
/// (graph/aad-advanced-queries). `owner_url` is already encoded.
pub fn directory_roles_request(owner_url: &str, select: &str) -> ApiRequest {
    let mut req = ApiRequest::get(
        Api::Graph,
        format!(
            "{owner_url}/transitiveMemberOf/microsoft.graph.directoryRole?$select={select}&$count=true"
        ),
    );
    req.headers
        .insert("ConsistencyLevel".to_string(), "eventual".to_string());
    req
}

/// Whether Active Directory is the user's source of authority.
pub fn is_synced(found: Option<&Value>) -> bool {
    found.is_some_and(|u| u["onPremisesSyncEnabled"] == Value::Bool(true))
}

/// A PATCH that sets absolute values (`accountEnabled`, password flags, the MFA state).
/// Sending it twice leaves the same state as once, so the client may resend it after a
/// throttled or transient answer instead of failing the step.
pub fn set_properties(url: impl Into<String>, body: Value) -> ApiRequest {
    ApiRequest::new(Method::Patch, Api::Graph, url)
        .with_body(body)
        .retry_safe()
}

/// `{user url}?$select=…` for a read-back. The user URL is the one the step's request was
/// sent to (without `suffix`, e.g. `/revokeSignInSessions`), so the read targets exactly the
/// object that was changed.
pub fn read_back_url(done: &Executed<'_>, suffix: &str, select: &str) -> Option<String> {
    let url = &done.requests.first()?.url;
    let user = url.strip_suffix(suffix)?;
    Some(format!("{user}?$select={select}"))
}

/// Reads `accountEnabled` back and compares it with `expected`.
pub async fn verify_account_enabled(
    done: &Executed<'_>,
    lookup: &dyn Lookup,
    expected: bool,
) -> Result<Verification, ActionError> {
    let Some(url) = read_back_url(done, "", "id,accountEnabled") else {
        return Ok(Verification::Unchecked("no request was sent".into()));
    };
    let found = lookup.get(Api::Graph, &url).await?;
    Ok(match &found {
        LookupOutcome::Found(u) if u["accountEnabled"] == Value::Bool(expected) => {
            Verification::Verified(json!({ "accountEnabled": expected }))
        }
        LookupOutcome::Found(u) => Verification::Mismatch(format!(
            "accountEnabled is {} after setting it to {expected}",
            u["accountEnabled"]
        )),
        other => super::unreadable(other, "the user"),
    })
}

/// Undoes an `accountEnabled` change: the same PATCH with the previous value, but only when
/// the plan read that value. Without it riposte cannot tell whether flipping back restores
/// anything, and says so instead of guessing.
pub fn restore_account_enabled(done: &Executed<'_>, changed_to: bool) -> Compensation {
    let Some(sent) = done.requests.first() else {
        return Compensation::NotNeeded;
    };
    match done
        .pre_state
        .get("accountEnabled")
        .and_then(Value::as_bool)
    {
        Some(before) if before != changed_to => Compensation::Requests(vec![set_properties(
            sent.url.clone(),
            json!({ "accountEnabled": before }),
        )]),
        Some(_) => Compensation::NotNeeded,
        None => Compensation::Irreversible(format!(
            "the account's state before the run was not read (planned without credentials), so riposte cannot tell whether setting accountEnabled back to {} restores it; use entra.{}_user by hand if it should",
            !changed_to,
            if changed_to { "disable" } else { "enable" }
        )),
    }
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
