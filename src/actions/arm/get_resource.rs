use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Effect, Permissions, PlanContext, unknown,
};
use crate::connectors::{Api, ApiRequest};

use super::{
    VM_TYPE, check_api_version, lookup_resource, parse_resource, resolve_api_version, resource_url,
    vm_disks,
};

/// Reads a resource's ARM JSON so later steps and policies decide on facts: where it is,
/// how it is tagged, and for a VM which disks it has.
pub struct GetResource;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The resource's ARM id.
    pub resource: String,
    /// The API version to read with. Default: by type — virtual machines 2025-04-01, disks and
    /// snapshots 2025-01-02, subscriptions and resource groups 2021-04-01; any other type the
    /// newest stable version its resource provider publishes (read from ARM's providers
    /// endpoint while planning).
    #[serde(default)]
    pub api_version: Option<String>,
}

static INFO: ActionInfo = ActionInfo {
    name: "arm.get_resource",
    description: "Look up an Azure resource (id, type, location, tags; for a VM its managed disks).",
    effect: Effect::Read,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &["<resource type>/read (Reader)"],
    },
    compensation: "none needed: reads only",
    example: "id: vm\nuses: arm.get_resource\nwith:\n  resource: ${{ alert.resources[0].id }}\n",
};

#[async_trait]
impl Action for GetResource {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        if let Some(v) = &p.api_version {
            check_api_version(v)?;
        }
        if unknown::is_placeholder(&p.resource) {
            let version = p
                .api_version
                .clone()
                .unwrap_or_else(|| unknown::placeholder("API version for the resource's type"));
            return Ok(ActionPlan::planned(vec![ApiRequest::get(
                Api::Arm,
                resource_url(&ctx.endpoints.arm, &p.resource, &version),
            )])
            .outputs(Value::Null)
            .reason("known at run time: the resource id comes from an earlier step"));
        }
        let arm = parse_resource(&p.resource)?;
        let version = resolve_api_version(ctx, &arm, p.api_version.as_deref()).await?;
        let get = ApiRequest::get(
            Api::Arm,
            resource_url(&ctx.endpoints.arm, &p.resource, &version),
        );
        let Some(found) = lookup_resource(ctx, &p.resource, &version).await? else {
            return Ok(ActionPlan::planned(vec![get])
                .outputs(Value::Null)
                .reason("known at run time: no credentials to look the resource up"));
        };
        let mut outputs = json!({
            "id": found.get("id").cloned().unwrap_or_else(|| json!(p.resource)),
            "name": found["name"],
            "type": found["type"],
            "location": found["location"],
            "tags": found.get("tags").filter(|t| t.is_object()).cloned().unwrap_or_else(|| json!({})),
        });
        let mut plan = ActionPlan::planned(vec![get]);
        if arm.is_type(VM_TYPE) {
            let (disks, unmanaged) = vm_disks(&found);
            outputs["disks"] = Value::Array(disks.iter().map(|d| d.to_json()).collect());
            for name in unmanaged {
                plan = plan.note(format!(
                    "disk `{name}` is not a managed disk (VHD); it is not listed and cannot be snapshotted by riposte"
                ));
            }
        }
        Ok(plan.pre_state(outputs.clone()).outputs(outputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    #[tokio::test]
    async fn vm_outputs_its_disks() {
        let url = format!("{ARM}{VM_ID}?api-version=2025-04-01");
        let env = TestEnv::new(FakeLookup::strict().found(url.clone(), vm_json()));
        let plan = env
            .plan(&GetResource, json!({ "resource": VM_ID }))
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, planned_url, body) = only_request(&plan);
        assert_eq!((method, planned_url, body), ("GET", url.as_str(), None));
        assert_eq!(
            plan.outputs,
            json!({
                "id": VM_ID,
                "name": "vm-web-01",
                "type": "Microsoft.Compute/virtualMachines",
                "location": "westeurope",
                "tags": { "env": "prod" },
                "disks": [
                    { "id": OS_DISK_ID, "name": "vm-web-01_OsDisk_1", "lun": null, "os": true },
                    { "id": DATA_DISK_ID, "name": "vm-web-01_data_0", "lun": 0, "os": false }
                ]
            })
        );
    }

    #[tokio::test]
    async fn disk_uses_the_disk_api_version_and_has_no_disks_output() {
        let url = format!("{ARM}{OS_DISK_ID}?api-version=2025-01-02");
        let env = TestEnv::new(FakeLookup::strict().found(
            url,
            json!({ "id": OS_DISK_ID, "name": "vm-web-01_OsDisk_1", "type": "Microsoft.Compute/disks", "location": "westeurope" }),
        ));
        let plan = env
            .plan(&GetResource, json!({ "resource": OS_DISK_ID }))
            .await
            .unwrap();
        assert_eq!(plan.outputs["tags"], json!({}));
        assert!(plan.outputs.get("disks").is_none());
    }

    #[tokio::test]
    async fn other_types_ask_their_provider_or_take_the_parameter() {
        let kv = format!(
            "/subscriptions/{SUB}/resourceGroups/rg_sec/providers/Microsoft.KeyVault/vaults/kv-1"
        );
        let kv_url = |v: &str| {
            format!(
                "{ARM}/subscriptions/{SUB}/resourceGroups/rg_sec/providers/Microsoft.KeyVault/vaults/kv-1?api-version={v}"
            )
        };
        // Offline the version cannot be read, so it is unknown rather than guessed.
        let env = TestEnv::offline();
        let plan = env
            .plan(&GetResource, json!({ "resource": kv }))
            .await
            .unwrap();
        let (_, url, _) = only_request(&plan);
        assert_eq!(
            url,
            kv_url("⟨API version of Microsoft.KeyVault/vaults, read from its resource provider⟩")
        );
        assert_eq!(plan.outputs, Value::Null);
        // Online: the newest stable version the provider publishes.
        let providers = format!(
            "{ARM}/subscriptions/{SUB}/providers/Microsoft.KeyVault?api-version=2021-04-01"
        );
        let online = TestEnv::new(
            FakeLookup::strict()
                .found(
                    providers.clone(),
                    json!({"namespace": "Microsoft.KeyVault", "resourceTypes": [{"resourceType": "vaults",
                        "apiVersions": ["2025-05-01-preview", "2024-11-01", "2023-07-01"]}]}),
                )
                .found(kv_url("2024-11-01"), json!({"id": kv, "name": "kv-1", "type": "Microsoft.KeyVault/vaults", "location": "westeurope"})),
        );
        let plan = online
            .plan(&GetResource, json!({ "resource": kv }))
            .await
            .unwrap();
        assert_eq!(only_request(&plan).1, kv_url("2024-11-01"));
        assert_eq!(plan.outputs["location"], "westeurope");
        let plan = env
            .plan(
                &GetResource,
                json!({ "resource": kv, "api_version": "2023-07-01" }),
            )
            .await
            .unwrap();
        assert!(only_request(&plan).1.ends_with("?api-version=2023-07-01"));
    }

    #[tokio::test]
    async fn bad_inputs_are_parameter_errors() {
        let env = TestEnv::offline();
        for with in [
            json!({ "resource": "vm-web-01" }),
            json!({ "resource": VM_ID, "api_version": "2021-04-01&evil=1" }),
        ] {
            let err = env.plan(&GetResource, with).await.unwrap_err();
            assert!(matches!(err, ActionError::Params(_)), "{err}");
        }
    }

    #[tokio::test]
    async fn missing_resource_is_refused() {
        let env = TestEnv::new(
            FakeLookup::strict().not_found(format!("{ARM}{VM_ID}?api-version=2025-04-01")),
        );
        let err = env
            .plan(&GetResource, json!({ "resource": VM_ID }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }

    #[tokio::test]
    async fn placeholder_resource_is_known_at_run_time() {
        let env = TestEnv::offline();
        let plan = env
            .plan(
                &GetResource,
                json!({ "resource": crate::actions::unknown::placeholder("steps.x.outputs.id") }),
            )
            .await
            .unwrap();
        assert_eq!(plan.outputs, Value::Null);
        assert!(env.lookup.calls().is_empty());
    }
}
