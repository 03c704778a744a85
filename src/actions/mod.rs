//! The action catalogue: one trait, one file per action, one registry list.
//!
//! An action declares its name, typed parameters (with a JSON Schema), its least-privilege
//! permissions and an example; it plans by reading (never writing) through [`Lookup`] and
//! returns the exact requests an approved run will send.

pub mod arm;
pub mod encode;
pub mod entra;
pub mod evidence;
pub mod kql;
pub mod notify;
#[cfg(test)]
pub(crate) mod testing;
pub mod unknown;

use std::path::PathBuf;
use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::Alert;
use crate::connectors::{Api, ApiError, ApiRequest, Endpoints, Lookup, LookupOutcome, paging};

/// What running an action does to the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads only; run for real while planning, so later steps see real values.
    Read,
    /// Reads that collect evidence; run when the run executes (they can be slow), never mutate.
    Evidence,
    /// Changes the tenant; guarded by policy and, where configured, approval.
    Mutate,
    /// Sends a message outside the tenant.
    Notify,
}

/// The least privilege an action needs, per authority.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Permissions {
    /// Microsoft Graph application permissions (`roles` claim).
    pub graph: &'static [&'static str],
    /// Entra directory roles the app's service principal must hold.
    pub entra_roles: &'static [&'static str],
    /// Azure RBAC actions on the target scope.
    pub azure_rbac: &'static [&'static str],
}

impl Permissions {
    pub const NONE: Permissions = Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &[],
    };

    /// Every permission as one flat list, as the plan shows it.
    pub fn flat(&self) -> Vec<String> {
        self.graph
            .iter()
            .chain(self.entra_roles.iter())
            .chain(self.azure_rbac.iter())
            .map(|p| p.to_string())
            .collect()
    }
}

/// How an action describes itself in `riposte actions`, the schema and the docs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ActionInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    pub permissions: Permissions,
    /// How the action is undone, or why it cannot be.
    pub compensation: &'static str,
    /// A playbook step using the action; a test parses every example.
    pub example: &'static str,
}

/// Deployment settings actions read (`[actions]` in configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionSettings {
    /// The group a Conditional Access policy targets to require MFA.
    pub mfa_group_id: Option<String>,
    /// Where `notify.webhook` posts when a step gives no `url`.
    pub notify_webhook_url: Option<String>,
    /// The Log Analytics workspace (customer id GUID) evidence queries default to.
    pub log_analytics_workspace: Option<String>,
    /// How many upstream reads one planning may make (every page, every fact, every
    /// API-version lookup); past it planning fails instead of showing a partial plan.
    /// Default: 1000.
    #[serde(default)]
    pub max_planning_reads: Option<u32>,
}

/// What a plan-time step may see and use. It holds a [`Lookup`] (GET only) and no sender:
/// planning cannot mutate.
pub struct PlanContext<'a> {
    pub endpoints: &'a Endpoints,
    pub lookup: &'a dyn Lookup,
    pub alert: &'a Alert,
    pub run_id: &'a str,
    pub step_id: &'a str,
    pub settings: &'a ActionSettings,
    pub now: DateTime<Utc>,
    /// The playbook's directory, for files a step names (`query_file`).
    pub playbook_dir: PathBuf,
}

/// Whether the step will do anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Planned,
    AlreadySatisfied,
}

/// One step's plan: the exact requests, what is true now and what will be true after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionPlan {
    pub status: PlanStatus,
    pub reason: Option<String>,
    pub pre_state: Value,
    pub desired_state: Value,
    pub requests: Vec<ApiRequest>,
    /// What later steps see as `steps.<id>.outputs`; for reads, the values found.
    /// `Null` means "known only at run time" (no credentials to look it up).
    pub outputs: Value,
    /// Caveats a reviewer must know (a guest's sessions are not covered, …).
    pub notes: Vec<String>,
    /// Set when the step must fail at run time with this instruction instead of sending a
    /// request the API is known to refuse (a password reset for an on-premises-synced user).
    pub blocked: Option<String>,
}

impl ActionPlan {
    pub fn planned(requests: Vec<ApiRequest>) -> ActionPlan {
        ActionPlan {
            status: PlanStatus::Planned,
            reason: None,
            pre_state: Value::Null,
            desired_state: Value::Null,
            requests,
            outputs: Value::Object(Default::default()),
            notes: Vec::new(),
            blocked: None,
        }
    }

    pub fn already_satisfied(reason: impl Into<String>) -> ActionPlan {
        ActionPlan {
            status: PlanStatus::AlreadySatisfied,
            reason: Some(reason.into()),
            ..ActionPlan::planned(Vec::new())
        }
    }

    pub fn pre_state(mut self, v: Value) -> Self {
        self.pre_state = v;
        self
    }
    pub fn desired_state(mut self, v: Value) -> Self {
        self.desired_state = v;
        self
    }
    pub fn outputs(mut self, v: Value) -> Self {
        self.outputs = v;
        self
    }
    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.notes.push(n.into());
        self
    }
    /// No request will be sent; the step fails with `instruction` when the run executes.
    pub fn blocked(instruction: impl Into<String>) -> ActionPlan {
        let instruction = instruction.into();
        ActionPlan {
            reason: Some(instruction.clone()),
            blocked: Some(instruction),
            ..ActionPlan::planned(Vec::new())
        }
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
}

/// Why an action could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("invalid parameters: {0}")]
    Params(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Io(String),
}

/// One action. Implement this in one file under `actions/<provider>/` and add it to
/// [`registry`].
#[async_trait]
pub trait Action: Send + Sync + 'static {
    /// The step's `with:` parameters. Unknown keys are rejected.
    type Params: DeserializeOwned + JsonSchema + Send;

    fn info(&self) -> &'static ActionInfo;

    /// Reads what it needs and returns the exact requests to send, or "already satisfied".
    async fn plan(
        &self,
        params: Self::Params,
        ctx: &PlanContext<'_>,
    ) -> Result<ActionPlan, ActionError>;

    /// The request to send for a planned one, restoring what the plan deliberately hides (a
    /// webhook's secret path). The default sends the request exactly as planned.
    fn prepare(
        &self,
        planned: &ApiRequest,
        _done: &Executed<'_>,
        _settings: &ActionSettings,
    ) -> Result<ApiRequest, ActionError> {
        Ok(planned.clone())
    }

    /// Reads the state back once the step's requests succeeded.
    async fn verify(
        &self,
        _done: &Executed<'_>,
        _lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        Ok(Verification::Unchecked(
            "the API's success answer is the only evidence".into(),
        ))
    }

    /// The requests that undo the step, or why it cannot be undone.
    fn compensate(&self, _done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        Compensation::Irreversible(self.info().compensation.to_string())
    }
}

/// One executed item of a step (one `for_each` item, or the whole step), as verify and
/// compensate see it: what was planned and what the API answered.
#[derive(Debug, Clone, Copy)]
pub struct Executed<'a> {
    pub run_id: &'a str,
    pub params: &'a Value,
    pub pre_state: &'a Value,
    pub desired_state: &'a Value,
    pub requests: &'a [ApiRequest],
    /// The response bodies, one per request, in order.
    pub responses: &'a [Value],
}

/// What reading the state back found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum Verification {
    /// The desired state is observed.
    Verified(Value),
    /// The API accepted the change but the state read back differs.
    Mismatch(String),
    /// Nothing can be read back; says why.
    Unchecked(String),
}

/// How a completed step is undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Compensation {
    /// Send these, in order.
    Requests(Vec<ApiRequest>),
    /// It cannot be undone, and why.
    Irreversible(String),
    /// Nothing changed, so nothing to undo (reads, evidence, already-satisfied steps).
    NotNeeded,
    /// It could be undone but is kept on purpose, and why: it is evidence or protects
    /// evidence (a snapshot, the lock on it). Rolling a containment back never destroys
    /// what the investigation needs; a person removes it once the incident is closed.
    Kept(String),
}

/// The object-safe face of [`Action`] the registry holds; implemented for every action.
#[async_trait]
pub trait RegisteredAction: Send + Sync {
    fn info(&self) -> &'static ActionInfo;
    fn params_schema(&self) -> schemars::Schema;
    /// Checks `with:` against the parameter type; the error names the offending key.
    fn check_params(&self, with: &Value) -> Result<(), String>;
    async fn plan_value(
        &self,
        with: Value,
        ctx: &PlanContext<'_>,
    ) -> Result<ActionPlan, ActionError>;
    fn prepare_request(
        &self,
        planned: &ApiRequest,
        done: &Executed<'_>,
        settings: &ActionSettings,
    ) -> Result<ApiRequest, ActionError>;
    async fn verify_done(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError>;
    fn compensation(&self, done: &Executed<'_>, endpoints: &Endpoints) -> Compensation;
}

#[async_trait]
impl<A: Action> RegisteredAction for A {
    fn info(&self) -> &'static ActionInfo {
        Action::info(self)
    }

    fn params_schema(&self) -> schemars::Schema {
        schemars::schema_for!(A::Params)
    }

    fn check_params(&self, with: &Value) -> Result<(), String> {
        serde_json::from_value::<A::Params>(with.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn plan_value(
        &self,
        with: Value,
        ctx: &PlanContext<'_>,
    ) -> Result<ActionPlan, ActionError> {
        let params = serde_json::from_value::<A::Params>(with)
            .map_err(|e| ActionError::Params(e.to_string()))?;
        self.plan(params, ctx).await
    }

    fn prepare_request(
        &self,
        planned: &ApiRequest,
        done: &Executed<'_>,
        settings: &ActionSettings,
    ) -> Result<ApiRequest, ActionError> {
        self.prepare(planned, done, settings)
    }

    async fn verify_done(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        match self.info().effect {
            Effect::Mutate => self.verify(done, lookup).await,
            _ => Ok(Verification::Unchecked("nothing was changed".into())),
        }
    }

    fn compensation(&self, done: &Executed<'_>, endpoints: &Endpoints) -> Compensation {
        match self.info().effect {
            Effect::Mutate => self.compensate(done, endpoints),
            _ => Compensation::NotNeeded,
        }
    }
}

/// Every action, in one list. Adding an action: one file plus one line here.
pub fn registry() -> &'static [&'static dyn RegisteredAction] {
    static REGISTRY: OnceLock<Vec<&'static dyn RegisteredAction>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        vec![
            &entra::get_user::GetUser,
            &entra::disable_user::DisableUser,
            &entra::enable_user::EnableUser,
            &entra::revoke_sessions::RevokeSessions,
            &entra::force_password_reset::ForcePasswordReset,
            &entra::require_mfa::RequireMfa,
            &arm::get_resource::GetResource,
            &arm::snapshot::Snapshot,
            &arm::remove_role_assignments::RemoveRoleAssignments,
            &arm::lock_resource::LockResource,
            &evidence::activity_log::ActivityLog,
            &evidence::log_analytics_query::LogAnalyticsQuery,
            &notify::webhook::Webhook,
        ]
    })
}

/// Whether `s` is a GUID in its usual 8-4-4-4-12 hex form (object ids, subscription and
/// workspace ids). Values that must be one are checked before they reach a URL or a filter.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Reads a paged collection (`value` + `@odata.nextLink` on Graph, `nextLink` on ARM) to the
/// end. `Found` holds every item as one array. Next links are checked by the engine's own rule
/// ([`paging::next_page`]): one that leaves the first URL's scheme, host and port is API data
/// that would hand that host a token, and is refused, as is a listing longer than
/// [`paging::MAX_PAGES`] (a plan is not made from a partial view).
pub(crate) async fn get_all_pages(
    ctx: &PlanContext<'_>,
    api: Api,
    first_url: String,
) -> Result<LookupOutcome, ActionError> {
    read_all_pages(ctx.lookup, api, first_url).await
}

/// [`get_all_pages`] through any [`Lookup`]: verification reads lists back the same way
/// planning read them.
pub(crate) async fn read_all_pages(
    lookup: &dyn Lookup,
    api: Api,
    first_url: String,
) -> Result<LookupOutcome, ActionError> {
    let mut items = Vec::new();
    let mut url = first_url.clone();
    let mut pages = 0;
    loop {
        let mut page = match lookup.get(api, &url).await? {
            LookupOutcome::Found(page) => page,
            other => return Ok(other),
        };
        pages += 1;
        let next = paging::next_page(&mut page, &first_url, pages);
        if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
            items.extend(values);
        }
        match next {
            Ok(Some(next)) => url = next,
            Ok(None) => return Ok(LookupOutcome::Found(Value::Array(items))),
            Err(paging::NextPageError::ForeignLink { link, expected }) => {
                return Err(ApiError::ForeignNextLink { link, expected }.into());
            }
            Err(e @ paging::NextPageError::TooManyPages { .. }) => {
                return Err(ActionError::Refused(e.to_string()));
            }
        }
    }
}

/// The parameters that name the principal an action acts on, in the order `--principal`
/// fills them: `user` (the `entra.*` actions), `principal` (`arm.remove_role_assignments`).
pub const PRINCIPAL_PARAMS: [&str; 2] = ["user", "principal"];

/// The principal a single action's parameters name, if any.
pub fn principal_param(params: &serde_json::Map<String, Value>) -> Option<&str> {
    PRINCIPAL_PARAMS
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str))
}

/// The step's parameters typed again, for verify and compensate (the plan keeps them as the
/// rendered JSON `with:`).
pub(crate) fn typed_params<P: DeserializeOwned>(done: &Executed<'_>) -> Result<P, ActionError> {
    serde_json::from_value(done.params.clone()).map_err(|e| ActionError::Params(e.to_string()))
}

/// What a read-back found when the object is gone or unreadable, as a [`Verification`].
pub(crate) fn unreadable(outcome: &LookupOutcome, what: &str) -> Verification {
    match outcome {
        LookupOutcome::NotFound => Verification::Mismatch(format!("{what} no longer exists")),
        LookupOutcome::Unavailable => {
            Verification::Unchecked(format!("no credentials to read {what} back"))
        }
        LookupOutcome::Found(_) => Verification::Unchecked(format!("{what} was read")),
    }
}

/// Looks an action up by name.
pub fn find(name: &str) -> Option<&'static dyn RegisteredAction> {
    registry().iter().copied().find(|a| a.info().name == name)
}

/// The registered name closest to `name`, for "did you mean" hints.
pub fn closest_name(name: &str) -> Option<&'static str> {
    crate::text::closest(name, registry().iter().map(|a| a.info().name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIRST: &str = "https://graph.microsoft.com/v1.0/users/u/memberOf?$select=id";

    #[tokio::test]
    async fn all_pages_are_read_through_either_next_link_key() {
        let (p2, p3) = (format!("{FIRST}&page=2"), format!("{FIRST}&page=3"));
        let lookup = testing::FakeLookup::strict()
            .found(FIRST, json!({"value": [1], "@odata.nextLink": p2}))
            .found(p2.clone(), json!({"value": [2], "nextLink": p3}))
            .found(p3.clone(), json!({"value": [3]}));
        let found = read_all_pages(&lookup, Api::Graph, FIRST.into())
            .await
            .unwrap();
        assert_eq!(found, LookupOutcome::Found(json!([1, 2, 3])));
        assert_eq!(lookup.calls(), [FIRST.to_string(), p2, p3]);
    }

    #[tokio::test]
    async fn a_hostile_next_link_is_refused_at_plan_time() {
        for hostile in [
            "https://evil.example/v1.0/users/u/memberOf",
            "http://graph.microsoft.com/v1.0/users/u/memberOf",
            "https://graph.microsoft.com:8443/v1.0/users/u/memberOf",
            "https://graph.microsoft.com.evil.example/v1.0",
            "/v1.0/users/u/memberOf?page=2",
        ] {
            let lookup = testing::FakeLookup::strict()
                .found(FIRST, json!({"value": [1], "@odata.nextLink": hostile}));
            let err = read_all_pages(&lookup, Api::Graph, FIRST.into())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ActionError::Api(ApiError::ForeignNextLink { link, .. }) if link == hostile),
                "{hostile}: {err:?}"
            );
            assert!(err.to_string().contains(hostile), "{err}");
            assert_eq!(lookup.calls(), [FIRST], "{hostile} was requested");
        }
    }

    #[tokio::test]
    async fn a_listing_past_the_page_limit_is_refused_not_truncated() {
        // A page that links to itself never ends.
        let lookup =
            testing::FakeLookup::strict().found(FIRST, json!({"value": [1], "nextLink": FIRST}));
        let err = read_all_pages(&lookup, Api::Graph, FIRST.into())
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("narrow"), "{err}");
        assert_eq!(lookup.calls().len(), paging::MAX_PAGES as usize);
    }

    #[test]
    fn names_are_unique_and_provider_dot_verb() {
        let mut names: Vec<_> = registry().iter().map(|a| a.info().name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate action names");
        for name in names {
            let (provider, verb) = name.split_once('.').expect("provider.verb_object");
            assert!(!provider.is_empty() && !verb.is_empty());
            assert!(
                verb.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }

    /// A playbook step as far as an example needs: the keys a step has, nothing else.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExampleStep {
        id: String,
        uses: String,
        #[serde(default)]
        needs: Vec<String>,
        #[serde(default, rename = "if")]
        condition: Option<String>,
        with: serde_json::Map<String, Value>,
    }

    fn parse_example(action: &dyn RegisteredAction) -> ExampleStep {
        let info = action.info();
        serde_saphyr::from_str(info.example)
            .unwrap_or_else(|e| panic!("{}: example is not a valid step: {e}", info.name))
    }

    #[test]
    fn every_example_parses_uses_its_action_and_passes_its_params() {
        for action in registry() {
            let name = action.info().name;
            let step = parse_example(*action);
            assert_eq!(step.uses, name);
            assert!(!step.id.is_empty(), "{name}");
            assert!(step.needs.iter().all(|n| !n.is_empty()), "{name}");
            assert!(
                step.condition.as_ref().is_none_or(|c| !c.is_empty()),
                "{name}"
            );
            action
                .check_params(&Value::Object(step.with))
                .unwrap_or_else(|e| panic!("{name}: example `with:` rejected: {e}"));
        }
    }

    #[test]
    fn every_params_type_rejects_unknown_keys() {
        for action in registry() {
            let name = action.info().name;
            let mut with = parse_example(*action).with;
            with.insert("no_such_parameter".into(), Value::Bool(true));
            let err = action.check_params(&Value::Object(with)).expect_err(name);
            assert!(
                err.contains("unknown field `no_such_parameter`"),
                "{name}: {err}"
            );
            assert_eq!(
                action.params_schema().get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{name}"
            );
        }
    }

    #[test]
    fn every_action_documents_itself() {
        for action in registry() {
            let info = action.info();
            assert!(!info.description.is_empty(), "{}", info.name);
            assert!(!info.compensation.is_empty(), "{}", info.name);
            let schema = serde_json::to_value(action.params_schema()).unwrap();
            for (key, prop) in schema["properties"].as_object().into_iter().flatten() {
                assert!(
                    prop.get("description").is_some(),
                    "{}: parameter `{key}` has no doc comment",
                    info.name
                );
            }
        }
    }

    #[test]
    fn parameter_schemas_match_the_snapshot() {
        let schemas: std::collections::BTreeMap<&str, schemars::Schema> = registry()
            .iter()
            .map(|a| (a.info().name, a.params_schema()))
            .collect();
        insta::assert_json_snapshot!("action_parameter_schemas", schemas);
    }

    #[test]
    fn closest_name_suggests() {
        assert_eq!(
            closest_name("entra.disable_usr"),
            Some("entra.disable_user")
        );
        assert_eq!(closest_name("zzzzzzzzzzzzzzzzzzzzzzzz"), None);
    }
}
