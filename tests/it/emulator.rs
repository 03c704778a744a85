//! The emulator against real HTTP clients: one test per behaviour the rest of riposte relies
//! on, plus contract tests that walk Microsoft's spec subset in `tests/fixtures/contract/`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, Method, Response, StatusCode};
use riposte_emulator::{Emulator, EmulatorHandle, Tenant};
use serde_json::{Value, json};
use sha1::Digest as _;

const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
const CLIENT: &str = "c0ffee00-1111-4222-8333-444455556666";
const SUB: &str = "b1c2d3e4-0000-4a5b-8c6d-000000000001";
const ALEX: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
const LEE: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000004";
const GRADY: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000005";
const MFA_GROUP: &str = "9f0c7e3a-1d2b-4c5e-8f6a-000000000101";
const WORKSPACE: &str = "5c9e2a71-3f4b-4d8e-a6c1-000000000201";
const GRAPH: &str = "https://graph.microsoft.com/.default";
const ARM: &str = "https://management.azure.com/.default";
const LOG_ANALYTICS: &str = "https://api.loganalytics.io/.default";
const FIXTURE: &str = include_str!("../fixtures/tenant.yaml");

fn vm() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"
    )
}
fn disk(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/disks/{name}")
}
fn snapshot(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/snapshots/{name}"
    )
}

struct Env {
    emulator: EmulatorHandle,
    http: Client,
    base: String,
}

impl Env {
    async fn start() -> Env {
        Env::with(Tenant::default_fixture()).await
    }

    async fn with(tenant: Tenant) -> Env {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), tenant).unwrap();
        let base = emulator.base_url();
        Env {
            emulator,
            http: Client::new(),
            base,
        }
    }

    async fn stop(self) {
        self.emulator.shutdown().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn token_response(&self, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(&format!("/{TENANT}/oauth2/v2.0/token")))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, scope: &str) -> String {
        let response = self
            .token_response(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", "emulator-secret"),
                ("scope", scope),
            ])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(&self, method: Method, path: &str, scope: &str, body: Option<Value>) -> Response {
        let token = self.token(scope).await;
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn graph(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call(method, &format!("/v1.0{path}"), GRAPH, body)
            .await
    }

    /// A Graph GET with `ConsistencyLevel: eventual`, as advanced queries need.
    async fn advanced_query(&self, path: &str) -> Response {
        let token = self.token(GRAPH).await;
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap()
    }

    async fn arm(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call(method, path, ARM, body).await
    }
}

async fn json_of(response: Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

// ------------------------------------------------------------------------------------------
// Graph

#[tokio::test]
async fn user_get_applies_select_semantics() {
    let env = Env::start().await;
    let default = json_of(
        env.graph(Method::GET, &format!("/users/{ALEX}"), None)
            .await,
    )
    .await;
    let mut expected = vec![
        "@odata.context",
        "businessPhones",
        "displayName",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    ];
    expected.sort();
    assert_eq!(keys(&default), expected);
    assert!(default.get("accountEnabled").is_none());

    let selected = env
        .graph(
            Method::GET,
            "/users/alex.wilber@contoso.com?$select=accountEnabled,onPremisesSyncEnabled",
            None,
        )
        .await;
    let selected = json_of(selected).await;
    assert_eq!(
        keys(&selected),
        [
            "@odata.context",
            "accountEnabled",
            "id",
            "onPremisesSyncEnabled"
        ]
    );
    assert_eq!(selected["accountEnabled"], true);

    let guest = env
        .graph(
            Method::GET,
            "/users/AdeleVance_fabrikam.com%23EXT%23@contoso.onmicrosoft.com?$select=userType",
            None,
        )
        .await;
    assert_eq!(json_of(guest).await["userType"], "Guest");
    let apostrophe = env
        .graph(Method::GET, "/users('megan.o''brien@contoso.com')", None)
        .await;
    assert_eq!(
        json_of(apostrophe).await["id"],
        "a1e7d1c2-5b3f-4c8e-9d21-000000000003"
    );

    let unknown = env
        .graph(Method::GET, &format!("/users/{ALEX}?$select=nope"), None)
        .await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        json_of(unknown).await["error"]["code"],
        "Request_BadRequest"
    );
    env.stop().await;
}

#[tokio::test]
async fn patch_answers_204_without_body_and_revoke_answers_200_with_value() {
    let env = Env::start().await;
    let patch = env
        .graph(
            Method::PATCH,
            &format!("/users/{ALEX}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(patch.status(), 204);
    assert!(patch.bytes().await.unwrap().is_empty());
    let user = env
        .graph(
            Method::GET,
            &format!("/users/{ALEX}?$select=accountEnabled,signInSessionsValidFromDateTime"),
            None,
        )
        .await;
    let user = json_of(user).await;
    assert_eq!(user["accountEnabled"], false);

    let revoke = env
        .graph(
            Method::POST,
            &format!("/users/{ALEX}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let body = json_of(revoke).await;
    assert_eq!(body["value"], true);
    assert_eq!(
        body["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean"
    );
    let qualified = env
        .graph(
            Method::POST,
            &format!("/users/{ALEX}/microsoft.graph.revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(qualified.status(), 200);
    let after = env
        .graph(
            Method::GET,
            &format!("/users/{ALEX}?$select=signInSessionsValidFromDateTime"),
            None,
        )
        .await;
    assert_ne!(
        json_of(after).await["signInSessionsValidFromDateTime"],
        user["signInSessionsValidFromDateTime"]
    );
    let state = env.emulator.state();
    assert_eq!(state.counter("user_disabled"), 1);
    assert_eq!(state.counter("sessions_revoked"), 2);
    env.stop().await;
}

#[tokio::test]
async fn adding_an_existing_member_is_a_400_and_unknown_objects_404() {
    let env = Env::start().await;
    let reference = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    let path = format!("/groups/{MFA_GROUP}/members/$ref");
    let added = env.graph(Method::POST, &path, Some(reference(ALEX))).await;
    assert_eq!(added.status(), 204);
    let again = env.graph(Method::POST, &path, Some(reference(ALEX))).await;
    assert_eq!(again.status(), 400);
    let error = json_of(again).await;
    assert_eq!(error["error"]["code"], "Request_BadRequest");
    assert_eq!(
        error["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let unknown = env
        .graph(
            Method::POST,
            &path,
            Some(reference("00000000-0000-4000-8000-000000000999")),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let members = json_of(
        env.graph(Method::GET, &format!("/groups/{MFA_GROUP}/members"), None)
            .await,
    )
    .await;
    assert_eq!(members["value"].as_array().unwrap().len(), 2);
    let removed = env
        .graph(
            Method::DELETE,
            &format!("/groups/{MFA_GROUP}/members/{ALEX}/$ref"),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(env.emulator.state().counter("group_member_added"), 1);
    assert_eq!(env.emulator.state().counter("group_member_removed"), 1);
    env.stop().await;
}

#[tokio::test]
async fn synced_users_refuse_password_profile_changes() {
    let env = Env::start().await;
    let response = env
        .graph(
            Method::PATCH,
            &format!("/users/{LEE}"),
            Some(json!({"passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "N3w-Passw0rd!"}})),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error = json_of(response).await;
    assert_eq!(error["error"]["code"], "Request_BadRequest");
    assert_eq!(
        error["error"]["message"],
        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
    );
    // Disabling a synced user in the cloud is allowed.
    let disable = env
        .graph(
            Method::PATCH,
            &format!("/users/{LEE}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(disable.status(), 204);
    env.stop().await;
}

#[tokio::test]
async fn admins_cannot_be_disabled_without_a_privileged_role() {
    let env = Env::start().await;
    let response = env
        .graph(
            Method::PATCH,
            &format!("/users/{GRADY}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        json_of(response).await["error"]["code"],
        "Authorization_RequestDenied"
    );
    let roles = env
        .advanced_query(&format!(
            "/v1.0/users/{GRADY}/transitiveMemberOf/microsoft.graph.directoryRole?$count=true"
        ))
        .await;
    let roles = json_of(roles).await;
    assert_eq!(
        roles["value"][0]["roleTemplateId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    env.stop().await;
}

#[tokio::test]
async fn odata_casts_need_consistency_level_and_count() {
    let env = Env::start().await;
    let path = format!("/users/{GRADY}/transitiveMemberOf/microsoft.graph.directoryRole");
    let sp =
        format!("/servicePrincipals/{CLIENT}/transitiveMemberOf/microsoft.graph.directoryRole");
    for cast in [&path, &sp] {
        // Neither, only the header, only `$count=true`: Graph refuses all three.
        let plain = env.graph(Method::GET, cast, None).await;
        let header_only = env.advanced_query(&format!("/v1.0{cast}")).await;
        let count_only = env
            .graph(Method::GET, &format!("{cast}?$count=true"), None)
            .await;
        for response in [plain, header_only, count_only] {
            assert_eq!(response.status(), 400);
            let body = json_of(response).await;
            assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
            assert!(body["error"]["innerError"]["request-id"].is_string());
        }
        let both = env
            .advanced_query(&format!("/v1.0{cast}?$count=true"))
            .await;
        assert_eq!(both.status(), 200);
        let body = json_of(both).await;
        assert_eq!(
            body["@odata.count"],
            body["value"].as_array().unwrap().len()
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn batch_runs_dependencies_and_fails_dependents_with_424() {
    let env = Env::start().await;
    let batch = json!({"requests": [
        {"id": "1", "method": "PATCH", "url": format!("/users/{ALEX}"),
         "headers": {"Content-Type": "application/json"}, "body": {"accountEnabled": false}},
        {"id": "2", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "3", "method": "POST", "url": "/users/nobody@contoso.com/revokeSignInSessions",
         "headers": {"Content-Type": "application/json"}, "body": {}, "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": format!("/users/{ALEX}?$select=accountEnabled"), "dependsOn": ["1"]},
    ]});
    let response = env.graph(Method::POST, "/$batch", Some(batch)).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let by_id = |id: &str| {
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 204);
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(
        by_id("2")["body"]["error"]["code"],
        "Request_ResourceNotFound"
    );
    assert_eq!(by_id("3")["status"], 424);
    assert_eq!(by_id("4")["status"], 200);
    assert_eq!(by_id("4")["body"]["accountEnabled"], false);

    let duplicate = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]});
    assert_eq!(
        env.graph(Method::POST, "/$batch", Some(duplicate))
            .await
            .status(),
        400
    );
    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_eq!(
        env.graph(Method::POST, "/$batch", Some(json!({"requests": too_many})))
            .await
            .status(),
        400
    );
    let inner: Vec<_> = env
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.batch_of.is_some())
        .collect();
    assert_eq!(inner.len(), 3);
    env.stop().await;
}

// ------------------------------------------------------------------------------------------
// ARM

async fn put_snapshot(env: &Env, name: &str, location: &str) -> Response {
    env.arm(
        Method::PUT,
        &format!("{}?api-version=2025-01-02", snapshot(name)),
        Some(json!({
            "location": location,
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk("vm-web-01_OsDisk_1")}, "incremental": true},
        })),
    )
    .await
}

#[tokio::test]
async fn snapshot_completes_through_azure_async_operation_polling() {
    let env = Env::start().await;
    let created = put_snapshot(&env, "snap-1", "westeurope").await;
    assert_eq!(created.status(), 202);
    let async_url = created.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(created.headers().contains_key("location"));
    assert_eq!(created.headers()["retry-after"], "0");
    assert!(async_url.contains(&format!(
        "/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/"
    )));
    let body = json_of(created).await;
    assert_eq!(body["properties"]["provisioningState"], "Creating");

    let token = env.token(ARM).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let status = json_of(
            env.http
                .get(&async_url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        statuses.push(status["status"].as_str().unwrap().to_owned());
        if status["status"] == "Succeeded" {
            break;
        }
    }
    assert_eq!(statuses, ["InProgress", "InProgress", "Succeeded"]);
    let got = json_of(
        env.arm(
            Method::GET,
            &format!("{}?api-version=2025-01-02", snapshot("snap-1")),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(got["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        got["properties"]["creationData"]["sourceResourceId"],
        disk("vm-web-01_OsDisk_1")
    );

    let again = put_snapshot(&env, "snap-1", "westeurope").await;
    assert_eq!(again.status(), 200);
    assert_eq!(env.emulator.state().counter("snapshots_created"), 1);
    env.stop().await;
}

#[tokio::test]
async fn snapshot_completes_through_location_polling_and_locks_block_delete() {
    let env = Env::start().await;
    let created = put_snapshot(&env, "snap-2", "westeurope").await;
    assert_eq!(created.status(), 202);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let token = env.token(ARM).await;
    let mut codes = Vec::new();
    let mut last = Value::Null;
    for _ in 0..10 {
        let poll = env
            .http
            .get(&location)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        codes.push(poll.status().as_u16());
        if poll.status() == 200 {
            last = json_of(poll).await;
            break;
        }
    }
    assert_eq!(codes, [202, 202, 200]);
    assert_eq!(last["id"], snapshot("snap-2"));

    let wrong_region = put_snapshot(&env, "snap-3", "eastus").await;
    assert_eq!(wrong_region.status(), 400);

    let lock = format!(
        "{}/providers/Microsoft.Authorization/locks/evidence?api-version=2020-05-01",
        snapshot("snap-2")
    );
    let put = env
        .arm(
            Method::PUT,
            &lock,
            Some(json!({"properties": {"level": "CanNotDelete", "notes": "evidence"}})),
        )
        .await;
    assert_eq!(put.status(), 201);
    let delete = env
        .arm(
            Method::DELETE,
            &format!("{}?api-version=2025-01-02", snapshot("snap-2")),
            None,
        )
        .await;
    assert_eq!(delete.status(), 409);
    assert_eq!(json_of(delete).await["error"]["code"], "ScopeLocked");
    assert_eq!(env.arm(Method::DELETE, &lock, None).await.status(), 200);
    let delete = env
        .arm(
            Method::DELETE,
            &format!("{}?api-version=2025-01-02", snapshot("snap-2")),
            None,
        )
        .await;
    assert_eq!(delete.status(), 200);
    env.stop().await;
}

#[tokio::test]
async fn vm_lists_its_managed_disks() {
    let env = Env::start().await;
    let vm_body = json_of(
        env.arm(
            Method::GET,
            &format!("{}?api-version=2025-04-01", vm()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(vm_body["location"], "westeurope");
    let storage = &vm_body["properties"]["storageProfile"];
    assert_eq!(
        storage["osDisk"]["managedDisk"]["id"],
        disk("vm-web-01_OsDisk_1")
    );
    assert_eq!(
        storage["dataDisks"][0]["managedDisk"]["id"],
        disk("vm-web-01_data_0")
    );
    let d = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2025-01-02", disk("vm-web-01_data_0")),
            None,
        )
        .await;
    assert_eq!(json_of(d).await["location"], "westeurope");
    env.stop().await;
}

#[tokio::test]
async fn role_assignments_page_and_delete_200_then_204() {
    let tenant =
        Tenant::from_yaml_str(&FIXTURE.replace("arm_page_size: 100", "arm_page_size: 2")).unwrap();
    let env = Env::with(tenant).await;
    let list = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{ALEX}'",
        vm()
    );
    let first = json_of(env.arm(Method::GET, &list, None).await).await;
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    let next = first["nextLink"].as_str().unwrap().to_owned();
    let token = env.token(ARM).await;
    let second = json_of(
        env.http
            .get(&next)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(second["value"].as_array().unwrap().len(), 1);
    assert!(second.get("nextLink").is_none());

    let id = first["value"][0]["id"].as_str().unwrap().to_owned();
    let delete = format!("{id}?api-version=2022-04-01");
    let gone = env.arm(Method::DELETE, &delete, None).await;
    assert_eq!(gone.status(), 200);
    assert_eq!(json_of(gone).await["id"], id);
    assert_eq!(env.arm(Method::DELETE, &delete, None).await.status(), 204);
    assert_eq!(env.emulator.state().counter("role_assignments_deleted"), 1);
    env.stop().await;
}

#[tokio::test]
async fn role_assignment_put_creates_once_and_refuses_a_duplicate_grant() {
    let env = Env::start().await;
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg-prod");
    let role = |guid: &str| {
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
    };
    let put = |name: &str| {
        format!(
            "{rg}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
        )
    };
    let body = |guid: &str, principal: &str| {
        json!({"properties": {
            "roleDefinitionId": role(guid), "principalId": principal, "principalType": "User"
        }})
    };
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let name = "7a1b2c3d-0000-4000-8000-000000000001";

    let created = env
        .arm(Method::PUT, &put(name), Some(body(reader, LEE)))
        .await;
    assert_eq!(created.status(), 201);
    let created = json_of(created).await;
    assert_eq!(
        created["id"],
        format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{name}")
    );
    assert_eq!(created["properties"]["roleDefinitionId"], role(reader));
    assert_eq!(created["properties"]["principalId"], LEE);
    assert_eq!(created["properties"]["scope"], rg);

    // The same PUT again is idempotent: 200, no second assignment.
    let again = env
        .arm(Method::PUT, &put(name), Some(body(reader, LEE)))
        .await;
    assert_eq!(again.status(), 200);
    // The same grant under another name is a conflict.
    let duplicate = env
        .arm(
            Method::PUT,
            &put("7a1b2c3d-0000-4000-8000-000000000002"),
            Some(body(reader, LEE)),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    assert_eq!(
        json_of(duplicate).await["error"]["code"],
        "RoleAssignmentExists"
    );
    // The name is taken by a different grant.
    let update = env
        .arm(
            Method::PUT,
            &put(name),
            Some(body("b24988ac-6180-42a0-ab88-20f7382dd24c", LEE)),
        )
        .await;
    assert_eq!(update.status(), 409);
    assert_eq!(
        json_of(update).await["error"]["code"],
        "RoleAssignmentUpdateNotPermitted"
    );
    let bad_name = env
        .arm(Method::PUT, &put("not-a-guid"), Some(body(reader, LEE)))
        .await;
    assert_eq!(bad_name.status(), 400);
    assert_eq!(
        json_of(bad_name).await["error"]["code"],
        "InvalidRoleAssignmentId"
    );
    let nobody = env
        .arm(
            Method::PUT,
            &put("7a1b2c3d-0000-4000-8000-000000000003"),
            Some(body(reader, "00000000-0000-4000-8000-000000000000")),
        )
        .await;
    assert_eq!(nobody.status(), 400);
    assert_eq!(json_of(nobody).await["error"]["code"], "PrincipalNotFound");
    let no_scope = env
        .arm(
            Method::PUT,
            &format!(
                "/subscriptions/{SUB}/resourceGroups/rg-nope/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
            ),
            Some(body(reader, LEE)),
        )
        .await;
    assert_eq!(no_scope.status(), 404);
    assert_eq!(
        json_of(no_scope).await["error"]["code"],
        "ResourceGroupNotFound"
    );

    assert_eq!(env.emulator.state().counter("role_assignments_created"), 1);
    let listed = json_of(
        env.arm(
            Method::GET,
            &format!(
                "{rg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{LEE}'"
            ),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn member_of_lists_direct_groups_with_select() {
    let env = Env::start().await;
    let groups = json_of(
        env.graph(
            Method::GET,
            &format!("/users/{ALEX}/memberOf?$select=id"),
            None,
        )
        .await,
    )
    .await;
    let value = groups["value"].as_array().unwrap();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["id"], "9f0c7e3a-1d2b-4c5e-8f6a-000000000102");
    assert_eq!(value[0]["@odata.type"], "#microsoft.graph.group");
    assert!(value[0].get("displayName").is_none());

    let grady = json_of(
        env.graph(Method::GET, &format!("/users/{GRADY}/memberOf"), None)
            .await,
    )
    .await;
    assert!(
        grady["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == MFA_GROUP && g["displayName"] == "CA-Require-MFA")
    );
    let bad = env
        .graph(
            Method::GET,
            &format!("/users/{ALEX}/memberOf?$select=nope"),
            None,
        )
        .await;
    assert_eq!(bad.status(), 400);
    let missing = env
        .graph(
            Method::GET,
            "/users/00000000-0000-4000-8000-000000000000/memberOf",
            None,
        )
        .await;
    assert_eq!(missing.status(), 404);
    env.stop().await;
}

#[tokio::test]
async fn providers_publish_api_versions_and_reads_must_use_one() {
    let env = Env::start().await;
    for namespace in [
        "Microsoft.Compute",
        "Microsoft.KeyVault",
        "Microsoft.Network",
        "Microsoft.Storage",
        "Microsoft.Authorization",
    ] {
        let response = env
            .arm(
                Method::GET,
                &format!("/subscriptions/{SUB}/providers/{namespace}?api-version=2021-04-01"),
                None,
            )
            .await;
        assert_eq!(response.status(), 200, "{namespace}");
        let body = json_of(response).await;
        assert_eq!(body["namespace"], namespace);
        let types = body["resourceTypes"].as_array().unwrap();
        assert!(
            types.iter().all(|t| t["resourceType"].is_string()
                && !t["apiVersions"].as_array().unwrap().is_empty())
        );
    }
    let unknown = env
        .arm(
            Method::GET,
            &format!("/subscriptions/{SUB}/providers/Contoso.Nothing?api-version=2021-04-01"),
            None,
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        json_of(unknown).await["error"]["code"],
        "InvalidResourceNamespace"
    );
    // A version the provider does not publish for the type is refused before the lookup.
    let guessed = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2021-04-01", vm()),
            None,
        )
        .await;
    assert_eq!(guessed.status(), 400);
    let body = json_of(guessed).await;
    assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2025-04-01")
    );
    let published = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2024-11-01", vm()),
            None,
        )
        .await;
    assert_eq!(published.status(), 200);
    let no_type = env
        .arm(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/widgets/w?api-version=2025-04-01"),
            None,
        )
        .await;
    assert_eq!(no_type.status(), 400);
    assert_eq!(
        json_of(no_type).await["error"]["code"],
        "InvalidResourceType"
    );
    env.stop().await;
}

#[tokio::test]
async fn activity_log_filters_by_time_and_refuses_undocumented_patterns() {
    let env = Env::start().await;
    let list = |filter: &str| {
        format!(
            "/subscriptions/{SUB}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter={}",
            filter.replace(' ', "%20")
        )
    };
    let window =
        "eventTimestamp ge '2026-11-20T00:00:00Z' and eventTimestamp le '2026-11-21T00:00:00Z'";
    let body = json_of(env.arm(Method::GET, &list(window), None).await).await;
    let events = body["value"].as_array().unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e["caller"] == "alex.wilber@contoso.com")
            .count()
            == 3
    );
    let grouped = format!("{window} and resourceGroupName eq 'rg-prod'");
    assert_eq!(
        env.arm(Method::GET, &list(&grouped), None).await.status(),
        200
    );
    // Not among ActivityLogs_List's documented patterns: `caller`, `status`, two scopes.
    for refused in [
        format!("{window} and caller eq 'alex.wilber@contoso.com'"),
        format!("{window} and status eq 'Succeeded'"),
        format!("{window} and resourceGroupName eq 'a' and correlationId eq 'b'"),
    ] {
        let response = env.arm(Method::GET, &list(&refused), None).await;
        assert_eq!(response.status(), 400, "{refused}");
        assert_eq!(json_of(response).await["code"], "BadRequest");
    }
    let missing = env
        .arm(Method::GET, &format!("/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01"), None)
        .await;
    assert_eq!(missing.status(), 400);
    env.stop().await;
}

// ------------------------------------------------------------------------------------------
// Error shapes and tokens

#[tokio::test]
async fn errors_carry_each_apis_shape_and_request_ids() {
    let env = Env::start().await;
    let token = env.token(GRAPH).await;
    let graph = env
        .http
        .get(env.url("/v1.0/users/nobody@contoso.com"))
        .bearer_auth(&token)
        .header("client-request-id", "6a0c2f7e-0000-4000-8000-000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(graph.status(), 404);
    assert_eq!(
        graph.headers()["client-request-id"],
        "6a0c2f7e-0000-4000-8000-000000000001"
    );
    let request_id = graph.headers()["request-id"].to_str().unwrap().to_owned();
    let body = json_of(graph).await;
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "6a0c2f7e-0000-4000-8000-000000000001"
    );
    assert!(body["error"]["innerError"]["date"].is_string());

    let arm_token = env.token(ARM).await;
    let arm = env
        .http
        .get(env.url(&format!("{}?api-version=2025-01-02", snapshot("nope"))))
        .bearer_auth(&arm_token)
        .header("x-ms-client-request-id", "client-1")
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), 404);
    for header in [
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-ratelimit-remaining-subscription-reads",
    ] {
        assert!(arm.headers().contains_key(header), "{header}");
    }
    assert_eq!(arm.headers()["x-ms-client-request-id"], "client-1");
    let body = json_of(arm).await;
    assert_eq!(
        keys(&body["error"]),
        ["additionalInfo", "code", "details", "message", "target"]
    );
    assert_eq!(body["error"]["code"], "ResourceNotFound");

    let no_version = env
        .http
        .get(env.url(&vm()))
        .bearer_auth(&arm_token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);
    assert_eq!(
        json_of(no_version).await["error"]["code"],
        "MissingApiVersionParameter"
    );
    let bad_version = env
        .http
        .get(env.url(&format!("{}?api-version=latest", vm())))
        .bearer_auth(&arm_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(bad_version).await["error"]["code"],
        "InvalidApiVersionParameter"
    );

    let entra = env
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "x"),
            ("scope", "https://graph.microsoft.com/User.Read"),
        ])
        .await;
    assert_eq!(entra.status(), 400);
    let body = json_of(entra).await;
    assert_eq!(
        keys(&body),
        [
            "correlation_id",
            "error",
            "error_codes",
            "error_description",
            "error_uri",
            "timestamp",
            "trace_id"
        ]
    );
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"], json!([70011]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS70011: ")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("\r\nTrace ID: ")
    );
    env.stop().await;
}

#[tokio::test]
async fn tokens_are_bound_to_their_resource_and_lifetime() {
    let env = Env::start().await;
    let graph_token = env.token(GRAPH).await;
    let arm = env
        .http
        .get(env.url(&format!("{}?api-version=2025-04-01", vm())))
        .bearer_auth(&graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), 401);
    assert!(arm.headers().contains_key("www-authenticate"));
    assert_eq!(
        json_of(arm).await["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
    let arm_token = env.token(ARM).await;
    let graph = env
        .http
        .get(env.url(&format!("/v1.0/users/{ALEX}")))
        .bearer_auth(&arm_token)
        .send()
        .await
        .unwrap();
    assert_eq!(graph.status(), 401);
    assert_eq!(
        json_of(graph).await["error"]["code"],
        "InvalidAuthenticationToken"
    );
    let missing = env
        .http
        .get(env.url(&format!("/v1.0/users/{ALEX}")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    env.stop().await;

    let expired = Tenant::from_yaml_str(&FIXTURE.replace(
        "token_lifetime_seconds: 3599",
        "token_lifetime_seconds: -60",
    ))
    .unwrap();
    let env = Env::with(expired).await;
    let token = env.token(ARM).await;
    let response = env
        .http
        .get(env.url(&format!("{}?api-version=2025-04-01", vm())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(response).await["error"]["code"],
        "ExpiredAuthenticationToken"
    );
    env.stop().await;
}

#[tokio::test]
async fn entra_rejects_wrong_secrets_unknown_clients_and_tenants() {
    let env = Env::start().await;
    let wrong = env
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "wrong"),
            ("scope", GRAPH),
        ])
        .await;
    assert_eq!(wrong.status(), 401);
    let body = json_of(wrong).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );

    let unknown = env
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-0000-4000-8000-00000000dead"),
            ("client_secret", "x"),
            ("scope", GRAPH),
        ])
        .await;
    assert_eq!(unknown.status(), 400);
    let body = json_of(unknown).await;
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(body["error_codes"], json!([700016]));

    let two = env
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "emulator-secret"),
            ("scope", &format!("{GRAPH} {ARM}")),
        ])
        .await;
    assert_eq!(json_of(two).await["error_codes"], json!([70011]));

    let tenant = env
        .http
        .post(env.url("/fabrikam.onmicrosoft.com/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "emulator-secret"),
            ("scope", GRAPH),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(tenant).await["error_codes"], json!([90002]));

    let basic = env
        .http
        .post(env.url("/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .basic_auth(CLIENT, Some("emulator-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", GRAPH)])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let token = json_of(basic).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], CLIENT);
    assert!(
        claims["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "User.EnableDisableAccount.All")
    );
    env.stop().await;
}

/// A tenant whose app also holds `cert`; returns the tenant and the certificate's DER.
fn tenant_with_certificate(key: &rcgen::KeyPair) -> (Tenant, Vec<u8>) {
    let cert = rcgen::CertificateParams::new(vec!["riposte".to_owned()])
        .unwrap()
        .self_signed(key)
        .unwrap();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    };
    let yaml = FIXTURE.replace(
        "    secrets: [emulator-secret]\n",
        &format!(
            "    secrets: [emulator-secret]\n    certificates:\n      - certificate_pem: |\n{}        public_key_pem: |\n{}",
            indent(&cert.pem()),
            indent(&key.public_key_pem())
        ),
    );
    (Tenant::from_yaml_str(&yaml).unwrap(), cert.der().to_vec())
}

fn assertion(
    key_pem: &str,
    alg: jsonwebtoken::Algorithm,
    der: &[u8],
    by_sha256: bool,
    aud: &str,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    if by_sha256 {
        header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der)));
    } else {
        header.x5t = Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der)));
    }
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"aud": aud, "iss": CLIENT, "sub": CLIENT, "jti": uuid::Uuid::new_v4().to_string(),
                        "nbf": now, "iat": now, "exp": now + 300});
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn certificate_assertions_are_verified() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let (tenant, der) = tenant_with_certificate(&key);
    let env = Env::with(tenant).await;
    let aud = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token");
    let send = |jwt: String| {
        let env = &env;
        async move {
            env.token_response(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("scope", ARM),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &jwt),
            ])
            .await
        }
    };
    let pem = key.serialize_pem();
    let ps256 = send(assertion(
        &pem,
        jsonwebtoken::Algorithm::PS256,
        &der,
        true,
        &aud,
    ))
    .await;
    assert_eq!(ps256.status(), 200);
    let rs256 = send(assertion(
        &pem,
        jsonwebtoken::Algorithm::RS256,
        &der,
        false,
        &aud,
    ))
    .await;
    assert_eq!(rs256.status(), 200);

    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let forged = send(assertion(
        &other.serialize_pem(),
        jsonwebtoken::Algorithm::PS256,
        &der,
        true,
        &aud,
    ))
    .await;
    assert_eq!(forged.status(), 401);
    let body = json_of(forged).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([700027]));
    let wrong_audience = send(assertion(
        &pem,
        jsonwebtoken::Algorithm::PS256,
        &der,
        true,
        "https://example.com/token",
    ))
    .await;
    assert_eq!(wrong_audience.status(), 401);
    env.stop().await;
}

#[tokio::test]
async fn managed_identity_endpoints_need_their_headers() {
    let env = Env::start().await;
    let imds = env.url("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/");
    let refused = env.http.get(&imds).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(json_of(refused).await["error"], "bad_request_102");
    let ok = json_of(
        env.http
            .get(&imds)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(ok["expires_in"].is_string() && ok["expires_on"].is_string());
    assert_eq!(ok["resource"], "https://management.azure.com/");
    let vm_get = env
        .http
        .get(env.url(&format!("{}?api-version=2025-04-01", vm())))
        .bearer_auth(ok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(vm_get.status(), 200);
    let app_service =
        env.url("/msi/token?api-version=2019-08-01&resource=https://graph.microsoft.com");
    assert_eq!(
        env.http.get(&app_service).send().await.unwrap().status(),
        400
    );
    let ok = env
        .http
        .get(&app_service)
        .header("X-IDENTITY-HEADER", "emulator-identity-header")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(ok).await["token_type"], "Bearer");
    env.stop().await;
}

// ------------------------------------------------------------------------------------------
// Log Analytics and Lacework

#[tokio::test]
async fn log_analytics_returns_seeded_security_events() {
    let env = Env::start().await;
    let query = json!({"query": "SecurityEvent | where Account has 'alex'", "timespan": "2026-11-20T10:00:00Z/2026-11-20T10:04:00Z"});
    let body = json_of(
        env.call(
            Method::POST,
            &format!("/v1/workspaces/{WORKSPACE}/query"),
            LOG_ANALYTICS,
            Some(query),
        )
        .await,
    )
    .await;
    let table = &body["tables"][0];
    assert_eq!(table["name"], "PrimaryResult");
    assert_eq!(table["columns"][0]["name"], "TimeGenerated");
    assert_eq!(table["rows"].as_array().unwrap().len(), 3);
    // Comment lines before the table, as a saved .kql file has them.
    let commented = env
        .call(
            Method::POST,
            &format!("/v1/workspaces/{WORKSPACE}/query"),
            LOG_ANALYTICS,
            Some(json!({"query": "// rare processes\n// by account\nSecurityEvent\n| take 10"})),
        )
        .await;
    assert_eq!(commented.status(), 200);
    let unknown = env
        .call(
            Method::POST,
            "/v1/workspaces/00000000-0000-4000-8000-000000000000/query",
            LOG_ANALYTICS,
            Some(json!({"query": "SecurityEvent"})),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(json_of(unknown).await["error"]["code"].is_string());
    env.stop().await;
}

#[tokio::test]
async fn lacework_serves_alert_details_with_entity_map() {
    let env = Env::start().await;
    let token = env
        .http
        .post(env.url("/api/v2/access/tokens"))
        .header("X-LW-UAKS", "_emulator-lacework-secret")
        .json(&json!({"keyId": "CONTOSO_1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4", "expiryTime": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 201);
    let token = json_of(token).await["token"].as_str().unwrap().to_owned();
    let details = env
        .http
        .get(env.url("/api/v2/Alerts/51234?scope=Details"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let details = json_of(details).await;
    let activity = &details["data"]["entityMap"]["AzureActivityLog"][0]["PROPS"];
    assert_eq!(activity["caller"], "alex.wilber@contoso.com");
    assert_eq!(activity["clientIpAddress"], "203.0.113.45");
    assert_eq!(activity["resourceId"], vm());
    let list = json_of(
        env.http
            .get(env.url("/api/v2/Alerts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"][0]["alertId"], 51234);
    assert!(list["data"][0].get("entityMap").is_none());
    assert_eq!(
        env.http
            .get(env.url("/api/v2/Alerts"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    env.stop().await;
}

// ------------------------------------------------------------------------------------------
// Control routes and faults

async fn add_fault(env: &Env, fault: Value) {
    let response = env
        .http
        .post(env.url("/_emulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{fault}");
}

#[tokio::test]
async fn throttle_faults_answer_429_in_each_apis_shape_for_count_requests() {
    let env = Env::start().await;
    add_fault(
        &env,
        json!({"route": "GET /v1.0/users/*", "kind": "throttle", "retry_after": 7, "count": 2}),
    )
    .await;
    for _ in 0..2 {
        let throttled = env
            .graph(Method::GET, &format!("/users/{ALEX}"), None)
            .await;
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.headers()["retry-after"], "7");
        assert_eq!(json_of(throttled).await["error"]["code"], "TooManyRequests");
    }
    assert_eq!(
        env.graph(Method::GET, &format!("/users/{ALEX}"), None)
            .await
            .status(),
        200
    );

    add_fault(
        &env,
        json!({"route": "* /subscriptions/*", "kind": "throttle", "count": 1}),
    )
    .await;
    let arm = env
        .arm(
            Method::GET,
            &format!("{}?api-version=2025-04-01", vm()),
            None,
        )
        .await;
    assert_eq!(arm.status(), 429);
    assert!(arm.headers().contains_key("retry-after"));
    assert_eq!(
        json_of(arm).await["error"]["code"],
        "SubscriptionRequestsThrottled"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_delayed_request_is_listed_in_flight_until_it_is_answered() {
    let env = Env::start().await;
    add_fault(
        &env,
        json!({"route": "PATCH /v1.0/users/*", "kind": "latency", "latency_ms": 1500, "count": 1}),
    )
    .await;
    let path = format!("/users/{ALEX}");
    let patch = env.graph(Method::PATCH, &path, Some(json!({"accountEnabled": false})));
    let watch = async {
        // Bounded polling, not a timing assertion: the request shows up while it is held.
        for _ in 0..1000 {
            let in_flight = env.emulator.state().in_flight();
            if let Some(seen) = in_flight.iter().find(|r| r.method == "PATCH") {
                let logged = env.emulator.state().requests();
                assert!(
                    logged.iter().all(|r| r.seq != seen.seq),
                    "not in the log before it is answered"
                );
                return seen.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the delayed PATCH was never listed in flight");
    };
    let (answered, seen) = tokio::join!(patch, watch);
    assert_eq!(answered.status(), 204);
    assert_eq!(seen.path, format!("/v1.0/users/{ALEX}"));
    assert_eq!(seen.body, Some(json!({"accountEnabled": false})));
    assert_eq!(seen.status, None);
    assert!(env.emulator.state().in_flight().is_empty());
    let logged = env.emulator.state().requests();
    let entry = logged.iter().find(|r| r.seq == seen.seq).unwrap();
    assert_eq!(entry.status, Some(204));
    env.stop().await;
}

#[tokio::test]
async fn a_request_whose_client_went_away_is_still_carried_out() {
    let env = Env::start().await;
    add_fault(
        &env,
        json!({"route": "PATCH /v1.0/users/*", "kind": "latency", "latency_ms": 800, "count": 1}),
    )
    .await;
    let token = env.token(GRAPH).await;
    // The client gives up (as a killed process does) while the request is held.
    let impatient = Client::builder()
        .timeout(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = impatient
        .patch(env.url(&format!("/v1.0/users/{ALEX}")))
        .bearer_auth(token)
        .json(&json!({"accountEnabled": false}))
        .send()
        .await;
    assert!(gave_up.is_err(), "{gave_up:?}");
    // Bounded polling for the effect, not a timing assertion.
    for _ in 0..500 {
        if env.emulator.state().counter("user_disabled") == 1 {
            let logged = env.emulator.state().requests();
            let patch = logged.iter().find(|r| r.method == "PATCH").unwrap();
            assert_eq!(patch.status, Some(204));
            env.stop().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the request was dropped with its client");
}

#[tokio::test]
async fn error_and_latency_faults_are_applied_and_logged() {
    let env = Env::start().await;
    add_fault(
        &env,
        json!({"route": "PATCH /v1.0/users/*", "kind": "error", "status": 503, "count": 1}),
    )
    .await;
    add_fault(
        &env,
        json!({"route": "*", "kind": "latency", "latency_ms": 5, "count": null}),
    )
    .await;
    let failed = env
        .graph(
            Method::PATCH,
            &format!("/users/{ALEX}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(failed.status(), 503);
    assert_eq!(
        json_of(failed).await["error"]["code"],
        "ServiceNotAvailable"
    );
    let ok = env
        .graph(
            Method::PATCH,
            &format!("/users/{ALEX}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(ok.status(), 204);
    let log: Vec<Value> = env
        .http
        .get(env.url("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let patches: Vec<&Value> = log.iter().filter(|r| r["method"] == "PATCH").collect();
    assert_eq!(patches[0]["status"], 503);
    assert_eq!(patches[0]["fault"], "error");
    assert_eq!(patches[1]["fault"], "latency");
    assert_eq!(patches[1]["body"], json!({"accountEnabled": false}));
    assert_eq!(
        env.http
            .delete(env.url("/_emulator/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let faults: Vec<Value> = env
        .http
        .get(env.url("/_emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(faults.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn drop_faults_close_the_connection_without_a_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start().await;
    add_fault(
        &env,
        json!({"route": "GET /v1.0/users/*", "kind": "drop", "count": 2}),
    )
    .await;
    let token = env.token(GRAPH).await;
    let result = env
        .http
        .get(env.url(&format!("/v1.0/users/{ALEX}")))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(result.is_err(), "a dropped request must fail: {result:?}");

    let mut stream = tokio::net::TcpStream::connect(env.emulator.addr())
        .await
        .unwrap();
    stream
        .write_all(format!("GET /v1.0/users/{ALEX} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = stream.read_to_end(&mut buffer).await;
    assert!(read.is_err() || buffer.is_empty(), "no bytes may come back");

    let ok = env
        .http
        .get(env.url(&format!("/v1.0/users/{ALEX}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let dropped: Vec<_> = env
        .emulator
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.fault.as_deref() == Some("drop"))
        .collect();
    assert_eq!(dropped.len(), 2);
    assert!(dropped.iter().all(|r| r.status.is_none()));
    env.stop().await;
}

#[tokio::test]
async fn control_routes_show_requests_without_secrets_and_state_counters() {
    let env = Env::start().await;
    env.graph(
        Method::POST,
        &format!("/users/{ALEX}/revokeSignInSessions"),
        None,
    )
    .await;
    let log: Vec<Value> = env
        .http
        .get(env.url("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("emulator-secret"));
    assert!(!text.contains("Bearer"));
    let token_request = log.iter().find(|r| r["api"] == "entra").unwrap();
    assert_eq!(token_request["body"]["client_id"], CLIENT);
    assert!(token_request["body"].get("client_secret").is_none());
    let revoke = log.iter().find(|r| r["api"] == "graph").unwrap();
    assert_eq!(revoke["authorization"], true);
    assert_eq!(revoke["status"], 200);

    let state: Value = env
        .http
        .get(env.url("/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["counters"]["sessions_revoked"], 1);
    assert!(
        state["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["displayName"] == "CA-Require-MFA")
    );
    assert_eq!(
        env.http
            .delete(env.url("/_emulator/requests"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let log: Vec<Value> = env
        .http
        .get(env.url("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log.is_empty());
    let bad = env
        .http
        .post(env.url("/_emulator/faults"))
        .json(&json!({"route": "*", "kind": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    env.stop().await;
}

#[test]
fn the_bundled_fixture_parses_and_unknown_keys_are_rejected() {
    let tenant = Tenant::default_fixture();
    assert_eq!(tenant.tenant.id, TENANT);
    let from_file = Tenant::from_file(std::path::Path::new("tests/fixtures/tenant.yaml")).unwrap();
    assert_eq!(from_file.users.len(), 6);
    assert!(Tenant::from_file(std::path::Path::new("tests/fixtures/missing.yaml")).is_err());
    assert!(
        Tenant::from_yaml_str(&FIXTURE.replace("behaviour:\n", "behaviour:\n  surprise: 1\n"))
            .is_err()
    );
}

// ------------------------------------------------------------------------------------------
// Contract tests: every operation of Microsoft's spec subset, sent to its emulator path.

mod contract {
    use super::*;

    const GRAPH_SPEC: &str = include_str!("../fixtures/contract/graph.json");
    const ARM_SPEC: &str = include_str!("../fixtures/contract/arm.json");

    /// Documented success statuses (reference/azure-api.md B1–B6, E6); the spec only says 2XX.
    fn graph_success(id: &str) -> u16 {
        match id {
            "graph.user.update"
            | "graph.group.members.add"
            | "graph.group.members.remove"
            | "graph.identityProtection.riskyUsers.confirmCompromised"
            | "graph.beta.user.authentication.update" => 204,
            "graph.user.authenticationMethod.resetPassword" => 202,
            _ => 200,
        }
    }

    fn value_for(param: &str) -> String {
        match param {
            "user-id" => ALEX.into(),
            "group-id" => MFA_GROUP.into(),
            "directoryObject-id" => GRADY.into(),
            "authenticationMethod-id" => "28c10230-6103-485e-b985-444c60001490".into(),
            "alert-id" => "da637551227677560813_-961444813".into(),
            "subscriptionId" => SUB.into(),
            "resourceGroupName" => "rg-prod".into(),
            "snapshotName" => "snap-contract".into(),
            "diskName" => "vm-web-01_OsDisk_1".into(),
            "vmName" => "vm-web-01".into(),
            "scope" => vm().trim_start_matches('/').to_owned(),
            "roleAssignmentName" => "4f8e2d1c-0b3a-4c5d-9e6f-000000000801".into(),
            "roleAssignmentId" => format!("{}/providers/Microsoft.Authorization/roleAssignments/4f8e2d1c-0b3a-4c5d-9e6f-000000000801", vm())
                .trim_start_matches('/')
                .to_owned(),
            "lockName" => "evidence".into(),
            "resourceProviderNamespace" => "Microsoft.Compute".into(),
            "parentResourcePath" => "virtualMachines/vm-web-01".into(),
            "resourceType" => "extensions".into(),
            "resourceName" => "MDE.Linux".into(),
            "workspaceId" => WORKSPACE.into(),
            other => panic!("no test value for path parameter {other}"),
        }
    }

    /// Fills `{param}` segments by position.
    fn concrete(template: &str) -> String {
        template
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => value_for(param),
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    fn body_for(id: &str) -> Option<Value> {
        Some(match id {
            "graph.user.update" => json!({"accountEnabled": false}),
            "graph.group.members.add" => {
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{ALEX}")})
            }
            "graph.user.authenticationMethod.resetPassword" => json!({}),
            "graph.identityProtection.riskyUsers.confirmCompromised" => json!({"userIds": [ALEX]}),
            "graph.beta.user.authentication.update" => {
                json!({"requirements": {"perUserMfaState": "enforced"}})
            }
            "arm.snapshots.createOrUpdate" => {
                json!({"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk("vm-web-01_OsDisk_1")}}})
            }
            "arm.locks.createOrUpdateByScope" | "arm.locks.createOrUpdateAtResourceLevel" => {
                json!({"properties": {"level": "CanNotDelete"}})
            }
            "loganalytics.query.post" => json!({"query": "SecurityEvent | take 10"}),
            _ => return None,
        })
    }

    fn query_for(id: &str, api_version: Option<&str>) -> String {
        let mut pairs = Vec::new();
        if let Some(v) = api_version {
            pairs.push(format!("api-version={v}"));
        }
        match id {
            "arm.roleAssignments.listForScope" => pairs.push(format!("$filter=principalId%20eq%20'{ALEX}'")),
            "arm.activityLogs.list" => pairs.push(
                "$filter=eventTimestamp%20ge%20'2026-11-01T00:00:00Z'%20and%20caller%20eq%20'alex.wilber@contoso.com'".into(),
            ),
            _ => {}
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }

    /// Resolves `#/schemas/X`, `#/errorSchema`, `#/errorSchemas/X` inside a spec file.
    fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => spec
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or(schema),
            None => schema,
        }
    }

    fn check_required(spec: &Value, schema: &Value, body: &Value, what: &str) {
        let schema = resolve(spec, schema);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required {
                let field = field.as_str().unwrap();
                assert!(
                    body.get(field).is_some(),
                    "{what}: body lacks required '{field}': {body}"
                );
            }
        }
        if schema.get("properties").is_some() {
            assert!(body.is_object(), "{what}: body is not an object: {body}");
        }
    }

    /// What to create before the operation so it has something to act on.
    async fn prepare(env: &Env, id: &str) {
        if matches!(id, "arm.snapshots.get" | "arm.snapshots.delete") {
            assert_eq!(
                put_snapshot(env, "snap-contract", "westeurope")
                    .await
                    .status(),
                202
            );
        }
        if matches!(id, "arm.locks.getByScope" | "arm.locks.deleteByScope") {
            let path = format!(
                "{}/providers/Microsoft.Authorization/locks/evidence?api-version=2020-05-01",
                vm()
            );
            let put = env
                .arm(
                    Method::PUT,
                    &path,
                    Some(json!({"properties": {"level": "CanNotDelete"}})),
                )
                .await;
            assert_eq!(put.status(), 201);
        }
    }

    async fn send(
        env: &Env,
        method: &str,
        path: &str,
        scope: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        // A GET through an OData cast is an advanced query: Graph wants both parameters.
        let response = if method == "GET" && path.contains("/microsoft.graph.") {
            env.advanced_query(&format!("{path}?$count=true")).await
        } else {
            env.call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                scope,
                body,
            )
            .await
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    #[tokio::test]
    async fn every_graph_operation_answers_as_documented() {
        let spec: Value = serde_json::from_str(GRAPH_SPEC).unwrap();
        for op in spec["operations"].as_array().unwrap() {
            let id = op["id"].as_str().unwrap();
            let version = op["apiVersion"].as_str().unwrap();
            // Both the spec's namespaced form and the form SDKs send must work.
            for template in [
                op["path"].as_str().unwrap(),
                op["normalizedPath"].as_str().unwrap(),
            ] {
                let env = Env::start().await;
                let path = format!("/{version}{}", concrete(template));
                let (status, body) = send(
                    &env,
                    op["method"].as_str().unwrap(),
                    &path,
                    GRAPH,
                    body_for(id),
                )
                .await;
                assert_eq!(status, graph_success(id), "{id} {path}: {body}");
                let success = &op["responses"]["2XX"];
                match success.get("schema").filter(|s| !s.is_null()) {
                    Some(schema) if status != 204 => check_required(&spec, schema, &body, id),
                    _ => assert!(
                        body.is_null() || status == 202,
                        "{id}: a {status} carries no body"
                    ),
                }
                if status == 200 && op.get("pageable").is_some() {
                    assert!(body["value"].is_array(), "{id}: collection without value");
                }
                // Without a token: the documented error shape.
                let response = env
                    .http
                    .request(
                        Method::from_bytes(op["method"].as_str().unwrap().as_bytes()).unwrap(),
                        env.url(&path),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{id}");
                let error = json_of(response).await;
                check_required(&spec, &json!({"$ref": "#/errorSchema"}), &error, id);
                check_required(
                    &spec,
                    &spec["errorSchema"]["properties"]["error"],
                    &error["error"],
                    id,
                );
                env.stop().await;
            }
        }
    }

    #[tokio::test]
    async fn every_arm_and_log_analytics_operation_answers_as_specified() {
        let spec: Value = serde_json::from_str(ARM_SPEC).unwrap();
        for op in spec["operations"].as_array().unwrap() {
            let id = op["id"].as_str().unwrap();
            let env = Env::start().await;
            prepare(&env, id).await;
            let log_analytics = id.starts_with("loganalytics.");
            let api_version = (!log_analytics).then(|| op["apiVersion"].as_str().unwrap());
            let path = format!(
                "{}{}",
                concrete(op["path"].as_str().unwrap()),
                query_for(id, api_version)
            );
            let scope = if log_analytics { LOG_ANALYTICS } else { ARM };
            let (status, body) = send(
                &env,
                op["method"].as_str().unwrap(),
                &path,
                scope,
                body_for(id),
            )
            .await;
            let responses = op["responses"].as_object().unwrap();
            let declared = responses.get(&status.to_string());
            let response = match declared {
                Some(r) => r,
                None => {
                    assert!(
                        status >= 400 && responses.contains_key("default"),
                        "{id} {path}: undeclared {status}: {body}"
                    );
                    &responses["default"]
                }
            };
            match response.get("schema").filter(|s| !s.is_null()) {
                Some(schema) => check_required(&spec, schema, &body, id),
                None => assert!(
                    body.is_null() || status >= 400,
                    "{id}: {status} carries a body: {body}"
                ),
            }
            if let Some(nl) = op
                .get("pageable")
                .and_then(|p| p.get("nextLinkName"))
                .and_then(Value::as_str)
            {
                assert!(
                    body.get(nl).is_none() || body[nl].is_string(),
                    "{id}: bad {nl}"
                );
            }
            env.stop().await;
        }
    }
}

#[tokio::test]
async fn mfa_password_reset_and_risk_actions_change_state() {
    let env = Env::start().await;
    let requirements = format!("/beta/users/{ALEX}/authentication/requirements");
    let before = json_of(env.call(Method::GET, &requirements, GRAPH, None).await).await;
    assert_eq!(before["perUserMfaState"], "disabled");
    let patch = env
        .call(
            Method::PATCH,
            &requirements,
            GRAPH,
            Some(json!({"perUserMfaState": "enforced"})),
        )
        .await;
    assert_eq!(patch.status(), 204);
    let after = json_of(env.call(Method::GET, &requirements, GRAPH, None).await).await;
    assert_eq!(after["perUserMfaState"], "enforced");
    let v1 = env
        .call(
            Method::GET,
            &format!("/v1.0/users/{ALEX}/authentication/requirements"),
            GRAPH,
            None,
        )
        .await;
    assert_eq!(v1.status(), 400);
    assert_eq!(
        json_of(v1).await["error"]["message"],
        "Resource not found for the segment 'requirements'."
    );

    let reset = env
        .graph(
            Method::POST,
            &format!("/users/{ALEX}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"),
            Some(json!({})),
        )
        .await;
    assert_eq!(reset.status(), 202);
    let location = reset.headers()["location"].to_str().unwrap().to_owned();
    assert!(json_of(reset).await["newPassword"].is_string());
    let token = env.token(GRAPH).await;
    let operation = json_of(
        env.http
            .get(&location)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(operation["status"], "succeeded");

    let confirm = env
        .graph(
            Method::POST,
            "/identityProtection/riskyUsers/confirmCompromised",
            Some(json!({"userIds": [ALEX]})),
        )
        .await;
    assert_eq!(confirm.status(), 204);
    let risky = json_of(
        env.graph(
            Method::GET,
            &format!("/identityProtection/riskyUsers/{ALEX}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(risky["riskLevel"], "high");
    assert_eq!(risky["riskState"], "confirmedCompromised");

    let alert = env
        .graph(
            Method::GET,
            "/security/alerts_v2/da637551227677560813_-961444813",
            None,
        )
        .await;
    assert_eq!(
        json_of(alert).await["evidence"][0]["userAccount"]["azureAdUserId"],
        ALEX
    );
    let counters = env.emulator.state().counters();
    assert_eq!(counters["mfa_state_changed"], 1);
    assert_eq!(counters["password_reset"], 1);
    assert_eq!(counters["users_confirmed_compromised"], 1);
    env.stop().await;
}
