//! The executor's scheduling of run-time `if:` and `on_error: continue`, over evidence steps
//! (which need no read-back) and a transport that fails one subscription's requests.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::actions::testing::{FakeLookup, RUN_ID, TestEnv};
use crate::connectors::{ApiError, ApiResponse};
use crate::engine::NoJournal;
use crate::plan::{Mode, Planner};
use crate::policy::Unguarded;

/// The subscription whose Activity Log answers 403.
const BROKEN: &str = "00000000-0000-4000-8000-00000000dead";
const FINE: &str = "00000000-0000-4000-8000-000000000001";

/// Answers every request with an empty page, except those naming [`BROKEN`].
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<String>>,
}

#[async_trait]
impl Transport for Recorder {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        self.sent.lock().unwrap().push(req.url.clone());
        if req.url.contains(BROKEN) {
            return Err(ApiError::Forbidden {
                code: "AuthorizationFailed".into(),
                message: "no access to the subscription".into(),
                request_id: None,
            });
        }
        Ok(ApiResponse {
            status: 200,
            headers: HashMap::new(),
            body: json!({"value": []}),
            request_id: Some("req-1".into()),
            client_request_id: "c-1".into(),
            attempts: 1,
        })
    }
}

/// An Activity Log step reading `subscription`, with extra YAML lines (`needs`, `if`, …).
fn step_yaml(id: &str, subscription: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    uses: evidence.activity_log\n{extra}    with: {{ caller: alex.wilber@contoso.com, subscription: \"{subscription}\", timespan: P1D }}\n"
    )
}

async fn execute(steps: &[String]) -> (RunReport, Vec<String>) {
    let text = format!("name: conditions\nsteps:\n{}", steps.concat());
    let playbook = crate::playbook::load_str(&text, Path::new("conditions.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let env = TestEnv::new(FakeLookup::strict());
    let planner = Planner {
        endpoints: &env.endpoints,
        lookup: &env.lookup,
        settings: &env.settings,
        guard: &Unguarded,
    };
    let plan = planner
        .plan(
            &playbook,
            &env.alert,
            &BTreeMap::new(),
            Mode::Enforce,
            RUN_ID,
            env.now,
        )
        .await
        .unwrap();
    let transport = Recorder::default();
    let completed = HashMap::new();
    let executor = Executor {
        transport: &transport,
        lookup: &env.lookup,
        journal: &NoJournal,
        settings: &env.settings,
        endpoints: &env.endpoints,
        concurrency: 4,
        approved: false,
        completed: &completed,
        on_event: &|_: &Event<'_>| {},
    };
    let report = executor.execute(&plan, &playbook).await;
    let sent = transport.sent.lock().unwrap().clone();
    (report, sent)
}

fn outcome<'a>(report: &'a RunReport, id: &str) -> (StepOutcome, Option<&'a str>) {
    let s = report.steps.iter().find(|s| s.id == id).expect("the step");
    (s.outcome, s.reason.as_deref())
}

fn with_fallback(first: &str, on_error: &str) -> Vec<String> {
    vec![
        step_yaml("query", first, &format!("    on_error: {on_error}\n")),
        step_yaml(
            "fallback",
            FINE,
            "    needs: [query]\n    if: steps.query.status == 'failed'\n",
        ),
        step_yaml("after", FINE, "    needs: [query]\n"),
        step_yaml("later", FINE, "    needs: [after]\n"),
        step_yaml("unrelated", FINE, ""),
    ]
}

#[tokio::test]
async fn a_failure_under_continue_runs_its_fallback_skips_its_dependents_and_the_run_succeeds() {
    let (report, sent) = execute(&with_fallback(BROKEN, "continue")).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(outcome(&report, "query").0, StepOutcome::Failed);
    assert_eq!(outcome(&report, "fallback"), (StepOutcome::Succeeded, None));
    assert_eq!(
        outcome(&report, "after"),
        (StepOutcome::Skipped, Some("needs `query`, which failed"))
    );
    assert_eq!(
        outcome(&report, "later"),
        (
            StepOutcome::Skipped,
            Some("needs `after`, which was skipped because `query` failed")
        )
    );
    assert_eq!(outcome(&report, "unrelated").0, StepOutcome::Succeeded);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].starts_with("step `query` failed and the run went on")
            && report.warnings[0].contains("AuthorizationFailed"),
        "{:?}",
        report.warnings
    );
    // The failed query, the fallback and the unrelated step: nothing for `after` or `later`.
    assert_eq!(sent.len(), 3, "{sent:#?}");
}

#[tokio::test]
async fn a_fallback_is_skipped_with_its_condition_when_nothing_failed() {
    let (report, sent) = execute(&with_fallback(FINE, "continue")).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(
        outcome(&report, "fallback"),
        (
            StepOutcome::Skipped,
            Some("condition false: steps.query.status == 'failed'")
        )
    );
    assert_eq!(outcome(&report, "after").0, StepOutcome::Succeeded);
    assert_eq!(outcome(&report, "later").0, StepOutcome::Succeeded);
    assert!(report.warnings.is_empty());
    assert_eq!(sent.len(), 4, "{sent:#?}");
}

#[tokio::test]
async fn a_stopped_run_still_runs_the_fallback_that_asks_for_its_failure() {
    let (report, _) = execute(&with_fallback(BROKEN, "fail")).await;
    assert_eq!(report.outcome, RunOutcome::Failed, "{report:#?}");
    assert_eq!(outcome(&report, "fallback").0, StepOutcome::Succeeded);
    assert_eq!(
        outcome(&report, "after"),
        (
            StepOutcome::Skipped,
            Some("the run stopped after `query` failed")
        )
    );
    // A failure that stops the run is no warning: the run failed.
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test]
async fn a_compensating_run_starts_no_fallback() {
    let (report, _) = execute(&with_fallback(BROKEN, "compensate")).await;
    assert_eq!(report.outcome, RunOutcome::Compensated, "{report:#?}");
    assert_eq!(outcome(&report, "fallback").0, StepOutcome::Skipped);
}
