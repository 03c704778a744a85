//! The seed file: what the emulated tenant holds when it starts.
//!
//! The file is parsed once, at the edge, into these types; unknown keys are rejected so a typo in
//! a fixture fails loudly instead of silently seeding less than the test expects.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// Everything the emulator serves, as loaded from YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Directory id (`tid` in tokens) and the domains that name it in token URLs.
    pub tenant: TenantInfo,
    /// App registrations that may ask for tokens with client credentials.
    #[serde(default)]
    pub apps: Vec<App>,
    /// A managed identity served by the IMDS and App Service token endpoints.
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentity>,
    /// Directory users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Security groups and their direct members.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Activated directory roles and who holds them.
    #[serde(default)]
    pub directory_roles: Vec<DirectoryRole>,
    /// Conditional Access policies: only which groups they target, for state views.
    #[serde(default)]
    pub conditional_access_policies: Vec<ConditionalAccessPolicy>,
    /// Graph `security/alerts_v2` alerts, served verbatim.
    #[serde(default)]
    pub security_alerts: Vec<Value>,
    /// Azure Resource Manager content.
    #[serde(default)]
    pub azure: Azure,
    /// Log Analytics workspaces and their rows.
    #[serde(default)]
    pub log_analytics: LogAnalytics,
    /// The Lacework account.
    #[serde(default)]
    pub lacework: Option<Lacework>,
    /// Knobs that make protocol corners reachable in tests (token lifetime, LRO length, paging).
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// The directory itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    /// Tenant GUID.
    pub id: String,
    /// Verified domains, e.g. `contoso.onmicrosoft.com`; a token URL may name the tenant by one.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// An app registration (and its service principal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Application (client) id.
    pub client_id: String,
    /// Display name, for state views.
    #[serde(default)]
    pub display_name: String,
    /// Service principal object id (`oid` in its tokens).
    #[serde(default)]
    pub object_id: Option<String>,
    /// Client secret values.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Certificates whose keys may sign client assertions.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// Microsoft Graph application permissions granted with admin consent (the `roles` claim).
    #[serde(default)]
    pub graph_roles: Vec<String>,
    /// Entra directory role template ids the service principal holds; Graph checks them before
    /// changing sensitive properties of users that hold admin roles.
    #[serde(default)]
    pub directory_roles: Vec<String>,
}

/// A certificate credential. Thumbprints are derived from `certificate_pem` when it is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The X.509 certificate, PEM.
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// The RSA public key, PEM (`PUBLIC KEY`); taken from the certificate when absent.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// base64url SHA-1 thumbprint (`x5t`), when no certificate is given.
    #[serde(default)]
    pub x5t: Option<String>,
    /// base64url SHA-256 thumbprint (`x5t#S256`), when no certificate is given.
    #[serde(default)]
    pub x5t_s256: Option<String>,
}

/// The identity IMDS and the App Service endpoint hand out tokens for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    /// Client id of the identity.
    pub client_id: String,
    /// Object id of its service principal.
    pub object_id: String,
    /// The value App Service puts in `IDENTITY_HEADER`; the request must echo it.
    #[serde(default = "default_identity_header")]
    pub identity_header: String,
    /// Graph application permissions granted to it.
    #[serde(default)]
    pub graph_roles: Vec<String>,
}

fn default_identity_header() -> String {
    "emulator-identity-header".to_owned()
}

/// A directory user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub office_location: Option<String>,
    #[serde(default)]
    pub preferred_language: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    #[serde(default = "member")]
    pub user_type: String,
    /// Synced from on-premises AD: Graph refuses to change its password profile.
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default)]
    pub on_premises_immutable_id: Option<String>,
    /// RFC 3339; when absent the user's creation time is used.
    #[serde(default)]
    pub sign_in_sessions_valid_from: Option<String>,
    /// Per-user MFA state: `disabled`, `enabled` or `enforced`.
    #[serde(default = "disabled")]
    pub per_user_mfa_state: String,
    /// Identity Protection risk level: `none`, `low`, `medium`, `high`.
    #[serde(default = "none")]
    pub risk_level: String,
}

fn yes() -> bool {
    true
}
fn member() -> String {
    "Member".to_owned()
}
fn disabled() -> String {
    "disabled".to_owned()
}
fn none() -> String {
    "none".to_owned()
}

/// A group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Role-assignable groups pass their directory roles on to members.
    #[serde(default)]
    pub is_assignable_to_role: bool,
    /// Direct member object ids.
    #[serde(default)]
    pub members: Vec<String>,
}

/// An activated directory role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRole {
    pub id: String,
    pub display_name: String,
    pub role_template_id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Member object ids: users, or role-assignable groups.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A Conditional Access policy, reduced to what it targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalAccessPolicy {
    pub id: String,
    pub display_name: String,
    #[serde(default = "enabled")]
    pub state: String,
    #[serde(default)]
    pub include_groups: Vec<String>,
    #[serde(default)]
    pub exclude_users: Vec<String>,
    /// Built-in grant controls, e.g. `mfa`.
    #[serde(default)]
    pub grant_controls: Vec<String>,
}

fn enabled() -> String {
    "enabled".to_owned()
}

/// Azure Resource Manager content of one subscription.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azure {
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroup>,
    #[serde(default)]
    pub virtual_machines: Vec<VirtualMachine>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
    /// Activity Log events (EventData objects), served verbatim after filtering.
    #[serde(default)]
    pub activity_log: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceGroup {
    pub subscription: String,
    pub name: String,
    pub location: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualMachine {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub vm_id: String,
    #[serde(default = "standard_vm")]
    pub vm_size: String,
    #[serde(default = "linux")]
    pub os_type: String,
    /// Name of the OS disk (a seeded disk in the same resource group).
    pub os_disk: String,
    /// Names of the data disks, by LUN order.
    #[serde(default)]
    pub data_disks: Vec<String>,
    /// Resource tags (e.g. `riposte:protected`).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

fn standard_vm() -> String {
    "Standard_D2s_v5".to_owned()
}
fn linux() -> String {
    "Linux".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    #[serde(default = "disk_size")]
    pub size_gb: u64,
    #[serde(default = "premium")]
    pub sku: String,
    #[serde(default)]
    pub os_type: Option<String>,
    /// ARM id of the VM it is attached to.
    #[serde(default)]
    pub managed_by: Option<String>,
    pub unique_id: String,
}

fn disk_size() -> u64 {
    30
}
fn premium() -> String {
    "Premium_LRS".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// The assignment's GUID name.
    pub name: String,
    /// ARM scope it is made at.
    pub scope: String,
    pub principal_id: String,
    #[serde(default = "user_type")]
    pub principal_type: String,
    /// Role definition GUID (e.g. b24988ac-6180-42a0-ab88-20f7382dd24c for Contributor).
    pub role_definition: String,
    #[serde(default)]
    pub created_on: Option<String>,
}

fn user_type() -> String {
    "User".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogAnalytics {
    #[serde(default)]
    pub workspaces: Vec<Workspace>,
}

/// A workspace and its tables; queries return the seeded rows of the table the query names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    pub customer_id: String,
    pub name: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: String,
    #[serde(default)]
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub rows: Vec<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lacework {
    pub account: String,
    pub key_id: String,
    pub secret: String,
    /// Alerts as the API returns them; `entityMap` is only served with `scope=Details`.
    #[serde(default)]
    pub alerts: Vec<Value>,
}

/// Protocol knobs, so tests can reach paging, polling and expiry without waiting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Lifetime of issued access tokens; negative issues already-expired tokens.
    #[serde(default = "lifetime")]
    pub token_lifetime_seconds: i64,
    /// How many status polls a snapshot stays `InProgress` before it succeeds.
    #[serde(default = "polls")]
    pub lro_polls: u32,
    /// `Retry-After` sent with long-running operation responses.
    #[serde(default)]
    pub lro_retry_after: u32,
    /// Page size of ARM lists (role assignments, Activity Log).
    #[serde(default = "page")]
    pub arm_page_size: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            token_lifetime_seconds: lifetime(),
            lro_polls: polls(),
            lro_retry_after: 0,
            arm_page_size: page(),
        }
    }
}

fn lifetime() -> i64 {
    3599
}
fn polls() -> u32 {
    2
}
fn page() -> usize {
    100
}

/// Why a seed file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("cannot read tenant file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid tenant file {origin}: {message}")]
    Parse { origin: String, message: String },
}

/// The default seed, shipped as a fixture so `riposte demo` and the tests share one tenant.
const DEFAULT_FIXTURE: &str = include_str!("../../tests/fixtures/tenant.yaml");

impl Tenant {
    /// Parses a seed document.
    pub fn from_yaml_str(text: &str) -> Result<Tenant, TenantError> {
        Self::parse(text, "<string>")
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &Path) -> Result<Tenant, TenantError> {
        let text = std::fs::read_to_string(path).map_err(|source| TenantError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The bundled tenant of `tests/fixtures/tenant.yaml`.
    pub fn default_fixture() -> Tenant {
        Self::parse(DEFAULT_FIXTURE, "tests/fixtures/tenant.yaml")
            .expect("the bundled tenant fixture parses")
    }

    fn parse(text: &str, origin: &str) -> Result<Tenant, TenantError> {
        serde_saphyr::from_str(text).map_err(|e| TenantError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })
    }
}
