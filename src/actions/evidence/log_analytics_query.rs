use std::collections::BTreeMap;
use std::path::{Component, Path};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::actions::{
    Action, ActionError, ActionInfo, ActionPlan, Effect, Permissions, PlanContext, encode, is_guid,
    kql, unknown,
};
use crate::connectors::{Api, ApiRequest, Method};

use super::{default_timespan, parse_timespan};

/// Runs a KQL query kept next to the playbook against a Log Analytics workspace (e.g.
/// Lacework's 30-day `SecurityEvent` activity counts for the alert's account).
pub struct LogAnalyticsQuery;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The workspace's customer id (a GUID, shown as "Workspace ID"; not its ARM id).
    /// Default: `log_analytics_workspace` under [actions] in configuration.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The file holding the KQL query, relative to the playbook's directory. It is read when
    /// the plan is made, so the plan (and its hash) carries the exact query.
    pub query_file: String,
    /// The window the query covers, as an ISO 8601 duration (`P30D`, `PT12H`) ending when
    /// the query runs. Default: `P30D`.
    #[serde(default = "default_timespan")]
    pub timespan: String,
    /// Values the query refers to by name (e.g. the alert's account and computer). Each is
    /// put in front of the query as `let <name> = "<value>";` with the value escaped as a
    /// KQL string literal, so alert text is data and never becomes query text.
    #[serde(default)]
    pub bindings: BTreeMap<String, String>,
}

static INFO: ActionInfo = ActionInfo {
    name: "evidence.log_analytics_query",
    description: "Run a KQL query from a file beside the playbook against a Log Analytics workspace and keep the result as evidence.",
    effect: Effect::Evidence,
    permissions: Permissions {
        graph: &[],
        entra_roles: &[],
        azure_rbac: &["Microsoft.OperationalInsights/workspaces/query/read (Log Analytics Reader)"],
    },
    compensation: "none needed: reads only",
    example: "id: kql\nuses: evidence.log_analytics_query\nwith:\n  query_file: queries/first-access.kql\n  timespan: P30D\n  bindings:\n    account: ${{ alert.principal.upn }}\n",
};

/// The query file must stay inside the playbook directory: step values can come from
/// templates, and a path must not be able to send an arbitrary local file to the API.
fn check_relative(path: &str) -> Result<(), ActionError> {
    let p = Path::new(path);
    let escapes = p
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if path.is_empty() || escapes {
        return Err(ActionError::Params(format!(
            "query_file `{path}` must be a relative path inside the playbook's directory"
        )));
    }
    Ok(())
}

/// The query file's real path, which must lie inside the playbook's real directory: a
/// symlink cannot lead out of it, and a single action (which has no directory) reads no
/// file at all — otherwise a caller could make riposte send a file next to the server (its
/// own configuration) to the API and show it in the plan.
fn inside_playbook_dir(dir: &Path, file: &str) -> Result<std::path::PathBuf, ActionError> {
    if dir.as_os_str().is_empty() {
        return Err(ActionError::Params(
            "a single action reads no files: put the query in a playbook".into(),
        ));
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        ActionError::Io(format!(
            "the playbook directory `{}` cannot be resolved: {e}",
            dir.display()
        ))
    })?;
    let joined = dir.join(file);
    let path = std::fs::canonicalize(&joined).map_err(|e| {
        ActionError::Io(format!(
            "query file `{}` cannot be read: {e}",
            joined.display()
        ))
    })?;
    if !path.starts_with(&dir) {
        return Err(ActionError::Params(format!(
            "query file `{file}` resolves outside the playbook's directory"
        )));
    }
    Ok(path)
}

#[async_trait]
impl Action for LogAnalyticsQuery {
    type Params = Params;

    fn info(&self) -> &'static ActionInfo {
        &INFO
    }

    async fn plan(&self, p: Params, ctx: &PlanContext<'_>) -> Result<ActionPlan, ActionError> {
        parse_timespan(&p.timespan)?;
        let workspace = p
            .workspace
            .clone()
            .or_else(|| ctx.settings.log_analytics_workspace.clone())
            .ok_or_else(|| {
                ActionError::Params(
                    "no workspace: set `workspace` in the step or `log_analytics_workspace` under [actions] in configuration".into(),
                )
            })?;
        if workspace.starts_with('/') {
            return Err(ActionError::Params(format!(
                "workspace `{workspace}` is an ARM id; give the workspace's customer id (Workspace ID, a GUID)"
            )));
        }
        if !is_guid(&workspace) && !unknown::is_placeholder(&workspace) {
            return Err(ActionError::Params(format!(
                "workspace `{workspace}` is not a workspace id (a GUID)"
            )));
        }
        check_relative(&p.query_file)?;
        let path = inside_playbook_dir(&ctx.playbook_dir, &p.query_file)?;
        let query = tokio::fs::read_to_string(&path).await.map_err(|e| {
            ActionError::Io(format!(
                "query file `{}` cannot be read: {e}",
                path.display()
            ))
        })?;
        if query.trim().is_empty() {
            return Err(ActionError::Params(format!(
                "query file `{}` is empty",
                path.display()
            )));
        }
        let digest = hex::encode(Sha256::digest(query.as_bytes()));
        if let Some((name, _)) = p.bindings.iter().find(|(_, v)| unknown::is_placeholder(v)) {
            // The literal is made here, once; a value known only at run time would have to
            // be spliced in later, which is exactly what this parameter exists to prevent.
            return Err(ActionError::Params(format!(
                "binding `{name}` must be known when the plan is made (an alert or input value, not a step output)"
            )));
        }
        let lets =
            kql::let_statements(&p.bindings).map_err(|e| ActionError::Params(e.to_string()))?;
        let query = format!("{lets}{query}");
        let url = format!(
            "{}/v1/workspaces/{}/query",
            ctx.endpoints.log_analytics,
            encode::segment(&workspace)
        );
        // A query changes nothing, so the client may resend it after a transient failure.
        let request = ApiRequest::new(Method::Post, Api::LogAnalytics, url)
            .with_body(json!({ "query": query, "timespan": p.timespan }))
            .retry_safe();
        let mut facts = json!({
            "workspace": workspace,
            "query_file": p.query_file,
            "query_sha256": digest,
            "timespan": p.timespan,
        });
        if !p.bindings.is_empty() {
            facts["bindings"] = json!(p.bindings);
        }
        Ok(ActionPlan::planned(vec![request])
            .pre_state(facts.clone())
            .outputs(facts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_only_from_inside_the_playbook_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("riposte.toml"), "secret = 1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("q.kql"), "AzureActivity").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            outside.path().join("riposte.toml"),
            dir.path().join("link.kql"),
        )
        .unwrap();
        assert!(inside_playbook_dir(dir.path(), "q.kql").is_ok());
        #[cfg(unix)]
        assert!(matches!(
            inside_playbook_dir(dir.path(), "link.kql"),
            Err(ActionError::Params(m)) if m.contains("outside")
        ));
        // A single action has no directory: it reads nothing, not even from the cwd.
        assert!(matches!(
            inside_playbook_dir(Path::new(""), "riposte.toml"),
            Err(ActionError::Params(m)) if m.contains("single action")
        ));
    }
    use crate::actions::PlanStatus;
    use crate::actions::testing::*;

    const KQL: &str =
        "SecurityEvent\n| where Account has 'o''brien'\n| summarize count() by Computer\n";

    fn env_with_query() -> (TestEnv, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("queries")).unwrap();
        std::fs::write(dir.path().join("queries/first-access.kql"), KQL).unwrap();
        let mut env = TestEnv::offline();
        env.playbook_dir = dir.path().to_path_buf();
        (env, dir)
    }

    #[tokio::test]
    async fn posts_the_file_text_with_its_digest() {
        let (env, _dir) = env_with_query();
        let plan = env
            .plan(
                &LogAnalyticsQuery,
                json!({ "query_file": "queries/first-access.kql" }),
            )
            .await
            .unwrap();
        assert_eq!(plan.status, PlanStatus::Planned);
        let (method, url, body) = only_request(&plan);
        assert_eq!(method, "POST");
        assert_eq!(
            url,
            format!("https://api.loganalytics.io/v1/workspaces/{WORKSPACE}/query")
        );
        assert_eq!(body, Some(&json!({ "query": KQL, "timespan": "P30D" })));
        assert!(plan.requests[0].retry_safe);
        assert_eq!(plan.requests[0].api, Api::LogAnalytics);
        assert_eq!(
            plan.pre_state["query_sha256"],
            hex::encode(Sha256::digest(KQL.as_bytes()))
        );
        assert!(env.lookup.calls().is_empty());
    }

    #[tokio::test]
    async fn bindings_are_let_statements_with_escaped_literals_before_the_file_text() {
        let (env, _dir) = env_with_query();
        let plan = env
            .plan(
                &LogAnalyticsQuery,
                json!({
                    "query_file": "queries/first-access.kql",
                    "bindings": { "computer": "vm-web-01", "account": "x\" or 1==1 //\nSecurityEvent" },
                }),
            )
            .await
            .unwrap();
        let (_, _, body) = only_request(&plan);
        assert_eq!(
            body.unwrap()["query"],
            format!(
                "let account = \"x\\\" or 1==1 //\\nSecurityEvent\";\nlet computer = \"vm-web-01\";\n{KQL}"
            )
        );
        // The file's digest is of the file; the bound values are in the plan's facts.
        assert_eq!(
            plan.pre_state["query_sha256"],
            hex::encode(Sha256::digest(KQL.as_bytes()))
        );
        assert_eq!(plan.pre_state["bindings"]["computer"], "vm-web-01");
        for bad in ["1x", "let", "a b"] {
            let err = env
                .plan(
                    &LogAnalyticsQuery,
                    json!({ "query_file": "queries/first-access.kql", "bindings": { bad: "v" } }),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ActionError::Params(_)), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn explicit_workspace_and_timespan() {
        let (env, _dir) = env_with_query();
        let ws = "00000000-aaaa-bbbb-cccc-000000000001";
        let plan = env
            .plan(
                &LogAnalyticsQuery,
                json!({ "workspace": ws, "query_file": "./queries/first-access.kql", "timespan": "PT12H" }),
            )
            .await
            .unwrap();
        let (_, url, body) = only_request(&plan);
        assert!(url.contains(ws));
        assert_eq!(body.unwrap()["timespan"], "PT12H");
    }

    #[tokio::test]
    async fn missing_file_names_the_path() {
        let (env, dir) = env_with_query();
        let err = env
            .plan(
                &LogAnalyticsQuery,
                json!({ "query_file": "queries/nope.kql" }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::Io(_)));
        let expected = dir.path().join("queries/nope.kql");
        assert!(
            err.to_string().contains(&expected.display().to_string()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn paths_outside_the_playbook_directory_are_refused() {
        let (env, _dir) = env_with_query();
        for path in ["../secrets.kql", "/etc/passwd", "queries/../../x.kql", ""] {
            let err = env
                .plan(&LogAnalyticsQuery, json!({ "query_file": path }))
                .await
                .unwrap_err();
            assert!(matches!(err, ActionError::Params(_)), "{path}: {err}");
        }
    }

    #[tokio::test]
    async fn workspace_must_be_a_customer_id() {
        let (mut env, _dir) = env_with_query();
        let err = env
            .plan(
                &LogAnalyticsQuery,
                json!({ "workspace": "/subscriptions/x/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-sec", "query_file": "queries/first-access.kql" }),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("customer id"), "{err}");
        env.settings.log_analytics_workspace = None;
        let err = env
            .plan(
                &LogAnalyticsQuery,
                json!({ "query_file": "queries/first-access.kql" }),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("log_analytics_workspace"), "{err}");
    }
}
