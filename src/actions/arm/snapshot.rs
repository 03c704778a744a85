use std::collections::HashSet;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Compensation, Effect, Executed, Permissions,
    PlanContext, PlanStatus, Verification, encode, unknown, unreadable,
};
use crate::alert::ArmId;
use crate::connectors::{Api, ApiRequest, Endpoints, Lookup, LookupOutcome, Method};

use super::{
    AttachedDisk, DISK_API_VERSION, DISK_TYPE, VM_API_VERSION, VM_TYPE, check_api_version,
    lookup_resource, parse_resource, resolve_api_version, resource_url, run_key, vm_disks,
};

/// Preserves a VM's disks (or one disk) as incremental snapshots before anyone touches it,
/// so forensics can work on a copy whatever containment does next.
pub struct Snapshot;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The ARM id of a virtual machine (every OS and data disk is snapshotted) or of a
    /// managed disk. Any other resource gets its ARM JSON captured as evidence instead.
    pub resource: String,
    /// The resource group the snapshots are created in (same subscription as the disk).
    /// Default: each disk's own resource group.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// The API version used to read a resource that is neither a VM nor a disk. Default: the
    /// newest stable version its resource provider publishes (read from ARM's providers
    /// endpoint while planning).
    #[serde(default)]
    pub api_version: Option<String>,
}

static INFO: ActionInfo = ActionInfo {
    name: "arm.snapshot",
    description: "Snapshot a VM's OS and data disks (or one managed disk): incremental, same region, tagged with the run and alert; names derive from the run so a retry never makes a second copy. Other resource types: their ARM JSON is captured as evidence.",
    effect: Effect::Mutate,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &[
            "Microsoft.Compute/virtualMachines/read",
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/snapshots/read",
            "Microsoft.Compute/snapshots/write",
        ],
    },
    compensation: "none: evidence snapshots are kept; delete them by hand once the incident is closed",
    example: "id: preserve\nuses: arm.snapshot\nwith:\n  resource: ${{ alert.resources[0].id }}\n",
};

/// The longest snapshot name ARM accepts.
const MAX_NAME: usize = 80;

/// The PUT URL of a snapshot; its ARM id is the same path without the query.
fn snapshot_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/snapshots/{name}")
}

/// `riposte-<run key>-<disk name>`: only `[A-Za-z0-9_-]`, at most 80 characters, ending in a
/// letter, digit or `_` as ARM requires. A disk name that does not fit (or that another disk
/// of the plan already produced) ends in a hash of the disk id instead, so names stay
/// unique and deterministic.
pub fn snapshot_name(run_id: &str, disk_name: &str, disk_id: &str, hashed: bool) -> String {
    let prefix = format!("riposte-{}-", run_key(run_id));
    let clean: String = disk_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_end_matches('-');
    let room = MAX_NAME - prefix.len();
    if !hashed && !clean.is_empty() && clean.len() <= room {
        return format!("{prefix}{clean}");
    }
    let hash = &hex::encode(Sha256::digest(disk_id.to_ascii_lowercase().as_bytes()))[..8];
    let keep = room - hash.len() - 1;
    let head = clean[..clean.len().min(keep)].trim_end_matches('-');
    if head.is_empty() {
        format!("{prefix}{hash}")
    } else {
        format!("{prefix}{head}-{hash}")
    }
}

/// Checks a `resource_group` parameter against ARM's naming rules, so it can only ever fill
/// its one path segment.
fn check_resource_group(rg: &str) -> Result<(), ActionError> {
    let ok = !rg.is_empty()
        && rg.len() <= 90
        && !rg.ends_with('.')
        && rg
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(ActionError::Params(format!(
            "resource_group `{rg}` is not a valid resource group name"
        )))
    }
}

/// What the plan knows about one disk to snapshot.
struct DiskFacts {
    /// As ARM spells it (the disk's own `id` when it was read).
    id: String,
    name: String,
    location: Option<String>,
    sku: Option<String>,
}

/// Snapshots are stored on standard storage whatever the disk is; zone-redundant disks keep
/// zone redundancy.
fn snapshot_sku(disk_sku: &str) -> &'static str {
    if disk_sku.to_ascii_uppercase().ends_with("_ZRS") {
        "Standard_ZRS"
    } else {
        "Standard_LRS"
    }
}

#[async_trait]
impl Action for Snapshot {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if let Some(rg) = &p.resource_group {
            check_resource_group(rg)?;
        }
        if let Some(v) = &p.api_version {
            check_api_version(v)?;
        }
        if unknown::is_placeholder(&p.resource) {
            return Ok(unknown_disks_plan(ctx, &p, None));
        }
        let arm = parse_resource(&p.resource)?;
        let disks: Vec<DiskFacts> = if arm.is_type(VM_TYPE) {
            let Some(vm) = lookup_resource(ctx, &p.resource, VM_API_VERSION).await? else {
                return Ok(unknown_disks_plan(ctx, &p, Some(&arm)));
            };
            let (attached, unmanaged) = vm_disks(&vm);
            if !unmanaged.is_empty() {
                return Err(ActionError::Refused(format!(
                    "the VM has unmanaged (VHD) disks riposte cannot snapshot: {}; copy the VHD blobs by hand",
                    unmanaged.join(", ")
                )));
            }
            let mut facts = Vec::new();
            for disk in &attached {
                facts.push(read_disk(ctx, disk).await?);
            }
            facts
        } else if arm.is_type(DISK_TYPE) {
            let name = arm.name().unwrap_or_default();
            let attached = AttachedDisk {
                id: p.resource.clone(),
                name,
                lun: None,
                os: false,
            };
            vec![read_disk(ctx, &attached).await?]
        } else {
            return evidence_plan(ctx, &p, &arm).await;
        };
        if disks.is_empty() {
            return Ok(ActionPlan::already_satisfied("the VM has no managed disks")
                .outputs(json!({ "snapshot_ids": [] })));
        }
        plan_disks(ctx, &p, disks).await
    }

    /// Each snapshot the step created must read back as `Succeeded` (the client has already
    /// driven the creation to its end, so anything else is a real failure).
    async fn verify(
        &self,
        done: &Executed<'_>,
        lookup: &dyn Lookup,
    ) -> Result<Verification, ActionError> {
        let puts: Vec<&ApiRequest> = done
            .requests
            .iter()
            .filter(|r| r.method == Method::Put)
            .collect();
        if puts.is_empty() {
            return Ok(Verification::Unchecked(
                "nothing was written: the resource's ARM JSON was captured as evidence".into(),
            ));
        }
        // The PUT URL of a snapshot is also its GET URL; read them all at once.
        let reads = puts.iter().map(|r| lookup.get(Api::Arm, &r.url));
        let mut seen = Vec::new();
        for (put, found) in puts.iter().zip(futures::future::join_all(reads).await) {
            let found = found?;
            let LookupOutcome::Found(snapshot) = &found else {
                return Ok(unreadable(&found, &format!("snapshot {}", put.url)));
            };
            let state = &snapshot["properties"]["provisioningState"];
            if state != "Succeeded" {
                return Ok(Verification::Mismatch(format!(
                    "snapshot {} is {state}, not Succeeded",
                    snapshot["id"]
                )));
            }
            seen.push(json!({ "id": snapshot["id"], "provisioningState": state }));
        }
        Ok(Verification::Verified(json!({ "snapshots": seen })))
    }

    fn compensate(&self, done: &Executed<'_>, _endpoints: &Endpoints) -> Compensation {
        if done.requests.iter().all(|r| r.method.is_read()) {
            return Compensation::NotNeeded;
        }
        Compensation::Kept(
            "evidence snapshots are kept; delete them by hand once the incident is closed".into(),
        )
    }
}

/// Reads a disk for its region and SKU; no credentials leaves them to run time.
async fn read_disk(ctx: &PlanContext<'_>, disk: &AttachedDisk) -> Result<DiskFacts, ActionError> {
    let found = lookup_resource(ctx, &disk.id, DISK_API_VERSION).await?;
    Ok(DiskFacts {
        id: found
            .as_ref()
            .and_then(|d| d["id"].as_str())
            .unwrap_or(&disk.id)
            .to_string(),
        name: disk.name.clone(),
        location: found
            .as_ref()
            .and_then(|d| d["location"].as_str())
            .map(str::to_string),
        sku: found
            .as_ref()
            .and_then(|d| d["sku"]["name"].as_str())
            .map(str::to_string),
    })
}

/// One PUT per disk, skipping disks this run already snapshotted.
async fn plan_disks(
    ctx: &PlanContext<'_>,
    p: &Params,
    disks: Vec<DiskFacts>,
) -> Result<ActionPlan, ActionError> {
    let mut requests = Vec::new();
    let mut ids = Vec::new();
    let mut pre = Vec::new();
    let mut desired = Vec::new();
    let mut used = HashSet::new();
    let mut notes = Vec::new();
    for disk in disks {
        let parsed = ArmId::parse(&disk.id);
        let sub = parsed
            .as_ref()
            .and_then(|a| a.subscription_id.clone())
            .ok_or_else(|| {
                ActionError::Refused(format!("disk id `{}` has no subscription", disk.id))
            })?;
        let rg = p
            .resource_group
            .clone()
            .or_else(|| parsed.as_ref().and_then(|a| a.resource_group.clone()))
            .ok_or_else(|| {
                ActionError::Refused(format!("disk id `{}` has no resource group", disk.id))
            })?;
        let mut name = snapshot_name(ctx.run_id, &disk.name, &disk.id, false);
        if !used.insert(name.to_ascii_lowercase()) {
            name = snapshot_name(ctx.run_id, &disk.name, &disk.id, true);
            used.insert(name.to_ascii_lowercase());
        }
        let id = snapshot_id(&sub, &rg, &name);
        let url = resource_url(&ctx.endpoints.arm, &id, DISK_API_VERSION);
        let exists = match ctx.lookup.get(Api::Arm, &url).await? {
            LookupOutcome::Found(existing) => {
                if existing["tags"]["riposte:run"] != ctx.run_id {
                    return Err(ActionError::Refused(format!(
                        "snapshot `{id}` already exists and was not made by this run; remove or rename it"
                    )));
                }
                true
            }
            LookupOutcome::NotFound | LookupOutcome::Unavailable => false,
        };
        pre.push(json!({
            "disk": disk.id,
            "location": disk.location,
            "sku": disk.sku,
            "snapshot": id,
            "snapshot_exists": exists,
        }));
        desired.push(json!({ "id": id, "source": disk.id, "provisioningState": "Succeeded" }));
        ids.push(Value::String(id));
        if exists {
            notes.push(format!(
                "snapshot of `{}` already taken by this run",
                disk.name
            ));
            continue;
        }
        let location = disk
            .location
            .clone()
            .unwrap_or_else(|| unknown::placeholder(&format!("location of disk {}", disk.name)));
        let mut body = json!({
            "location": location,
            "tags": tags(ctx, &disk.id),
        });
        if let Some(sku) = &disk.sku {
            body["sku"] = json!({ "name": snapshot_sku(sku) });
        }
        body["properties"] = json!({
            "creationData": { "createOption": "Copy", "sourceResourceId": disk.id },
            "incremental": true,
        });
        requests.push(ApiRequest::new(Method::Put, Api::Arm, url).with_body(body));
    }
    let outputs = json!({ "snapshot_ids": ids });
    let pre_state = json!({ "disks": pre });
    let desired_state = json!({ "snapshots": desired });
    let mut plan = if requests.is_empty() {
        ActionPlan::already_satisfied("every disk already has this run's snapshot")
    } else {
        ActionPlan::planned(requests)
    };
    if plan.status == PlanStatus::Planned {
        plan = plan
            .note("snapshots of a running VM are crash-consistent, like pulling the power cord");
        if plan
            .requests
            .iter()
            .any(|r| r.body.as_ref().is_some_and(unknown::contains_unknown))
        {
            plan = plan
                .reason("the disks' regions are known at run time: no credentials to read them");
        }
    }
    for n in notes {
        plan = plan.note(n);
    }
    Ok(plan
        .pre_state(pre_state)
        .desired_state(desired_state)
        .outputs(outputs))
}

fn tags(ctx: &PlanContext<'_>, disk_id: &str) -> Value {
    json!({
        "riposte:run": ctx.run_id,
        "riposte:alert": ctx.alert.id,
        "riposte:source-disk": disk_id,
    })
}

/// No credentials (or an id from an earlier step): the disks are unknown, so the plan shows
/// one PUT standing for a snapshot of each of them.
fn unknown_disks_plan(ctx: &PlanContext<'_>, p: &Params, arm: Option<&ArmId>) -> ActionPlan {
    let of = arm
        .and_then(ArmId::name)
        .or_else(|| unknown::describe(&p.resource))
        .unwrap_or_else(|| p.resource.clone());
    let sub = arm
        .and_then(|a| a.subscription_id.as_deref())
        .map(encode::segment)
        .unwrap_or_else(|| unknown::placeholder("subscription of each disk"));
    let rg = p
        .resource_group
        .as_deref()
        .map(encode::segment)
        .unwrap_or_else(|| unknown::placeholder("resource group of each disk"));
    let disk = unknown::placeholder(&format!("each disk of {of}"));
    let url = format!(
        "{}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/snapshots/riposte-{}-{}?api-version={DISK_API_VERSION}",
        ctx.endpoints.arm,
        run_key(ctx.run_id),
        unknown::placeholder("disk name"),
    );
    let body = json!({
        "location": unknown::placeholder("location of the disk"),
        "tags": tags(ctx, &unknown::placeholder("id of the disk")),
        "properties": {
            "creationData": { "createOption": "Copy", "sourceResourceId": disk },
            "incremental": true,
        },
    });
    ActionPlan::planned(vec![ApiRequest::new(Method::Put, Api::Arm, url).with_body(body)])
        .outputs(Value::Null)
        .reason(format!(
            "known at run time: no credentials to list the disks of `{of}`; one incremental snapshot is made per OS and data disk"
        ))
}

/// Not a VM or a disk: nothing to snapshot, so the resource's ARM JSON is captured as
/// evidence instead (the step keeps its Mutate effect, since for VMs and disks it writes).
async fn evidence_plan(
    ctx: &PlanContext<'_>,
    p: &Params,
    arm: &ArmId,
) -> Result<ActionPlan, ActionError> {
    let version = resolve_api_version(ctx, arm, p.api_version.as_deref()).await?;
    let kind = arm.resource_type().unwrap_or_else(|| "unknown".into());
    Ok(ActionPlan::planned(vec![ApiRequest::get(
        Api::Arm,
        resource_url(&ctx.endpoints.arm, &p.resource, &version),
    )])
    .reason(format!(
        "`{kind}` has no managed disks to snapshot: its ARM JSON is captured as evidence instead, and nothing is written"
    ))
    .outputs(json!({ "snapshot_ids": [] })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::*;

    fn snap_url(name: &str) -> String {
        format!(
            "{ARM}/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/snapshots/{name}?api-version=2025-01-02"
        )
    }

    fn online_vm() -> FakeLookup {
        FakeLookup::strict()
            .found(format!("{ARM}{VM_ID}?api-version=2025-04-01"), vm_json())
            .found(
                format!("{ARM}{OS_DISK_ID}?api-version=2025-01-02"),
                disk_json(OS_DISK_ID, "Premium_LRS"),
            )
            .found(
                format!("{ARM}{DATA_DISK_ID}?api-version=2025-01-02"),
                disk_json(DATA_DISK_ID, "StandardSSD_ZRS"),
            )
            .not_found(snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1"))
            .not_found(snap_url("riposte-3c4d5e6f-vm-web-01_data_0"))
    }

    #[tokio::test]
    async fn vm_gets_one_snapshot_per_disk() {
        let env = TestEnv::new(online_vm());
        let plan = env
            .plan(&Snapshot, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        assert_eq!(plan.requests.len(), 2);
        let os = &plan.requests[0];
        assert_eq!(os.method, Method::Put);
        assert_eq!(os.url, snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1"));
        assert_eq!(
            os.body,
            Some(json!({
                "location": "westeurope",
                "tags": {
                    "riposte:run": RUN_ID,
                    "riposte:alert": ALERT_ID,
                    "riposte:source-disk": OS_DISK_ID,
                },
                "sku": { "name": "Standard_LRS" },
                "properties": {
                    "creationData": { "createOption": "Copy", "sourceResourceId": OS_DISK_ID },
                    "incremental": true,
                },
            }))
        );
        assert_eq!(
            plan.requests[1].body.as_ref().unwrap()["sku"]["name"],
            "Standard_ZRS"
        );
        assert_eq!(
            plan.outputs,
            json!({ "snapshot_ids": [
                format!("/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/snapshots/riposte-3c4d5e6f-vm-web-01_OsDisk_1"),
                format!("/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/snapshots/riposte-3c4d5e6f-vm-web-01_data_0"),
            ] })
        );
    }

    #[tokio::test]
    async fn verify_reads_every_snapshot_back_and_compensation_keeps_them() {
        let env = TestEnv::new(online_vm());
        let params = json!({ "resource": VM_ID });
        let plan = env.plan(&Snapshot, params.clone()).await.unwrap();
        let done = executed(&params, &plan, &[]);
        let os = snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1");
        let data = snap_url("riposte-3c4d5e6f-vm-web-01_data_0");
        let ok =
            |name: &str| json!({ "id": name, "properties": { "provisioningState": "Succeeded" } });
        let lookup = FakeLookup::strict()
            .found(os.clone(), ok("os"))
            .found(data.clone(), ok("data"));
        assert!(matches!(
            Snapshot.verify(&done, &lookup).await.unwrap(),
            Verification::Verified(v) if v["snapshots"].as_array().unwrap().len() == 2
        ));
        let mut calls = lookup.calls();
        calls.sort();
        let mut expected = vec![data.clone(), os.clone()];
        expected.sort();
        assert_eq!(calls, expected);
        let creating = FakeLookup::strict().found(os, ok("os")).found(
            data,
            json!({ "id": "data", "properties": { "provisioningState": "Failed" } }),
        );
        assert!(matches!(
            Snapshot.verify(&done, &creating).await.unwrap(),
            Verification::Mismatch(why) if why.contains("Failed")
        ));
        assert_eq!(
            Snapshot.compensate(&done, &Endpoints::default()),
            Compensation::Kept(
                "evidence snapshots are kept; delete them by hand once the incident is closed"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn a_retry_does_not_make_a_second_snapshot() {
        let taken = json!({ "tags": { "riposte:run": RUN_ID } });
        let env = TestEnv::new(
            online_vm()
                .found(
                    snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1"),
                    taken.clone(),
                )
                .found(snap_url("riposte-3c4d5e6f-vm-web-01_data_0"), taken),
        );
        let plan = env
            .plan(&Snapshot, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::AlreadySatisfied);
        assert!(plan.requests.is_empty());
        assert_eq!(plan.outputs["snapshot_ids"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_foreign_snapshot_with_our_name_is_refused() {
        let env = TestEnv::new(online_vm().found(
            snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1"),
            json!({ "tags": { "riposte:run": "another" } }),
        ));
        let err = env
            .plan(&Snapshot, json!({ "resource": VM_ID }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not made by this run"), "{err}");
    }

    #[tokio::test]
    async fn a_disk_snapshots_itself_into_the_given_group() {
        let url = format!(
            "{ARM}/subscriptions/{SUB}/resourceGroups/rg-evidence/providers/Microsoft.Compute/snapshots/riposte-3c4d5e6f-vm-web-01_data_0?api-version=2025-01-02"
        );
        let env = TestEnv::new(
            FakeLookup::strict()
                .found(
                    format!("{ARM}{DATA_DISK_ID}?api-version=2025-01-02"),
                    disk_json(DATA_DISK_ID, "Standard_LRS"),
                )
                .not_found(url.clone()),
        );
        let plan = env
            .plan(
                &Snapshot,
                json!({ "resource": DATA_DISK_ID, "resource_group": "rg-evidence" }),
            )
            .await
            .unwrap();
        let (method, planned, body) = only_request(&plan);
        assert_eq!((method, planned), ("PUT", url.as_str()));
        assert_eq!(
            body.unwrap()["properties"]["creationData"]["sourceResourceId"],
            DATA_DISK_ID
        );
    }

    #[tokio::test]
    async fn offline_vm_plans_one_placeholder_put() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&Snapshot, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "PUT");
        assert_eq!(
            url,
            format!(
                "{ARM}/subscriptions/{SUB}/resourceGroups/⟨resource group of each disk⟩/providers/Microsoft.Compute/snapshots/riposte-3c4d5e6f-⟨disk name⟩?api-version=2025-01-02"
            )
        );
        assert_eq!(
            body.unwrap()["properties"]["creationData"]["sourceResourceId"],
            "⟨each disk of vm-web-01⟩"
        );
        assert_eq!(plan.outputs, Value::Null);
        assert!(plan.reason.as_deref().unwrap().contains("no credentials"));
    }

    #[tokio::test]
    async fn offline_disk_knows_its_snapshot_id_but_not_its_region() {
        let env = TestEnv::offline();
        let plan = env
            .plan(&Snapshot, json!({ "resource": OS_DISK_ID }))
            .await
            .unwrap();
        let (_, url, body) = only_request(&plan);
        assert_eq!(url, snap_url("riposte-3c4d5e6f-vm-web-01_OsDisk_1"));
        let body = body.unwrap();
        assert_eq!(body["location"], "⟨location of disk vm-web-01_OsDisk_1⟩");
        assert!(body.get("sku").is_none());
        assert_eq!(plan.outputs["snapshot_ids"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn other_types_are_captured_as_evidence() {
        let nsg = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Network/networkSecurityGroups/nsg-web"
        );
        let providers =
            format!("{ARM}/subscriptions/{SUB}/providers/Microsoft.Network?api-version=2021-04-01");
        let env = TestEnv::new(FakeLookup::strict().found(
            providers,
            json!({"namespace": "Microsoft.Network", "resourceTypes": [
                {"resourceType": "networkSecurityGroups", "apiVersions": ["2024-05-01", "2023-11-01"]}]}),
        ));
        let plan = env
            .plan(&Snapshot, json!({ "resource": nsg }))
            .await
            .unwrap();
        let (method, url, _) = only_request(&plan);
        assert_eq!(method, "GET");
        assert_eq!(url, format!("{ARM}{nsg}?api-version=2024-05-01"));
        assert!(plan.reason.as_deref().unwrap().contains("evidence"));
        assert_eq!(plan.outputs, json!({ "snapshot_ids": [] }));
    }

    #[test]
    fn names_are_valid_and_deterministic() {
        assert_eq!(
            snapshot_name(RUN_ID, "vm-web-01_OsDisk_1", OS_DISK_ID, false),
            "riposte-3c4d5e6f-vm-web-01_OsDisk_1"
        );
        let odd = snapshot_name(RUN_ID, "disk.with spaces/é.", "x", false);
        assert_eq!(odd, "riposte-3c4d5e6f-disk-with-spaces");
        let long = "d".repeat(200);
        let a = snapshot_name(RUN_ID, &long, "/id/a", false);
        let b = snapshot_name(RUN_ID, &long, "/id/b", false);
        assert_eq!(a.len(), 80);
        assert_ne!(a, b);
        assert_eq!(a, snapshot_name(RUN_ID, &long, "/ID/A", false));
        for n in [&odd, &a] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
            assert!(!n.ends_with('-'));
        }
    }

    #[tokio::test]
    async fn invalid_resource_group_is_rejected() {
        let env = TestEnv::offline();
        let err = env
            .plan(
                &Snapshot,
                json!({ "resource": VM_ID, "resource_group": "../x" }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Params(_)));
    }
}
