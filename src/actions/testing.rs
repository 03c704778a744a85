//! Test support for actions: a scripted [`Lookup`] and a [`PlanContext`] built around the
//! first-access scenario of `tests/fixtures/README.md`, so every action test plans against the
//! same tenant the emulator seeds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::actions::{Action, ActionError, ActionPlan, ActionSettings, PlanContext};
use crate::alert::{Alert, Principal, PrincipalType, Resource, Severity, Source};
use crate::connectors::{ApiError, ApiRequest, Endpoints, Lookup, LookupOutcome};

pub const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
pub const SUB: &str = "b1c2d3e4-0000-4a5b-8c6d-000000000001";
pub const ALEX_UPN: &str = "alex.wilber@contoso.com";
pub const ALEX_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
pub const GUEST_UPN: &str = "AdeleVance_fabrikam.com#EXT#@contoso.onmicrosoft.com";
pub const GUEST_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000002";
pub const OBRIEN_UPN: &str = "megan.o'brien@contoso.com";
pub const OBRIEN_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000003";
pub const SYNCED_UPN: &str = "lee.gu@contoso.com";
pub const SYNCED_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000004";
pub const MFA_GROUP: &str = "9f0c7e3a-1d2b-4c5e-8f6a-000000000101";
pub const VM_ID: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
pub const OS_DISK_ID: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/disks/vm-web-01_OsDisk_1";
pub const DATA_DISK_ID: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/disks/vm-web-01_data_0";
pub const WORKSPACE: &str = "5c9e2a71-3f4b-4d8e-a6c1-000000000201";
pub const ALERT_ID: &str = "51234";
/// A UUID v7, as the engine makes them: the first 8 hex digits are a timestamp.
pub const RUN_ID: &str = "0198c3a1-7b2e-7c4d-9e8f-1a2b3c4d5e6f";

pub const GRAPH: &str = "https://graph.microsoft.com/v1.0";
pub const GRAPH_BETA: &str = "https://graph.microsoft.com/beta";
pub const ARM: &str = "https://management.azure.com";

/// A [`Lookup`] answering from a script, and recording every URL it was asked for.
/// A URL with no scripted answer gets `fallback`; with no fallback the test panics, naming the
/// URL, so an action reading something unexpected is caught.
pub struct FakeLookup {
    answers: HashMap<String, LookupOutcome>,
    fallback: Option<LookupOutcome>,
    calls: Mutex<Vec<String>>,
    requests: Mutex<Vec<ApiRequest>>,
}

impl FakeLookup {
    /// Every URL must be scripted.
    pub fn strict() -> FakeLookup {
        FakeLookup {
            answers: HashMap::new(),
            fallback: None,
            calls: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// No credentials: every read is unknown until run time.
    pub fn offline() -> FakeLookup {
        FakeLookup {
            fallback: Some(LookupOutcome::Unavailable),
            ..FakeLookup::strict()
        }
    }

    pub fn found(mut self, url: impl Into<String>, body: Value) -> FakeLookup {
        self.answers.insert(url.into(), LookupOutcome::Found(body));
        self
    }

    pub fn not_found(mut self, url: impl Into<String>) -> FakeLookup {
        self.answers.insert(url.into(), LookupOutcome::NotFound);
        self
    }

    /// Scripts a user GET (with riposte's `$select`) under both its object id and its UPN.
    pub fn user(self, user: Value) -> FakeLookup {
        let id = user["id"]
            .as_str()
            .expect("user fixture has an id")
            .to_string();
        let upn = user["userPrincipalName"]
            .as_str()
            .expect("user fixture has a UPN")
            .to_string();
        self.found(user_get_url(&id), user.clone())
            .found(user_get_url(&upn), user)
    }

    /// The requests sent, headers included, in order.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().expect("lookup request log").clone()
    }

    /// The URLs asked for, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lookup call log").clone()
    }
}

#[async_trait]
impl Lookup for FakeLookup {
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
        crate::connectors::check_read(req)?;
        let url = req.url.as_str();
        self.calls
            .lock()
            .expect("lookup call log")
            .push(url.to_string());
        self.requests
            .lock()
            .expect("lookup request log")
            .push(req.clone());
        match self.answers.get(url).or(self.fallback.as_ref()) {
            Some(answer) => Ok(answer.clone()),
            None => panic!(
                "FakeLookup: no answer scripted for GET {url}\nscripted: {:#?}",
                self.answers.keys().collect::<Vec<_>>()
            ),
        }
    }
}

/// The user GET every Entra action makes while planning.
pub fn user_get_url(key: &str) -> String {
    crate::actions::entra::user_url(GRAPH, key) + "?$select=" + crate::actions::entra::USER_SELECT
}

/// A user as Graph returns it for riposte's `$select`.
pub fn user_json(id: &str, upn: &str) -> Value {
    json!({
        "id": id,
        "userPrincipalName": upn,
        "displayName": upn.split('@').next().unwrap_or(upn),
        "accountEnabled": true,
        "onPremisesSyncEnabled": null,
        "onPremisesImmutableId": null,
        "userType": if upn.contains("#EXT#") { "Guest" } else { "Member" },
        "signInSessionsValidFromDateTime": "2026-04-01T08:00:00Z",
    })
}

/// `vm-web-01` as ARM returns it: one OS disk and one data disk, both managed.
pub fn vm_json() -> Value {
    json!({
        "id": VM_ID,
        "name": "vm-web-01",
        "type": "Microsoft.Compute/virtualMachines",
        "location": "westeurope",
        "tags": { "env": "prod" },
        "properties": { "storageProfile": {
            "osDisk": { "name": "vm-web-01_OsDisk_1", "osType": "Linux", "managedDisk": { "id": OS_DISK_ID } },
            "dataDisks": [ { "lun": 0, "name": "vm-web-01_data_0", "managedDisk": { "id": DATA_DISK_ID } } ]
        } }
    })
}

/// A managed disk as ARM returns it.
pub fn disk_json(id: &str, sku: &str) -> Value {
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap_or(id),
        "type": "Microsoft.Compute/disks",
        "location": "westeurope",
        "sku": { "name": sku },
        "properties": { "diskState": "Attached" }
    })
}

/// The Lacework first-access alert of the fixtures, built by hand: Alex Wilber touched
/// `vm-web-01` for the first time.
pub fn first_access_alert() -> Alert {
    Alert {
        id: ALERT_ID.into(),
        source: Source::Lacework,
        kind: "first_access".into(),
        title: "New Azure API Call Invoked by User Accessed Resource for the First Time".into(),
        severity: Severity::High,
        observed_at: Utc
            .with_ymd_and_hms(2026, 4, 21, 4, 0, 0)
            .single()
            .expect("valid date"),
        principal: Some(Principal {
            upn: Some(ALEX_UPN.into()),
            object_id: Some(ALEX_ID.into()),
            tenant_id: Some(TENANT.into()),
            kind: PrincipalType::User,
        }),
        resources: vec![Resource::from_id(VM_ID)],
        operation: Some("Microsoft.Compute/virtualMachines/runCommand/action".into()),
        source_ip: Some("203.0.113.7".into()),
        needs_enrichment: false,
        raw: json!({}),
    }
}

/// Everything a [`PlanContext`] borrows, owned, with the fixtures' values.
pub struct TestEnv {
    pub endpoints: Endpoints,
    pub lookup: FakeLookup,
    pub alert: Alert,
    pub settings: ActionSettings,
    pub now: DateTime<Utc>,
    pub playbook_dir: PathBuf,
}

impl TestEnv {
    pub fn new(lookup: FakeLookup) -> TestEnv {
        TestEnv {
            endpoints: Endpoints::default(),
            lookup,
            alert: first_access_alert(),
            settings: ActionSettings {
                mfa_group_id: Some(MFA_GROUP.into()),
                notify_webhook_url: None,
                log_analytics_workspace: Some(WORKSPACE.into()),
                max_planning_reads: None,
            },
            now: Utc
                .with_ymd_and_hms(2026, 4, 21, 4, 5, 0)
                .single()
                .expect("valid date"),
            playbook_dir: PathBuf::from("playbooks"),
        }
    }

    /// No credentials: every lookup is unavailable.
    pub fn offline() -> TestEnv {
        TestEnv::new(FakeLookup::offline())
    }

    pub fn ctx(&self) -> PlanContext<'_> {
        PlanContext {
            endpoints: &self.endpoints,
            lookup: &self.lookup,
            alert: &self.alert,
            run_id: RUN_ID,
            step_id: "step",
            settings: &self.settings,
            now: self.now,
            playbook_dir: self.playbook_dir.clone(),
        }
    }

    /// Plans `action` with `with` as a step's `with:` map, through serde like the engine does.
    pub async fn plan<A: Action>(
        &self,
        action: &A,
        with: Value,
    ) -> Result<ActionPlan, ActionError> {
        let params = serde_json::from_value::<A::Params>(with)
            .map_err(|e| ActionError::Params(e.to_string()))?;
        let mut plan = self.plan_carrying_unknowns(action, params).await?;
        shown(&mut plan);
        Ok(plan)
    }

    /// The plan exactly as the action returns it, its unknowns still marked (as the planner
    /// sees it before sealing).
    pub async fn plan_carrying_unknowns<A: Action>(
        &self,
        action: &A,
        params: A::Params,
    ) -> Result<ActionPlan, ActionError> {
        action.plan(params, &self.ctx()).await
    }
}

/// The action plan as a sealed plan shows it: unknowns read `⟨…⟩`.
fn shown(plan: &mut ActionPlan) {
    use crate::actions::unknown;
    for r in &mut plan.requests {
        if let Ok(mut v) = serde_json::to_value(&*r) {
            unknown::shown_value(&mut v);
            if let Ok(back) = serde_json::from_value(v) {
                *r = back;
            }
        }
    }
    for v in [
        &mut plan.outputs,
        &mut plan.pre_state,
        &mut plan.desired_state,
    ] {
        unknown::shown_value(v);
    }
    plan.reason = plan.reason.as_deref().map(unknown::shown);
    plan.notes = plan.notes.iter().map(|n| unknown::shown(n)).collect();
}

/// The single request of a plan as `(method, url, body)`, for compact assertions.
pub fn only_request(plan: &ActionPlan) -> (&'static str, &str, Option<&Value>) {
    assert_eq!(
        plan.requests.len(),
        1,
        "expected one request: {:#?}",
        plan.requests
    );
    let r = &plan.requests[0];
    (r.method.as_str(), r.url.as_str(), r.body.as_ref())
}

/// What the engine hands verify and compensate after `plan`'s requests succeeded.
pub fn executed<'a>(
    params: &'a Value,
    plan: &'a ActionPlan,
    responses: &'a [Value],
) -> crate::actions::Executed<'a> {
    crate::actions::Executed {
        run_id: RUN_ID,
        params,
        pre_state: &plan.pre_state,
        desired_state: &plan.desired_state,
        requests: &plan.requests,
        responses,
    }
}

/// The requests of a compensation, or a panic naming what it was instead.
pub fn compensation_requests(
    c: crate::actions::Compensation,
) -> Vec<crate::connectors::ApiRequest> {
    match c {
        crate::actions::Compensation::Requests(r) => r,
        other => panic!("expected requests, got {other:?}"),
    }
}
