//! Azure Resource Manager: routing, the bearer and `api-version` checks, ARM's error shape and
//! headers, paging, and the generic GET of any seeded resource.

mod activity_log;
mod authorization;
mod compute;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::Shared;
use super::auth::{ARM_AUDIENCES, AuthFailure};
use super::http::{self, Req};
use super::state::State;

/// ARM's error body: `{"error":{"code","message","target","details":[],"additionalInfo":[]}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    error_with_target(status, code, message, None)
}

pub fn error_with_target(
    status: StatusCode,
    code: &str,
    message: &str,
    target: Option<&str>,
) -> Response<Body> {
    http::json(
        status,
        &json!({"error": {
            "code": code,
            "message": message,
            "target": target,
            "details": [],
            "additionalInfo": [],
        }}),
    )
}

/// Headers ARM sends on every response.
pub fn decorate(req: &Req, response: &mut Response<Body>, write: bool, left: u32) {
    http::set_header(response, "x-ms-request-id", &req.ctx.request_id);
    let correlation = req
        .header("x-ms-correlation-request-id")
        .map(str::to_owned)
        .unwrap_or_else(|| req.ctx.request_id.clone());
    http::set_header(response, "x-ms-correlation-request-id", &correlation);
    if let Some(id) = &req.ctx.client_request_id {
        http::set_header(response, "x-ms-client-request-id", id);
    }
    http::set_header(
        response,
        "x-ms-routing-request-id",
        &format!(
            "EMULATOR:{}:{}",
            req.ctx.received.format("%Y%m%dT%H%M%SZ"),
            req.ctx.request_id
        ),
    );
    let (name, global) = if req.method == Method::DELETE {
        (
            "x-ms-ratelimit-remaining-subscription-deletes",
            "x-ms-ratelimit-remaining-subscription-global-deletes",
        )
    } else if write {
        (
            "x-ms-ratelimit-remaining-subscription-writes",
            "x-ms-ratelimit-remaining-subscription-global-writes",
        )
    } else {
        (
            "x-ms-ratelimit-remaining-subscription-reads",
            "x-ms-ratelimit-remaining-subscription-global-reads",
        )
    };
    http::set_header(response, name, &left.to_string());
    http::set_header(response, global, &(left * 2).to_string());
}

fn check_auth(shared: &Shared, req: &Req) -> Result<(), Response<Body>> {
    let failure = match shared.issuer.check(req, ARM_AUDIENCES) {
        Ok(_) => return Ok(()),
        Err(failure) => failure,
    };
    let (code, message) = match failure {
        AuthFailure::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_owned(),
        ),
        AuthFailure::Invalid => (
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_owned(),
        ),
        AuthFailure::Expired { exp } => {
            let at = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default();
            (
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    at.format("%-m/%-d/%Y %-I:%M:%S %p"),
                    chrono::Utc::now().format("%-m/%-d/%Y %-I:%M:%S %p")
                ),
            )
        }
        AuthFailure::WrongAudience { aud } => (
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        ),
    };
    let mut response = error(StatusCode::UNAUTHORIZED, code, &message);
    let tenant = shared.state.lock().expect("state lock").tenant_id.clone();
    http::set_header(
        &mut response,
        "www-authenticate",
        &format!(
            r#"Bearer authorization_uri="https://login.microsoftonline.com/{tenant}", error="invalid_token", error_description="{message}""#
        ),
    );
    Err(response)
}

/// `YYYY-MM-DD` with an optional `-preview` style suffix.
fn api_version_valid(version: &str) -> bool {
    let date = version.get(..10).unwrap_or_default();
    let suffix = version.get(10..).unwrap_or_default();
    let date_ok = date.len() == 10
        && date.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    date_ok && (suffix.is_empty() || suffix.starts_with('-'))
}

fn check_api_version(req: &Req) -> Result<String, Response<Body>> {
    match req.query_param("api-version") {
        None => Err(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if !api_version_valid(&v) => Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!(
                "The api-version '{v}' is invalid. The supported versions are '2025-04-01,2025-01-02,2022-04-01,2020-05-01,2015-04-01'."
            ),
        )),
        Some(v) => Ok(v),
    }
}

/// What `GET /subscriptions/{sub}/providers/{namespace}` publishes for the namespaces the
/// emulator serves: resource types and their API versions, newest first (Resource Providers -
/// Get, Microsoft.Resources 2021-04-01).
/// A resource type and the API versions it publishes.
type PublishedType = (&'static str, &'static [&'static str]);
/// A provider namespace and its resource types.
type Provider = (&'static str, &'static [PublishedType]);

const PROVIDERS: &[Provider] = &[
    (
        "Microsoft.Compute",
        &[
            (
                "virtualMachines",
                &[
                    "2025-04-01",
                    "2024-11-01",
                    "2024-07-01",
                    "2024-03-01",
                    "2023-09-01",
                    "2023-03-01",
                ],
            ),
            (
                "disks",
                &[
                    "2025-01-02",
                    "2024-03-02",
                    "2023-10-02",
                    "2023-04-02",
                    "2022-07-02",
                ],
            ),
            (
                "snapshots",
                &[
                    "2025-01-02",
                    "2024-03-02",
                    "2023-10-02",
                    "2023-04-02",
                    "2022-07-02",
                ],
            ),
            (
                "locations/operations",
                &["2025-04-01", "2025-01-02", "2024-11-01", "2024-03-02"],
            ),
        ],
    ),
    (
        "Microsoft.KeyVault",
        &[
            (
                "vaults",
                &[
                    "2025-05-01-preview",
                    "2024-11-01",
                    "2023-07-01",
                    "2023-02-01",
                    "2022-07-01",
                ],
            ),
            (
                "vaults/secrets",
                &["2024-11-01", "2023-07-01", "2023-02-01"],
            ),
        ],
    ),
    (
        "Microsoft.Network",
        &[
            (
                "networkSecurityGroups",
                &["2024-05-01", "2024-03-01", "2023-11-01", "2023-09-01"],
            ),
            (
                "networkInterfaces",
                &["2024-05-01", "2024-03-01", "2023-11-01", "2023-09-01"],
            ),
            (
                "publicIPAddresses",
                &["2024-05-01", "2024-03-01", "2023-11-01", "2023-09-01"],
            ),
            (
                "virtualNetworks",
                &["2024-05-01", "2024-03-01", "2023-11-01", "2023-09-01"],
            ),
        ],
    ),
    (
        "Microsoft.Storage",
        &[(
            "storageAccounts",
            &[
                "2025-01-01",
                "2024-01-01",
                "2023-05-01",
                "2023-01-01",
                "2022-09-01",
            ],
        )],
    ),
    (
        "Microsoft.Authorization",
        &[
            (
                "roleAssignments",
                &[
                    "2022-04-01",
                    "2022-01-01-preview",
                    "2020-10-01-preview",
                    "2015-07-01",
                ],
            ),
            (
                "locks",
                &["2020-05-01", "2017-04-01", "2016-09-01", "2015-01-01"],
            ),
            (
                "roleDefinitions",
                &["2022-04-01", "2018-01-01-preview", "2015-07-01"],
            ),
        ],
    ),
    (
        "Microsoft.OperationalInsights",
        &[(
            "workspaces",
            &[
                "2025-02-01",
                "2023-09-01",
                "2022-10-01",
                "2021-06-01",
                "2020-08-01",
            ],
        )],
    ),
];

fn provider(namespace: &str) -> Option<Provider> {
    PROVIDERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(namespace))
        .copied()
}

/// `GET /subscriptions/{sub}/providers/{namespace}`: the provider and its resource types.
fn get_provider(shared: &Shared, subscription: &str, namespace: &str) -> Response<Body> {
    let state = shared.state.lock().expect("state lock");
    if !state
        .azure
        .subscriptions
        .iter()
        .any(|s| s.id.eq_ignore_ascii_case(subscription))
    {
        return not_found(&state, &format!("/subscriptions/{subscription}"));
    }
    drop(state);
    let Some((name, types)) = provider(namespace) else {
        return error(
            StatusCode::NOT_FOUND,
            "InvalidResourceNamespace",
            &format!("The resource namespace '{namespace}' is invalid."),
        );
    };
    let resource_types: Vec<Value> = types
        .iter()
        .map(|(t, versions)| {
            json!({"resourceType": t, "locations": ["West Europe", "North Europe", "East US"],
                "apiVersions": versions, "capabilities": "None"})
        })
        .collect();
    http::json(
        StatusCode::OK,
        &json!({
            "id": format!("/subscriptions/{subscription}/providers/{name}"),
            "namespace": name,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": resource_types,
        }),
    )
}

/// Refuses a resource read with an API version its provider does not publish, as ARM does
/// (`NoRegisteredProviderFound`, 400), and a type its provider does not have
/// (`InvalidResourceType`, 400). Subscriptions and resource groups are not checked here.
fn check_published_version(segments: &[String], api_version: &str) -> Result<(), Response<Body>> {
    let Some(at) = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("providers"))
    else {
        return Ok(());
    };
    let Some(namespace) = segments.get(at + 1) else {
        return Ok(());
    };
    let Some((name, types)) = provider(namespace) else {
        return Ok(());
    };
    // Type segments alternate with names: `virtualMachines/{vm}/extensions/{x}`.
    let kind: Vec<&str> = segments[at + 2..]
        .iter()
        .step_by(2)
        .map(String::as_str)
        .collect();
    if kind.is_empty() {
        return Ok(());
    }
    let kind = kind.join("/");
    let Some((_, versions)) = types.iter().find(|(t, _)| t.eq_ignore_ascii_case(&kind)) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            &format!(
                "The resource type '{kind}' could not be found in the namespace '{name}' for api version '{api_version}'."
            ),
        ));
    };
    if versions.iter().any(|v| v.eq_ignore_ascii_case(api_version)) {
        return Ok(());
    }
    Err(error(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        &format!(
            "No registered resource provider found for location 'westeurope' and API version '{api_version}' for type '{kind}'. The supported api-versions are '{}'. The supported locations are 'westeurope, northeurope, eastus'.",
            versions.join(", ")
        ),
    ))
}

/// Serves an ARM request.
pub fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(r) = check_auth(shared, req) {
        return r;
    }
    let api_version = match check_api_version(req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let segments = req.segments();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    // Extension resources: the last `/providers/Microsoft.Authorization/{kind}` splits off the scope.
    let authorization = (0..lower.len().saturating_sub(2)).rev().find(|&i| {
        lower[i] == "providers"
            && lower[i + 1] == "microsoft.authorization"
            && matches!(lower[i + 2], "roleassignments" | "locks")
    });
    if let Some(i) = authorization {
        let scope = format!("/{}", segments[..i].join("/"));
        let name = segments.get(i + 3).map(String::as_str);
        if lower.len() > i + 4 {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidResourceType",
                "The resource type could not be found.",
            );
        }
        return if lower[i + 2] == "roleassignments" {
            authorization::role_assignments(shared, req, &scope, name)
        } else {
            authorization::locks(shared, req, &scope, name)
        };
    }
    match lower.as_slice() {
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.compute",
            "locations",
            _,
            "operations",
            _,
        ] if req.method == Method::GET => {
            compute::operation(shared, req, &segments[7], &api_version)
        }
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.insights",
            "eventtypes",
            "management",
            "values",
        ] if req.method == Method::GET => activity_log::list(shared, req, &segments[1]),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.compute",
            "snapshots",
            _,
        ] => compute::snapshot(shared, req, &segments, &api_version),
        ["subscriptions", _, "providers", _] if req.method == Method::GET => {
            get_provider(shared, &segments[1], &segments[3])
        }
        _ if req.method == Method::GET => match check_published_version(&segments, &api_version) {
            Ok(()) => get_resource(shared, req),
            Err(r) => r,
        },
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The requested method '{}' is not allowed on this resource.",
                req.method
            ),
        ),
    }
}

/// Every seeded resource the generic GET can return, with its id.
fn resources(state: &State) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for s in &state.azure.subscriptions {
        out.push((
            format!("/subscriptions/{}", s.id),
            json!({
                "id": format!("/subscriptions/{}", s.id),
                "subscriptionId": s.id,
                "tenantId": state.tenant_id,
                "displayName": s.display_name,
                "state": "Enabled",
            }),
        ));
    }
    for rg in &state.azure.resource_groups {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}",
            rg.subscription, rg.name
        );
        out.push((
            id.clone(),
            json!({
                "id": id, "name": rg.name, "type": "Microsoft.Resources/resourceGroups",
                "location": rg.location, "properties": {"provisioningState": "Succeeded"},
            }),
        ));
    }
    for vm in &state.azure.virtual_machines {
        let (id, body) = compute::vm_json(state, vm);
        out.push((id, body));
    }
    for disk in &state.azure.disks {
        let (id, body) = compute::disk_json(disk);
        out.push((id, body));
    }
    for snapshot in &state.snapshots {
        out.push((snapshot.id.clone(), snapshot.body.clone()));
    }
    for ws in &state.workspaces {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
            ws.subscription, ws.resource_group, ws.name
        );
        out.push((
            id.clone(),
            json!({
                "id": id, "name": ws.name, "type": "Microsoft.OperationalInsights/workspaces",
                "location": ws.location,
                "properties": {"customerId": ws.customer_id, "provisioningState": "Succeeded"},
            }),
        ));
    }
    out
}

/// Whether an ARM id (subscription, group or resource) exists.
fn scope_exists(state: &State, scope: &str) -> bool {
    resources(state)
        .iter()
        .any(|(id, _)| id.eq_ignore_ascii_case(scope.trim_end_matches('/')))
}

/// The ARM 404 for an id: subscription, resource group or resource not found.
fn not_found(state: &State, id: &str) -> Response<Body> {
    let segments: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let sub = segments.get(1).copied().unwrap_or_default();
    if !state
        .azure
        .subscriptions
        .iter()
        .any(|s| s.id.eq_ignore_ascii_case(sub))
    {
        return error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        );
    }
    if segments.len() >= 4 && segments[2].eq_ignore_ascii_case("resourceGroups") {
        let rg = segments[3];
        let rg_exists =
            state.azure.resource_groups.iter().any(|g| {
                g.subscription.eq_ignore_ascii_case(sub) && g.name.eq_ignore_ascii_case(rg)
            });
        if !rg_exists {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("Resource group '{rg}' could not be found."),
            );
        }
        if segments.len() >= 8 {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource '{}/{}/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                    segments[5],
                    segments[6],
                    segments[7..].join("/")
                ),
            );
        }
    }
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("The resource '{id}' was not found."),
    )
}

/// GET of any seeded resource by id.
fn get_resource(shared: &Shared, req: &Req) -> Response<Body> {
    let id = format!("/{}", req.segments().join("/"));
    let state = shared.state.lock().expect("state lock");
    match resources(&state)
        .into_iter()
        .find(|(rid, _)| rid.eq_ignore_ascii_case(&id))
    {
        Some((_, body)) => http::json(StatusCode::OK, &body),
        None => not_found(&state, &id),
    }
}

/// One page of `items` and the `nextLink` to the rest, using `$skiptoken` as the offset.
fn page(req: &Req, items: Vec<Value>, page_size: usize) -> Value {
    let skip: usize = req
        .query_param("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let page_size = page_size.max(1);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(page_size).collect();
    let mut body = json!({"value": value});
    if skip + page_size < total {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
            if k != "$skiptoken" {
                query.append_pair(&k, &v);
            }
        }
        query.append_pair("$skiptoken", &(skip + page_size).to_string());
        body["nextLink"] = json!(format!(
            "{}{}?{}",
            req.ctx.base_url,
            req.path,
            query.finish()
        ));
    }
    body
}

/// Whether `inner` is `outer` or lies below it (segment-wise, case-insensitive).
fn is_within(inner: &str, outer: &str) -> bool {
    let inner = inner.trim_end_matches('/').to_ascii_lowercase();
    let outer = outer.trim_end_matches('/').to_ascii_lowercase();
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_dates_with_optional_suffix() {
        assert!(api_version_valid("2025-01-02"));
        assert!(api_version_valid("2022-04-01-preview"));
        assert!(!api_version_valid("latest"));
        assert!(!api_version_valid("2025-1-02"));
        assert!(!api_version_valid("2025-01-02preview"));
    }

    #[test]
    fn scopes_nest_by_whole_segments() {
        assert!(is_within(
            "/subscriptions/S/resourceGroups/rg",
            "/subscriptions/s"
        ));
        assert!(!is_within("/subscriptions/s2", "/subscriptions/s"));
        assert!(is_within("/subscriptions/s/", "/subscriptions/S"));
    }
}
