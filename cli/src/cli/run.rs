//! `riposte run` and `riposte act`: plan, then execute when the mode is enforce. Dry-run
//! prints the plan and sends nothing. Enforced runs go through the service, with the run's
//! spec (the playbook's text, or the action and its parameters) stored on the run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::{Format, common, parse_pairs};
use riposte::alert::Alert;
use riposte::app::App;
use riposte::config::Config;
use riposte::engine::service::Caller;
use riposte::engine::{RunOutcome, StepOutcome, action_spec, playbook_of, playbook_spec};
use riposte::plan::{self, Mode, Planner};
use riposte::playbook::Playbook;
use riposte::store::{RunSpec, RunStatus};

pub struct RunArgs {
    pub alert: Option<PathBuf>,
    pub playbook: Option<String>,
    pub source: Option<String>,
    pub inputs: Vec<String>,
    pub principal: Option<String>,
    pub resources: Vec<String>,
    pub enforce: bool,
    /// When the run must wait for an approval, wait for it (and then execute) instead of
    /// returning at once.
    pub wait: bool,
    pub format: Format,
}

pub async fn run(config: &Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let app = App::new(mode_for(config, args.enforce))?;
    let now = chrono::Utc::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let alert = match &args.alert {
        Some(path) => common::read_alert(&app, path, args.source.as_deref()).await?,
        None => {
            let Some(name) = &args.playbook else {
                bail!("give --alert FILE, or --playbook NAME for a manual run");
            };
            riposte::alert::admissible(
                Alert::manual(
                    format!("manual-{run_id}"),
                    format!("manual run of {name}"),
                    args.principal.clone(),
                    &args.resources,
                    now,
                ),
                &app.config.alerts,
            )?
        }
    };
    let playbooks = app.select_playbooks(args.playbook.as_deref(), &alert)?;
    let inputs = parse_pairs(&args.inputs, "input")?;
    let mut code = ExitCode::SUCCESS;
    for p in &playbooks {
        let spec = playbook_spec(p, inputs.clone());
        let c = execute(&app, p, spec, &alert, (args.format, args.wait), &run_id).await?;
        if c != ExitCode::SUCCESS {
            code = c;
        }
    }
    Ok(code)
}

pub struct ActArgs {
    pub action: String,
    pub params: Vec<String>,
    pub principal: Option<String>,
    pub resources: Vec<String>,
    pub enforce: bool,
    pub wait: bool,
    pub format: Format,
}

/// One action, manually, through the same plan → guard → execute path as a playbook.
pub async fn act(config: &Config, args: ActArgs) -> anyhow::Result<ExitCode> {
    let Some(action) = riposte::actions::find(&args.action) else {
        let hint = riposte::actions::closest_name(&args.action)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        bail!(
            "unknown action `{}`{hint}; `riposte actions` lists them",
            args.action
        );
    };
    let schema = action.params_schema().to_value();
    let params = act_params(
        &schema,
        &parse_pairs(&args.params, "param")?,
        args.principal.as_deref(),
        &args.resources,
    )?;
    let principal = riposte::actions::principal_param(&params)
        .map(str::to_string)
        .or_else(|| args.principal.clone());
    let mut resources = args.resources.clone();
    if let Some(r) = params.get("resource").and_then(Value::as_str)
        && !resources.iter().any(|x| x == r)
    {
        resources.push(r.to_string());
    }
    let spec = action_spec(&args.action, params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let playbook = playbook_of(&spec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::new(mode_for(config, args.enforce))?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let alert = Alert::manual(
        format!("manual-{run_id}"),
        format!("manual {}", args.action),
        principal,
        &resources,
        chrono::Utc::now(),
    );
    execute(
        &app,
        &playbook,
        spec,
        &alert,
        (args.format, args.wait),
        &run_id,
    )
    .await
}

/// `--param k=v` typed by the action's parameter schema, with `--principal` in the action's
/// principal parameter (`user`, or `principal`) and `--resource` in its `resource`.
fn act_params(
    schema: &Value,
    given: &std::collections::BTreeMap<String, String>,
    principal: Option<&str>,
    resources: &[String],
) -> anyhow::Result<Map<String, Value>> {
    let props = schema.get("properties").and_then(Value::as_object);
    let takes = |k: &str| props.is_some_and(|p| p.contains_key(k));
    let mut params = Map::new();
    for (k, v) in given {
        let ty = schema
            .pointer(&format!("/properties/{k}/type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match ty {
            "boolean" | "integer" | "number" | "array" | "object" => serde_json::from_str(v)
                .with_context(|| format!("--param {k}: `{v}` is not a valid {ty}"))?,
            _ => Value::String(v.clone()),
        };
        params.insert(k.clone(), value);
    }
    if let Some(p) = principal {
        let Some(key) = riposte::actions::PRINCIPAL_PARAMS
            .into_iter()
            .find(|k| takes(k))
        else {
            bail!("--principal: this action takes no principal parameter");
        };
        match params.get(key) {
            Some(Value::String(v)) if v != p => {
                bail!("--principal {p} and --param {key}={v} disagree; give one")
            }
            _ => {
                params.insert(key.into(), Value::String(p.into()));
            }
        }
    }
    if takes("resource") {
        match resources {
            [] => {}
            [one] => match params.get("resource") {
                Some(Value::String(v)) if v != one => {
                    bail!("--resource {one} and --param resource={v} disagree; give one")
                }
                _ => {
                    params.insert("resource".into(), Value::String(one.clone()));
                }
            },
            _ => bail!("this action acts on one resource; give --resource once"),
        }
    }
    Ok(params)
}

/// The configuration with `--enforce` applied.
fn mode_for(config: &Config, enforce: bool) -> Config {
    let mut config = config.clone();
    if enforce {
        config.mode = Mode::Enforce;
    }
    config
}

async fn execute(
    app: &App,
    playbook: &Playbook,
    spec: RunSpec,
    alert: &Alert,
    (format, wait): (Format, bool),
    run_id: &str,
) -> anyhow::Result<ExitCode> {
    let mode = app.config.mode;
    if mode == Mode::Enforce && !app.connectors.has_azure_credentials() {
        bail!(
            "enforce needs Azure credentials: set [azure] client_secret, certificate_path or managed_identity (or use dry-run)"
        );
    }
    if mode == Mode::Enforce && playbook.stage != riposte::playbook::model::Stage::Trial {
        return execute_enforced(app, spec, alert, format, wait).await;
    }
    let lookup = app.connectors.planning_lookup();
    let planner = Planner {
        endpoints: &app.endpoints,
        lookup: lookup.as_ref(),
        settings: &app.config.actions,
        guard: app.guard.as_ref(),
    };
    let plan = planner
        .plan(
            playbook,
            alert,
            &spec.inputs,
            mode,
            run_id,
            chrono::Utc::now(),
        )
        .await
        .with_context(|| format!("cannot plan playbook {}", playbook.name))?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Format::Table => {
            print!("{}", plan::render_table(&plan));
            if plan.mode == Mode::DryRun {
                println!(
                    "\ndry-run: nothing was sent. Set mode = \"enforce\" or pass --enforce to execute."
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn execute_enforced(
    app: &App,
    spec: RunSpec,
    alert: &Alert,
    format: Format,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let progress = super::progress::Progress::start(format == Format::Json);
    let on_event = progress.on_event();
    // Enforced runs go through the service, so they are journaled, audited and can be
    // inspected (`riposte runs show`) and rolled back (`riposte rollback`).
    let service = app.service().await?;
    let caller = Caller { name: cli_caller() };
    let mut run = service
        .run_now(spec, alert, &caller, &on_event)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if wait && run.status == RunStatus::AwaitingApproval {
        run = wait_for_approval(&service, run, &progress, &on_event).await?;
    }
    let report = service
        .report(&run.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // A step that failed under `on_error: continue` does not fail the run (exit 0), so it is
    // said on stderr, where it is seen whatever the output format.
    for warning in report.iter().flat_map(|r| &r.warnings) {
        eprintln!("warning: {warning}");
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run, "report": report}))?
        ),
        Format::Table => {
            if let Some(r) = &report {
                print!("{}", r.summary());
            }
            if run.status == RunStatus::AwaitingApproval {
                println!(
                    "run {} awaits approval of plan {}: riposte approve {} --plan-hash {}",
                    run.id,
                    run.plan_hash.clone().unwrap_or_default(),
                    run.id,
                    run.plan_hash.clone().unwrap_or_default()
                );
            }
            println!(
                "run {} is {:?}; `riposte runs show {}` has the timeline",
                run.id, run.status, run.id
            );
        }
    }
    let failed = matches!(
        run.status,
        RunStatus::Failed | RunStatus::Denied | RunStatus::RolledBack
    ) || report.is_some_and(|r| {
        matches!(r.outcome, RunOutcome::Failed | RunOutcome::Compensated)
            || r.steps.iter().any(|s| s.outcome == StepOutcome::Denied)
    });
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Who the command line acts as: approvals compare it with a run's requester.
pub(crate) fn cli_caller() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// Waits while `run` awaits approval, saying so on stderr now and then; once an approval of
/// its current plan is recorded (by `riposte approve`, the API or the review page), executes
/// it here. Returns when the run has left `awaiting_approval`: executed, rejected, cancelled,
/// or executed by a `riposte serve` worker.
async fn wait_for_approval(
    service: &riposte::engine::Service,
    mut run: riposte::store::RunRecord,
    progress: &super::progress::Progress,
    on_event: &(dyn Fn(&riposte::engine::Event<'_>) + Send + Sync),
) -> anyhow::Result<riposte::store::RunRecord> {
    let started = std::time::Instant::now();
    let mut said = None;
    let mut acted_on = None;
    while run.status == RunStatus::AwaitingApproval {
        let minutes = started.elapsed().as_secs() / 60;
        if said != Some(minutes) {
            said = Some(minutes);
            progress.waiting(&format!(
                "run {} waits for approval of plan {} ({}m so far): riposte approve {} --plan-hash {}",
                run.id,
                run.plan_hash.as_deref().unwrap_or("-"),
                minutes,
                run.id,
                run.plan_hash.as_deref().unwrap_or("-"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // The newest approval of the plan as it stands. Each one is acted on once: one the
        // engine does not accept (expired, for a plan that changed) leaves the run waiting
        // without being planned again every second.
        let approval = match &run.plan_hash {
            Some(hash) => service
                .store()
                .approvals_for(&run.id)
                .await?
                .into_iter()
                .filter(|a| {
                    &a.plan_hash == hash && a.decision == riposte::store::ApprovalDecision::Approve
                })
                .map(|a| a.at)
                .max(),
            None => None,
        };
        if let Some(at) = approval.filter(|at| acted_on != Some(*at)) {
            acted_on = Some(at);
            progress.waiting("approved; executing");
            match service.drive(&run.id, Some(on_event)).await {
                // A `riposte serve` worker took it first: follow it from the store instead.
                Ok(_) | Err(riposte::engine::service::ServiceError::Conflict(_)) => {}
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
        run = current(service, &run.id).await?;
        while run.status == RunStatus::Running {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            run = current(service, &run.id).await?;
        }
    }
    Ok(run)
}

/// The run as the store has it now.
async fn current(
    service: &riposte::engine::Service,
    id: &str,
) -> anyhow::Result<riposte::store::RunRecord> {
    service
        .store()
        .get_run(id)
        .await?
        .with_context(|| format!("run {id} is no longer in the store"))
}
