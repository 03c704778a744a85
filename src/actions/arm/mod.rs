//! Actions on Azure resources, through Azure Resource Manager.

pub mod get_resource;
pub mod lock_resource;
pub mod remove_role_assignments;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ActionError, PlanContext, encode, unknown};
use crate::alert::ArmId;
use crate::connectors::{Api, LookupOutcome};

/// Compute virtual machines (reference C1).
pub const VM_API_VERSION: &str = "2025-04-01";
/// Managed disks and snapshots (reference C1, C2).
pub const DISK_API_VERSION: &str = "2025-01-02";
/// `Microsoft.Resources`: subscriptions, resource groups and the providers endpoint itself.
/// Other types riposte has no entry for are never guessed: see [`resolve_api_version`].
pub const RESOURCES_API_VERSION: &str = "2021-04-01";
/// Role assignments (reference C5).
pub const ROLE_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";
/// Management locks (reference C6).
pub const LOCKS_API_VERSION: &str = "2020-05-01";

pub const VM_TYPE: &str = "Microsoft.Compute/virtualMachines";
pub const DISK_TYPE: &str = "Microsoft.Compute/disks";
pub const SNAPSHOT_TYPE: &str = "Microsoft.Compute/snapshots";

/// Parses the step's `resource`: an ARM id is required (a bare name cannot be resolved
/// without guessing its subscription and group).
pub fn parse_resource(id: &str) -> Result<ArmId, ActionError> {
    ArmId::parse(id).ok_or_else(|| {
        ActionError::Params(format!(
            "`{id}` is not an ARM resource id (expected /subscriptions/{{sub}}/resourceGroups/{{rg}}/providers/…)"
        ))
    })
}

/// The API version riposte knows for a resource type, compared case-insensitively as ARM
/// compares types.
pub fn known_api_version(id: &ArmId) -> Option<&'static str> {
    if id.is_type(VM_TYPE) {
        Some(VM_API_VERSION)
    } else if id.is_type(DISK_TYPE) || id.is_type(SNAPSHOT_TYPE) {
        Some(DISK_API_VERSION)
    } else if id.namespace.is_none() {
        // A subscription or resource group.
        Some(RESOURCES_API_VERSION)
    } else {
        None
    }
}

/// Stable API versions per subscription, provider namespace and resource type, as the
/// providers endpoint published them; read once per process (a provider adds versions, it
/// does not withdraw the one riposte picked while it runs).
type VersionCache = Mutex<HashMap<(String, String, String), HashMap<String, Option<String>>>>;

fn version_cache() -> &'static VersionCache {
    static CACHE: OnceLock<VersionCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The newest API version in `versions` without a suffix (`-preview`, `-beta`): ARM versions
/// are dates, so the newest sorts last.
pub fn newest_stable(versions: &[Value]) -> Option<String> {
    versions
        .iter()
        .filter_map(Value::as_str)
        .filter(|v| v.len() == 10 && check_api_version(v).is_ok())
        .max()
        .map(str::to_string)
}

/// The API version to read `arm` with: the step's `given` one, riposte's own table entry, or
/// else the newest stable version the resource provider publishes for the type, read from
/// `GET {arm}/subscriptions/{sub}/providers/{namespace}?api-version=2021-04-01` (Resource
/// Providers - Get) and cached per subscription and namespace. Without credentials the version
/// is a placeholder, so the step cannot run until it is planned with them: riposte never
/// guesses a version.
pub async fn resolve_api_version(
    ctx: &PlanContext<'_>,
    arm: &ArmId,
    given: Option<&str>,
) -> Result<String, ActionError> {
    if let Some(v) = given {
        return Ok(v.to_string());
    }
    if let Some(v) = known_api_version(arm) {
        return Ok(v.to_string());
    }
    let (Some(sub), Some(namespace)) = (&arm.subscription_id, &arm.namespace) else {
        return Err(ActionError::Params(
            "the resource id names no subscription or provider: set `api_version`".into(),
        ));
    };
    let kind: Vec<&str> = arm.types.iter().map(|(t, _)| t.as_str()).collect();
    let kind = kind.join("/");
    let key = (
        ctx.endpoints.arm.to_ascii_lowercase(),
        sub.to_ascii_lowercase(),
        namespace.to_ascii_lowercase(),
    );
    let cached = version_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    let published = match cached {
        Some(types) => types,
        None => {
            let url = format!(
                "{}/subscriptions/{}/providers/{}?api-version={RESOURCES_API_VERSION}",
                ctx.endpoints.arm,
                encode::segment(sub),
                encode::segment(namespace)
            );
            let provider = match ctx.lookup.get(Api::Arm, &url).await? {
                LookupOutcome::Found(v) => v,
                LookupOutcome::NotFound => {
                    return Err(ActionError::Refused(format!(
                        "resource provider `{namespace}` is not known in subscription `{sub}`; register it, or set `api_version`"
                    )));
                }
                LookupOutcome::Unavailable => {
                    return Ok(unknown::placeholder(&format!(
                        "API version of {namespace}/{kind}, read from its resource provider"
                    )));
                }
            };
            let types: HashMap<String, Option<String>> = provider["resourceTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let name = t["resourceType"].as_str()?.to_ascii_lowercase();
                    let versions = t["apiVersions"].as_array().map(Vec::as_slice)?;
                    Some((name, newest_stable(versions)))
                })
                .collect();
            version_cache()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, types.clone());
            types
        }
    };
    match published.get(&kind.to_ascii_lowercase()) {
        Some(Some(version)) => Ok(version.clone()),
        Some(None) => Err(ActionError::Refused(format!(
            "`{namespace}/{kind}` has only preview API versions; set `api_version` to the one to use"
        ))),
        None => Err(ActionError::Refused(format!(
            "resource provider `{namespace}` publishes no resource type `{kind}`; check the resource id, or set `api_version`"
        ))),
    }
}

/// Checks an `api_version` parameter: `YYYY-MM-DD` with an optional `-preview` style suffix.
pub fn check_api_version(v: &str) -> Result<(), ActionError> {
    let bad = || {
        ActionError::Params(format!(
            "api_version `{v}` is not an ARM API version (e.g. 2021-04-01 or 2024-01-01-preview)"
        ))
    };
    if !v.is_ascii() {
        return Err(bad());
    }
    let (date, suffix) = v.split_at(v.len().min(10));
    let date_ok = date.len() == 10
        && date.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let suffix_ok = suffix.is_empty()
        || (suffix.starts_with('-')
            && suffix.len() > 1
            && suffix[1..].chars().all(|c| c.is_ascii_alphanumeric()));
    if date_ok && suffix_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `{arm}{id}?api-version={v}`, the id's segments encoded.
pub fn resource_url(arm: &str, id: &str, api_version: &str) -> String {
    format!(
        "{arm}{}?api-version={}",
        encode::arm_path(id),
        encode::query_value(api_version)
    )
}

/// Reads a resource's ARM JSON. `Ok(None)`: no credentials. A missing resource is refused,
/// since every ARM action needs it to exist.
pub async fn lookup_resource(
    ctx: &PlanContext<'_>,
    id: &str,
    api_version: &str,
) -> Result<Option<Value>, ActionError> {
    if unknown::is_placeholder(id) {
        return Ok(None);
    }
    let url = resource_url(&ctx.endpoints.arm, id, api_version);
    match ctx.lookup.get(Api::Arm, &url).await? {
        LookupOutcome::Found(v) => Ok(Some(v)),
        LookupOutcome::NotFound => Err(ActionError::Refused(format!(
            "resource `{id}` does not exist"
        ))),
        LookupOutcome::Unavailable => Ok(None),
    }
}

/// A managed disk attached to a VM.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachedDisk {
    pub id: String,
    pub name: String,
    /// `None` for the OS disk.
    pub lun: Option<i64>,
    pub os: bool,
}

impl AttachedDisk {
    pub fn to_json(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "lun": self.lun, "os": self.os })
    }
}

/// The managed disks of a VM's `storageProfile`, OS disk first. The second list names disks
/// that have no managed-disk id (unmanaged VHDs), which riposte cannot snapshot.
pub fn vm_disks(vm: &Value) -> (Vec<AttachedDisk>, Vec<String>) {
    let profile = &vm["properties"]["storageProfile"];
    let mut disks = Vec::new();
    let mut unmanaged = Vec::new();
    let os = std::iter::once((&profile["osDisk"], true));
    let data = profile["dataDisks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| (d, false));
    for (disk, is_os) in os.chain(data) {
        if disk.is_null() {
            continue;
        }
        let id = disk["managedDisk"]["id"].as_str();
        let name = disk["name"]
            .as_str()
            .map(str::to_string)
            .or_else(|| id.and_then(ArmId::parse).and_then(|a| a.name()));
        match (id, name) {
            (Some(id), Some(name)) => disks.push(AttachedDisk {
                id: id.to_string(),
                name,
                lun: if is_os { None } else { disk["lun"].as_i64() },
                os: is_os,
            }),
            (_, name) => unmanaged.push(name.unwrap_or_else(|| "(unnamed)".into())),
        }
    }
    (disks, unmanaged)
}

/// A short key for names riposte gives resources (snapshots, locks), taken from the *end*
/// of the run id: run ids are UUID v7, whose first 8 hex digits are a timestamp shared by
/// every run started in the same minute, while the last ones are random. The full run id is
/// in the tags and notes.
pub fn run_key(run_id: &str) -> String {
    let alnum: Vec<char> = run_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if alnum.is_empty() {
        return hex::encode(Sha256::digest(run_id.as_bytes()))[..8].to_string();
    }
    alnum[alnum.len().saturating_sub(8)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::*;

    #[test]
    fn run_key_uses_the_random_end_of_a_uuid_v7() {
        assert_eq!(run_key(RUN_ID), "3c4d5e6f");
        assert_eq!(run_key("r-1"), "r1");
        assert_eq!(run_key("---").len(), 8);
    }

    #[test]
    fn api_versions() {
        assert!(check_api_version("2021-04-01").is_ok());
        assert!(check_api_version("2024-01-01-preview").is_ok());
        assert!(check_api_version("2021-04-01&x=1").is_err());
        assert!(check_api_version("latest").is_err());
        assert!(check_api_version("").is_err());
        assert!(check_api_version("2021-04-0é").is_err());
        let vm = parse_resource(&VM_ID.to_lowercase()).unwrap();
        assert_eq!(known_api_version(&vm), Some(VM_API_VERSION));
        let kv = parse_resource(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/kv",
        )
        .unwrap();
        assert_eq!(known_api_version(&kv), None);
    }

    #[test]
    fn the_newest_stable_version_wins() {
        let versions = json!([
            "2023-07-01",
            "2024-12-01-preview",
            "2024-11-01",
            "2022-07-01"
        ]);
        assert_eq!(
            newest_stable(versions.as_array().unwrap()).as_deref(),
            Some("2024-11-01")
        );
        let previews = json!(["2024-12-01-preview"]);
        assert_eq!(newest_stable(previews.as_array().unwrap()), None);
    }

    fn provider(namespace: &str) -> Value {
        json!({"id": format!("/subscriptions/{SUB}/providers/{namespace}"), "namespace": namespace,
            "registrationState": "Registered", "resourceTypes": [
                {"resourceType": "vaults", "apiVersions": ["2024-12-01-preview", "2024-11-01", "2023-07-01"]},
                {"resourceType": "vaults/secrets", "apiVersions": ["2023-07-01"]},
                {"resourceType": "managedHSMs", "apiVersions": ["2025-01-01-preview"]}]})
    }

    #[tokio::test]
    async fn unknown_types_ask_their_provider_once() {
        // A namespace of its own: the cache is per process.
        let namespace = "Riposte.TestProviderOnce";
        let providers =
            format!("{ARM}/subscriptions/{SUB}/providers/{namespace}?api-version=2021-04-01");
        let env = TestEnv::new(FakeLookup::strict().found(providers.clone(), provider(namespace)));
        let ctx = env.ctx();
        let id = |t: &str| {
            parse_resource(&format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/{namespace}/{t}"
            ))
            .unwrap()
        };
        let vault = id("Vaults/kv1");
        assert_eq!(
            resolve_api_version(&ctx, &vault, None).await.unwrap(),
            "2024-11-01"
        );
        let secret = id("vaults/kv1/secrets/s1");
        assert_eq!(
            resolve_api_version(&ctx, &secret, None).await.unwrap(),
            "2023-07-01"
        );
        assert!(matches!(
            resolve_api_version(&ctx, &id("managedHSMs/h"), None).await,
            Err(ActionError::Refused(m)) if m.contains("preview")
        ));
        assert!(matches!(
            resolve_api_version(&ctx, &id("nothing/x"), None).await,
            Err(ActionError::Refused(_))
        ));
        assert_eq!(env.lookup.calls(), vec![providers]);
        // The step's own version and riposte's table need no lookup.
        assert_eq!(
            resolve_api_version(&ctx, &vault, Some("2023-02-01"))
                .await
                .unwrap(),
            "2023-02-01"
        );
        let vm = parse_resource(VM_ID).unwrap();
        assert_eq!(
            resolve_api_version(&ctx, &vm, None).await.unwrap(),
            VM_API_VERSION
        );
        assert_eq!(env.lookup.calls().len(), 1);
    }

    #[tokio::test]
    async fn without_credentials_the_version_is_unknown_not_guessed() {
        let env = TestEnv::offline();
        let kv = parse_resource(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Riposte.TestOffline/vaults/kv"
        ))
        .unwrap();
        let v = resolve_api_version(&env.ctx(), &kv, None).await.unwrap();
        assert!(unknown::is_placeholder(&v), "{v}");
    }

    #[test]
    fn vm_disks_lists_os_then_data_and_skips_unmanaged() {
        let vm = json!({ "properties": { "storageProfile": {
            "osDisk": { "name": "os", "managedDisk": { "id": OS_DISK_ID } },
            "dataDisks": [
                { "lun": 0, "name": "vm-web-01_data_0", "managedDisk": { "id": DATA_DISK_ID } },
                { "lun": 1, "name": "legacy", "vhd": { "uri": "https://x/y.vhd" } }
            ]
        } } });
        let (disks, unmanaged) = vm_disks(&vm);
        assert_eq!(disks.len(), 2);
        assert!(disks[0].os && disks[0].lun.is_none());
        assert_eq!(disks[1].lun, Some(0));
        assert_eq!(unmanaged, vec!["legacy".to_string()]);
    }
}
