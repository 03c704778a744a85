//! Microsoft.Compute: VMs and disks (read-only), snapshots (create as a long-running operation,
//! read, delete) and the operation-status endpoint clients poll.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{error, error_with_target, is_within, not_found, scope_exists};
use crate::Shared;
use crate::http::{self, Req};
use crate::state::{Operation, Snapshot, State};
use crate::tenant;

fn disk_id(subscription: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/disks/{name}"
    )
}

fn find_disk<'a>(
    state: &'a State,
    subscription: &str,
    rg: &str,
    name: &str,
) -> Option<&'a tenant::Disk> {
    state.azure.disks.iter().find(|d| {
        d.subscription.eq_ignore_ascii_case(subscription)
            && d.resource_group.eq_ignore_ascii_case(rg)
            && d.name.eq_ignore_ascii_case(name)
    })
}

/// A VM as `GET …/virtualMachines/{vm}` returns it.
pub fn vm_json(state: &State, vm: &tenant::VirtualMachine) -> (String, Value) {
    let id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
        vm.subscription, vm.resource_group, vm.name
    );
    let managed = |name: &str| {
        let disk = find_disk(state, &vm.subscription, &vm.resource_group, name);
        json!({
            "storageAccountType": disk.map(|d| d.sku.as_str()).unwrap_or("Premium_LRS"),
            "id": disk_id(&vm.subscription, &vm.resource_group, name),
        })
    };
    let size = |name: &str| {
        find_disk(state, &vm.subscription, &vm.resource_group, name).map(|d| d.size_gb)
    };
    let data_disks: Vec<Value> = vm
        .data_disks
        .iter()
        .enumerate()
        .map(|(lun, name)| {
            json!({
                "lun": lun, "name": name, "createOption": "Attach", "caching": "None",
                "managedDisk": managed(name), "diskSizeGB": size(name),
                "toBeDetached": false, "deleteOption": "Detach",
            })
        })
        .collect();
    let body = json!({
        "name": vm.name,
        "id": id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": vm.tags,
        "etag": "\"1\"",
        "properties": {
            "vmId": vm.vm_id,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "storageProfile": {
                "osDisk": {
                    "osType": vm.os_type, "name": vm.os_disk, "createOption": "FromImage",
                    "caching": "ReadWrite", "managedDisk": managed(&vm.os_disk),
                    "deleteOption": "Detach", "diskSizeGB": size(&vm.os_disk),
                },
                "dataDisks": data_disks,
                "diskControllerType": "SCSI",
            },
            "provisioningState": "Succeeded",
            "timeCreated": "2026-01-10T08:00:00.0000000+00:00",
        },
    });
    (id, body)
}

/// A managed disk as `GET …/disks/{disk}` returns it.
pub fn disk_json(disk: &tenant::Disk) -> (String, Value) {
    let id = disk_id(&disk.subscription, &disk.resource_group, &disk.name);
    let mut properties = json!({
        "creationData": {"createOption": if disk.os_type.is_some() { "FromImage" } else { "Empty" }},
        "diskSizeGB": disk.size_gb,
        "diskSizeBytes": disk.size_gb * 1024 * 1024 * 1024,
        "uniqueId": disk.unique_id,
        "provisioningState": "Succeeded",
        "diskState": if disk.managed_by.is_some() { "Attached" } else { "Unattached" },
        "timeCreated": "2026-01-10T08:00:00.0000000+00:00",
    });
    if let Some(os) = &disk.os_type {
        properties["osType"] = json!(os);
    }
    let body = json!({
        "name": disk.name,
        "id": id,
        "type": "Microsoft.Compute/disks",
        "location": disk.location,
        "managedBy": disk.managed_by,
        "sku": {"name": disk.sku, "tier": if disk.sku.starts_with("Premium") { "Premium" } else { "Standard" }},
        "properties": properties,
    });
    (id, body)
}

fn same_region(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace(' ', "").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// A lock at or above `id` that forbids the change (any lock for deletes, ReadOnly for writes).
fn blocking_lock(state: &State, id: &str, delete: bool) -> Option<String> {
    state
        .locks
        .iter()
        .find(|l| is_within(id, &l.scope) && (delete || l.level.eq_ignore_ascii_case("ReadOnly")))
        .map(|l| l.scope.clone())
}

fn scope_locked(id: &str, lock_scope: &str, operation: &str) -> Response<Body> {
    error(
        StatusCode::CONFLICT,
        "ScopeLocked",
        &format!(
            "The scope '{id}' cannot perform {operation} operation because following scope(s) are locked: '{lock_scope}'. Please remove the lock and try again."
        ),
    )
}

/// URLs a client polls for an operation: (`Azure-AsyncOperation`, `Location`).
fn operation_urls(req: &Req, op: &Operation, api_version: &str) -> (String, String) {
    let base = format!(
        "{}/subscriptions/{}/providers/Microsoft.Compute/locations/{}/operations/{}",
        req.ctx.base_url, op.subscription, op.location, op.id
    );
    (
        format!("{base}?p=emulator&api-version={api_version}"),
        format!("{base}?p=emulator&monitor=true&api-version={api_version}"),
    )
}

fn with_lro_headers(
    mut response: Response<Body>,
    req: &Req,
    op: &Operation,
    api_version: &str,
    retry_after: u32,
) -> Response<Body> {
    let (async_op, location) = operation_urls(req, op, api_version);
    http::set_header(&mut response, "azure-asyncoperation", &async_op);
    http::set_header(&mut response, "location", &location);
    http::set_header(&mut response, "retry-after", &retry_after.to_string());
    response
}

/// Counts one observation of the operation creating `resource_id`; marks the snapshot done
/// when it finishes. Returns whether it has finished.
fn observe(state: &mut State, op_index: usize) -> bool {
    let done = state.operations[op_index].observe();
    if done {
        let rid = state.operations[op_index].resource_id.clone();
        if let Some(s) = state
            .snapshots
            .iter_mut()
            .find(|s| s.id.eq_ignore_ascii_case(&rid))
            && s.body["properties"]["provisioningState"] != "Succeeded"
        {
            s.body["properties"]["provisioningState"] = json!("Succeeded");
            s.body["properties"]["snapshotAccessState"] = json!("Available");
        }
    }
    done
}

/// `PUT|GET|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/snapshots/{name}`
pub fn snapshot(
    shared: &Shared,
    req: &Req,
    segments: &[String],
    api_version: &str,
) -> Response<Body> {
    let (sub, rg, name) = (&segments[1], &segments[3], &segments[7]);
    let id = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/snapshots/{name}"
    );
    let mut state = shared.state.lock().expect("state lock");
    let existing = state
        .snapshots
        .iter()
        .position(|s| s.id.eq_ignore_ascii_case(&id));
    match req.method {
        Method::GET => match existing {
            Some(i) => {
                let op = state.snapshots[i].operation_id.clone();
                if let Some(oi) = state.operations.iter().position(|o| o.id == op) {
                    observe(&mut state, oi);
                }
                http::json(StatusCode::OK, &state.snapshots[i].body)
            }
            None => not_found(&state, &id),
        },
        Method::DELETE => {
            let Some(i) = existing else {
                return http::empty(StatusCode::NO_CONTENT);
            };
            if let Some(lock_scope) = blocking_lock(&state, &id, true) {
                return scope_locked(&state.snapshots[i].id.clone(), &lock_scope, "delete");
            }
            state.snapshots.remove(i);
            state.bump("snapshots_deleted");
            http::empty(StatusCode::OK)
        }
        Method::PUT => create(&mut state, req, &id, sub, rg, name, existing, api_version),
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

#[allow(clippy::too_many_arguments)]
fn create(
    state: &mut State,
    req: &Req,
    id: &str,
    sub: &str,
    rg: &str,
    name: &str,
    existing: Option<usize>,
    api_version: &str,
) -> Response<Body> {
    let body = match req.json() {
        Ok(Some(Value::Object(body))) => body,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            );
        }
    };
    if name.is_empty()
        || name.len() > 80
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return error_with_target(
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            &format!(
                "The resource name '{name}' is invalid. It can contain letters, digits, '_', '-' and '.', up to 80 characters."
            ),
            Some(name),
        );
    }
    let rg_id = format!("/subscriptions/{sub}/resourceGroups/{rg}");
    if !scope_exists(state, &rg_id) {
        return not_found(state, &rg_id);
    }
    let Some(location) = body
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "LocationRequired",
            "The location property is required for this definition.",
        );
    };
    let creation = body.get("properties").and_then(|p| p.get("creationData"));
    let Some(create_option) = creation
        .and_then(|c| c.get("createOption"))
        .and_then(Value::as_str)
    else {
        return error_with_target(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "Required parameter 'creationData' is missing (null).",
            Some("snapshot.properties.creationData"),
        );
    };
    let source_id = creation
        .and_then(|c| c.get("sourceResourceId"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let source = state.azure.disks.iter().find(|d| {
        disk_id(&d.subscription, &d.resource_group, &d.name).eq_ignore_ascii_case(&source_id)
    });
    let Some(source) = source.cloned() else {
        return error_with_target(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Resource '{source_id}' was not found."),
            Some("sourceResourceId"),
        );
    };
    if create_option.eq_ignore_ascii_case("Copy") && !same_region(&location, &source.location) {
        return error_with_target(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "The snapshot location '{location}' must match the location '{}' of the source disk '{source_id}'. Use createOption 'CopyStart' to copy across regions.",
                source.location
            ),
            Some("location"),
        );
    }
    if let Some(lock_scope) = blocking_lock(state, id, false) {
        return scope_locked(id, &lock_scope, "write");
    }
    let retry_after = state.behaviour.lro_retry_after;
    if let Some(i) = existing {
        let snapshot = state.snapshots[i].clone();
        if !snapshot.source_id.eq_ignore_ascii_case(&source_id) {
            return error_with_target(
                StatusCode::CONFLICT,
                "PropertyChangeNotAllowed",
                &format!(
                    "Changing property 'sourceResourceId' is not allowed for existing snapshot '{name}'."
                ),
                Some("sourceResourceId"),
            );
        }
        let op = state
            .operations
            .iter()
            .find(|o| o.id == snapshot.operation_id)
            .cloned();
        return match op {
            Some(op) if op.end_time.is_none() && op.polls_left > 0 => with_lro_headers(
                http::json(StatusCode::ACCEPTED, &snapshot.body),
                req,
                &op,
                api_version,
                retry_after,
            ),
            _ => http::json(StatusCode::OK, &snapshot.body),
        };
    }
    let operation = Operation {
        id: http::new_id(),
        subscription: sub.to_owned(),
        location: location.to_ascii_lowercase().replace(' ', ""),
        resource_id: id.to_ascii_lowercase(),
        polls_left: state.behaviour.lro_polls,
        start_time: http::now_rfc3339(),
        end_time: None,
    };
    let incremental = body
        .get("properties")
        .and_then(|p| p.get("incremental"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let sku = body
        .get("sku")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Standard_LRS")
        .to_owned();
    let mut properties = json!({
        "creationData": {
            "createOption": create_option,
            "sourceResourceId": source_id,
            "sourceUniqueId": source.unique_id,
        },
        "diskSizeGB": source.size_gb,
        "diskSizeBytes": source.size_gb * 1024 * 1024 * 1024,
        "incremental": incremental,
        "uniqueId": http::new_id(),
        "provisioningState": if operation.polls_left == 0 { "Succeeded" } else { "Creating" },
        "snapshotAccessState": if operation.polls_left == 0 { "Available" } else { "Pending" },
        "timeCreated": http::now_rfc3339(),
    });
    if let Some(os) = &source.os_type {
        properties["osType"] = json!(os);
    }
    if incremental {
        properties["incrementalSnapshotFamilyId"] = json!(http::new_id());
    }
    let snapshot_body = json!({
        "name": name,
        "id": id,
        "type": "Microsoft.Compute/snapshots",
        "location": location,
        "tags": body.get("tags").cloned().unwrap_or_else(|| json!({})),
        "sku": {"name": sku, "tier": if sku.starts_with("Premium") { "Premium" } else { "Standard" }},
        "properties": properties,
    });
    state.snapshots.push(Snapshot {
        id: id.to_owned(),
        source_id,
        body: snapshot_body.clone(),
        operation_id: operation.id.clone(),
    });
    state.operations.push(operation.clone());
    state.bump("snapshots_created");
    with_lro_headers(
        http::json(StatusCode::ACCEPTED, &snapshot_body),
        req,
        &operation,
        api_version,
        retry_after,
    )
}

/// `GET /subscriptions/{sub}/providers/Microsoft.Compute/locations/{region}/operations/{id}`:
/// the `Azure-AsyncOperation` status, or with `monitor=true` the `Location` protocol
/// (202 while running, then 200 with the resource).
pub fn operation(shared: &Shared, req: &Req, op_id: &str, api_version: &str) -> Response<Body> {
    let mut state = shared.state.lock().expect("state lock");
    let Some(index) = state
        .operations
        .iter()
        .position(|o| o.id.eq_ignore_ascii_case(op_id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            &format!("The operation '{op_id}' could not be found."),
        );
    };
    let done = observe(&mut state, index);
    let op = state.operations[index].clone();
    let resource = state
        .snapshots
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&op.resource_id))
        .map(|s| s.body.clone());
    let retry_after = state.behaviour.lro_retry_after;
    drop(state);
    let monitor = req
        .query_param("monitor")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"));
    if monitor {
        return if done {
            http::json(StatusCode::OK, &resource.unwrap_or(Value::Null))
        } else {
            with_lro_headers(
                http::empty(StatusCode::ACCEPTED),
                req,
                &op,
                api_version,
                retry_after,
            )
        };
    }
    let mut body = json!({
        "name": op.id,
        "status": if done { "Succeeded" } else { "InProgress" },
        "startTime": op.start_time,
    });
    if done {
        body["endTime"] = json!(op.end_time);
        body["properties"] = json!({"output": resource});
        http::json(StatusCode::OK, &body)
    } else {
        let mut response = http::json(StatusCode::OK, &body);
        http::set_header(&mut response, "retry-after", &retry_after.to_string());
        response
    }
}
