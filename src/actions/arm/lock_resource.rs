use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, Verification, encode, unknown, unreadable,
};
use crate::connectors::{Api, ApiRequest, Endpoints, Lookup, LookupOutcome, Method};

use super::{LOCKS_API_VERSION, parse_resource, run_key};

/// Puts a management lock on a resource so evidence (a snapshot, a VM, a resource group)
/// cannot be deleted — by an attacker or by a well-meaning cleanup — while the case is open.
pub struct LockResource;

/// The lock levels ARM knows, spelled as ARM spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LockLevel {
    /// Reads and changes are allowed, deletion is not. The right level for evidence.
    CanNotDelete,
    /// Nothing may change or be deleted; also blocks POST actions such as a snapshot's SAS
    /// export (`beginGetAccess`) and can break a running workload.
    ReadOnly,
}

impl LockLevel {
    fn as_str(self) -> &'static str {
        match self {
            LockLevel::CanNotDelete => "CanNotDelete",
            LockLevel::ReadOnly => "ReadOnly",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The ARM id of the resource, resource group or subscription to lock.
    pub resource: String,
    /// `CanNotDelete` or `ReadOnly`. Default: `CanNotDelete`.
    #[serde(default = "default_level")]
    pub level: LockLevel,
}

fn default_level() -> LockLevel {
    LockLevel::CanNotDelete
}

static INFO: ActionInfo = ActionInfo {
    name: "arm.lock_resource",
    description: "Put a management lock (CanNotDelete by default) named after the run on a resource, so evidence cannot be deleted.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &[
            "Microsoft.Authorization/locks/read",
            "Microsoft.Authorization/locks/write (built-in: Owner or User Access Administrator)",
        ],
    },
    compensation: "delete the lock: DELETE {resource}/providers/Microsoft.Authorization/locks/riposte-{run key}?api-version=2020-05-01; a lock on a snapshot is kept (it protects evidence)",
    example: "id: lock\nuses: arm.lock_resource\nwith:\n  resource: ${{ alert.resources[0].id }}\n  level: CanNotDelete\n",
};

/// Why a rollback keeps a lock on a snapshot.
pub const SNAPSHOT_LOCK_KEPT: &str = "the lock protects an evidence snapshot and is kept; remove it by hand once the incident is closed";

/// Whether a lock URL (`{arm}{resource}/providers/Microsoft.Authorization/locks/{name}?…`)
/// is on a disk snapshot. Also read by rollback for reports recorded before such locks were
/// kept, so an old report cannot delete one either.
pub fn locks_a_snapshot(lock_url: &str) -> bool {
    let path = lock_url
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some((resource, _)) = path.rsplit_once("/providers/microsoft.authorization/locks/") else {
        return false;
    };
    // The locked resource's own type is what follows its last `/providers/`.
    let Some((_, own)) = resource.rsplit_once("/providers/") else {
        return false;
    };
    let parts: Vec<&str> = own.split('/').collect();
    matches!(parts.as_slice(), ["microsoft.compute", "snapshots", name] if !name.is_empty())
}

/// The longest lock note ARM accepts.
const MAX_NOTES: usize = 512;

/// Lock names: at most 260 characters, none of `< > % & : \ ? /` (reference C6).
pub fn check_lock_name(name: &str) -> Result<(), ActionError> {
    let bad = name
        .chars()
        .find(|c| matches!(c, '<' | '>' | '%' | '&' | ':' | '\\' | '?' | '/'));
    if name.is_empty() || name.chars().count() > 260 || bad.is_some() {
        return Err(ActionError::Refused(format!(
            "`{name}` is not a valid lock name (1-260 characters, none of < > % & : \\ ? /)"
        )));
    }
    Ok(())
}

#[async_trait]
impl Action for LockResource {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if !unknown::is_placeholder(&p.resource) {
            parse_resource(&p.resource)?;
        }
        // Named after the run: a second run's lock is a second lock, so rolling one run back
        // never lifts the protection another run put in place.
        let name = format!("riposte-{}", run_key(ctx.run_id));
        check_lock_name(&name)?;
        let url = format!(
            "{}{}/providers/Microsoft.Authorization/locks/{}?api-version={LOCKS_API_VERSION}",
            ctx.endpoints.arm,
            encode::arm_path(&p.resource),
            encode::segment(&name)
        );
        let mut notes = format!(
            "riposte run {} alert {} ({}): evidence protection",
            ctx.run_id, ctx.alert.id, ctx.alert.source
        );
        if notes.len() > MAX_NOTES {
            let mut cut = MAX_NOTES;
            while !notes.is_char_boundary(cut) {
                cut -= 1;
            }
            notes.truncate(cut);
        }
        let desired = json!({ "name": name, "level": p.level.as_str() });
        let mut pre_state = serde_json::Value::Null;
        if !unknown::is_placeholder(&p.resource) {
            match ctx.lookup.get(Api::Arm, &url).await? {
                LookupOutcome::Found(lock) => {
                    let level = lock["properties"]["level"].clone();
                    if level == p.level.as_str() {
                        return Ok(ActionPlan::already_satisfied(
                            "this run's lock is already in place",
                        )
                        .pre_state(json!({ "name": name, "level": level }))
                        .desired_state(desired));
                    }
                    pre_state = json!({ "name": name, "level": level });
                }
                LookupOutcome::NotFound => pre_state = json!({ "name": name, "level": null }),
                LookupOutcome::Unavailable => {}
            }
        }
        let body = json!({ "properties": { "level": p.level.as_str(), "notes": notes } });
        let mut plan = ActionPlan::planned(vec![
            ApiRequest::new(Method::Put, Api::Arm, url).with_body(body),
        ])
        .pre_state(pre_state)
        .desired_state(desired);
        if p.level == LockLevel::ReadOnly {
            plan = plan.note(
                "ReadOnly also blocks POST actions (a snapshot's SAS export, a VM restart) and can break the workload; CanNotDelete is usually enough for evidence",
            );
        }
        Ok(plan)
    }

    /// The lock's PUT URL is also its GET URL.
    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        let Some(sent) = done.requests.first() else {
            return Ok(Verification::Unchecked("no request was sent".into()));
        };
        let want = sent.body.as_ref().map(|b| &b["properties"]["level"]);
        let found = lookup.get(Api::Arm, &sent.url).await?;
        Ok(match &found {
            LookupOutcome::Found(lock) if Some(&lock["properties"]["level"]) == want => {
                Verification::Verified(
                    json!({ "name": lock["name"], "level": lock["properties"]["level"] }),
                )
            }
            LookupOutcome::Found(lock) => Verification::Mismatch(format!(
                "the lock's level is {}",
                lock["properties"]["level"]
            )),
            other => unreadable(other, "the lock"),
        })
    }

    /// Deletes the run's lock. If the plan found this run's lock already there at another
    /// level, the compensation puts that level back instead of removing protection that
    /// existed before.
    /// A lock on a snapshot is kept: it protects evidence, and a rollback undoes the
    /// containment, never the evidence (DESIGN.md §3, hold).
    fn compensate(&self, done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        let Some(sent) = done.requests.first() else {
            return Compensation::NotNeeded;
        };
        if locks_a_snapshot(&sent.url) {
            return Compensation::Kept(SNAPSHOT_LOCK_KEPT.into());
        }
        match done.pre_state["level"].as_str() {
            Some(level) => Compensation::Requests(vec![
                ApiRequest::new(Method::Put, Api::Arm, sent.url.clone())
                    .with_body(json!({ "properties": { "level": level } })),
            ]),
            None => Compensation::Requests(vec![ApiRequest::new(
                Method::Delete,
                Api::Arm,
                sent.url.clone(),
            )]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    fn lock_url() -> String {
        format!(
            "{ARM}{VM_ID}/providers/Microsoft.Authorization/locks/riposte-3c4d5e6f?api-version=2020-05-01"
        )
    }

    #[tokio::test]
    async fn puts_a_can_not_delete_lock_named_after_the_run() {
        let env = TestEnv::new(FakeLookup::strict().not_found(lock_url()));
        let plan = env
            .plan(&LockResource, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!((method, url), ("PUT", lock_url().as_str()));
        assert_eq!(
            body,
            Some(&json!({ "properties": {
                "level": "CanNotDelete",
                "notes": format!("riposte run {RUN_ID} alert {ALERT_ID} (lacework): evidence protection"),
            } }))
        );
        assert_eq!(
            plan.pre_state,
            json!({ "name": "riposte-3c4d5e6f", "level": null })
        );
    }

    #[tokio::test]
    async fn verify_reads_the_lock_and_compensation_deletes_it() {
        let env = TestEnv::new(FakeLookup::strict().not_found(lock_url()));
        let params = json!({ "resource": VM_ID });
        let plan = env.plan(&LockResource, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let lookup = FakeLookup::strict().found(
            lock_url(),
            json!({ "name": "riposte-3c4d5e6f", "properties": { "level": "CanNotDelete" } }),
        );
        assert_eq!(
            LockResource.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(json!({ "name": "riposte-3c4d5e6f", "level": "CanNotDelete" }))
        );
        let missing = FakeLookup::strict().not_found(lock_url());
        assert!(matches!(
            LockResource.verify(&done, &missing).await.unwrap(),
            Verification::Mismatch(_)
        ));
        assert_eq!(
            compensation_requests(LockResource.compensate(&done, &Endpoints::default())),
            vec![ApiRequest::new(Method::Delete, Api::Arm, lock_url())]
        );
    }

    #[tokio::test]
    async fn a_lock_on_a_snapshot_is_kept_by_rollback() {
        let snapshot = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/snapshots/riposte-osdisk";
        let url = format!(
            "{ARM}{snapshot}/providers/Microsoft.Authorization/locks/riposte-3c4d5e6f?api-version=2020-05-01"
        );
        let env = TestEnv::new(FakeLookup::strict().not_found(url.clone()));
        let params = json!({ "resource": snapshot });
        let plan = env.plan(&LockResource, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        assert_eq!(
            LockResource.compensate(&done, &Endpoints::default()),
            Compensation::Kept(SNAPSHOT_LOCK_KEPT.into())
        );
        assert!(locks_a_snapshot(&url));
        assert!(
            !locks_a_snapshot(&lock_url()),
            "a VM's lock is not evidence"
        );
        // A resource *named* like a snapshot path is still a VM.
        assert!(!locks_a_snapshot(
            "https://m/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/snapshots/providers/Microsoft.Authorization/locks/x"
        ));
        assert!(!locks_a_snapshot(
            "https://m/subscriptions/s/resourceGroups/rg"
        ));
    }

    #[tokio::test]
    async fn a_changed_level_is_put_back_rather_than_deleted() {
        let env = TestEnv::new(FakeLookup::strict().found(
            lock_url(),
            json!({ "name": "riposte-3c4d5e6f", "properties": { "level": "ReadOnly" } }),
        ));
        let params = json!({ "resource": VM_ID });
        let plan = env.plan(&LockResource, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        assert_eq!(
            compensation_requests(LockResource.compensate(&done, &Endpoints::default())),
            vec![
                ApiRequest::new(Method::Put, Api::Arm, lock_url())
                    .with_body(json!({ "properties": { "level": "ReadOnly" } }))
            ]
        );
    }

    #[tokio::test]
    async fn existing_lock_of_the_same_level_is_satisfied() {
        let env = TestEnv::new(FakeLookup::strict().found(
            lock_url(),
            json!({ "name": "riposte-3c4d5e6f", "properties": { "level": "CanNotDelete" } }),
        ));
        let plan = env
            .plan(&LockResource, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
    }

    #[tokio::test]
    async fn read_only_is_explained_and_offline_still_plans() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &LockResource,
                json!({ "resource": VM_ID, "level": "ReadOnly" }),
            )
            .await
            .unwrap();
        let (_, url, body) = only_request(&plan);
        assert_eq!(url, lock_url());
        assert_eq!(body.unwrap()["properties"]["level"], "ReadOnly");
        assert!(plan.notes.iter().any(|n| n.contains("SAS export")));
        assert_eq!(plan.pre_state, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn placeholder_resource_keeps_the_placeholder() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &LockResource,
                json!({ "resource": crate::actions::unknown::placeholder("item") }),
            )
            .await
            .unwrap();
        assert_eq!(
            only_request(&plan).1,
            format!(
                "{ARM}⟨item⟩/providers/Microsoft.Authorization/locks/riposte-3c4d5e6f?api-version=2020-05-01"
            )
        );
        assert!(env.lookup.calls().is_empty());
    }

    #[tokio::test]
    async fn unknown_level_is_rejected() {
        let env = TestEnv::offline();
        let err = env
            .plan(
                &LockResource,
                json!({ "resource": VM_ID, "level": "NoDelete" }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
    }

    #[test]
    fn lock_names() {
        assert!(check_lock_name("riposte-3c4d5e6f").is_ok());
        for bad in ["", "a/b", "a:b", "a%b", "a?b", "a&b", "a<b", "a\\b"] {
            assert!(check_lock_name(bad).is_err(), "{bad}");
        }
        assert!(check_lock_name(&"x".repeat(261)).is_err());
    }
}
