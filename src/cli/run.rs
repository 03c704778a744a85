//! `riposte run` and `riposte act`: plan, then execute when the mode is enforce. Dry-run
//! prints the plan and sends nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{Format, common, parse_pairs};
use crate::alert::Alert;
use crate::config::Config;
use crate::engine::runner::{Service, ServiceOptions};
use crate::engine::service::Caller;
use crate::engine::{Event, RunOutcome, StepOutcome};
use crate::plan::{self, Mode, Planner};
use crate::playbook::{self, Playbook};
use crate::store::RunStatus;

pub struct RunArgs {
    pub alert: Option<PathBuf>,
    pub playbook: Option<String>,
    pub source: Option<String>,
    pub inputs: Vec<String>,
    pub principal: Option<String>,
    pub resources: Vec<String>,
    pub enforce: bool,
    pub format: Format,
}

pub async fn run(config: &Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let connectors = common::connectors(config)?;
    let now = chrono::Utc::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let alert = match &args.alert {
        Some(path) => common::read_alert(config, &connectors, path, args.source.as_deref()).await?,
        None => {
            let Some(name) = &args.playbook else {
                bail!("give --alert FILE, or --playbook NAME for a manual run");
            };
            Alert::manual(
                format!("manual-{run_id}"),
                format!("manual run of {name}"),
                args.principal.clone(),
                &args.resources,
                now,
            )
        }
    };
    let playbooks = select(config, args.playbook.as_deref(), &alert)?;
    let inputs = parse_pairs(&args.inputs, "input")?;
    let mut code = ExitCode::SUCCESS;
    for p in &playbooks {
        let c = execute(
            config,
            &connectors,
            p,
            &alert,
            &inputs,
            args.enforce,
            args.format,
            &run_id,
        )
        .await?;
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
    pub format: Format,
}

/// One action, manually, through the same plan → guard → execute path as a playbook.
pub async fn act(config: &Config, args: ActArgs) -> anyhow::Result<ExitCode> {
    let Some(action) = crate::actions::find(&args.action) else {
        let hint = crate::actions::closest_name(&args.action)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        bail!(
            "unknown action `{}`{hint}; `riposte actions` lists them",
            args.action
        );
    };
    let params = parse_pairs(&args.params, "param")?;
    let schema = action.params_schema().to_value();
    let mut yaml = format!(
        "name: act\nsteps:\n  - id: act\n    uses: {}\n    with:\n",
        args.action
    );
    if params.is_empty() {
        yaml.push_str("      {}\n");
    }
    for (k, v) in &params {
        let ty = schema
            .pointer(&format!("/properties/{k}/type"))
            .and_then(|t| t.as_str())
            .unwrap_or("string");
        // Quote strings as JSON, so a value is never read as YAML syntax or an expression.
        let literal = match ty {
            "boolean" | "integer" | "number" => v.clone(),
            _ => serde_json::to_string(v)?,
        };
        yaml.push_str(&format!("      {k}: {literal}\n"));
    }
    let playbook =
        playbook::load_str(&yaml, Path::new("act.yaml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let connectors = common::connectors(config)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now();
    let upn = args
        .principal
        .clone()
        .or_else(|| params.get("user").cloned());
    let mut resources = args.resources.clone();
    if let Some(r) = params.get("resource") {
        resources.push(r.clone());
    }
    let alert = Alert::manual(
        format!("manual-{run_id}"),
        format!("manual {}", args.action),
        upn,
        &resources,
        now,
    );
    execute(
        config,
        &connectors,
        &playbook,
        &alert,
        &BTreeMap::new(),
        args.enforce,
        args.format,
        &run_id,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    config: &Config,
    connectors: &crate::connectors::Connectors,
    playbook: &Playbook,
    alert: &Alert,
    inputs: &BTreeMap<String, String>,
    enforce_flag: bool,
    format: Format,
    run_id: &str,
) -> anyhow::Result<ExitCode> {
    let mode = if enforce_flag || config.mode == Mode::Enforce {
        Mode::Enforce
    } else {
        Mode::DryRun
    };
    let endpoints = config.azure.endpoints()?;
    let lookup = common::lookup(config, connectors);
    if mode == Mode::Enforce && !connectors.has_azure_credentials() {
        bail!(
            "enforce needs Azure credentials: set [azure] client_secret, certificate_path or managed_identity (or use dry-run)"
        );
    }
    if mode == Mode::Enforce && playbook.stage != crate::playbook::model::Stage::Trial {
        return execute_enforced(config, playbook, alert, inputs, format).await;
    }
    let guard = crate::policy::guard_for(config).with_context(|| {
        format!(
            "cannot load the guardrail policies in {}",
            config.policies.display()
        )
    })?;
    let planner = Planner {
        endpoints: &endpoints,
        lookup: lookup.as_ref(),
        settings: &config.actions,
        guard: guard.as_ref(),
    };
    let plan = planner
        .plan(playbook, alert, inputs, mode, run_id, chrono::Utc::now())
        .await
        .with_context(|| format!("cannot plan playbook {}", playbook.name))?;
    if plan.mode == Mode::DryRun {
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            Format::Table => {
                print!("{}", plan::render_table(&plan));
                println!(
                    "\ndry-run: nothing was sent. Set mode = \"enforce\" or pass --enforce to execute."
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    execute_enforced(config, playbook, alert, inputs, format).await
}

async fn execute_enforced(
    config: &Config,
    playbook: &Playbook,
    alert: &Alert,
    inputs: &BTreeMap<String, String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let quiet = format == Format::Json;
    let on_event = move |e: &Event<'_>| {
        if quiet {
            return;
        }
        match e {
            Event::StepStarted { id, action } => eprintln!("▶ {id} ({action})"),
            Event::Request { step, record } => eprintln!(
                "  {step}: {} {} → {}{}",
                record.method,
                record.url,
                record
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no answer".into()),
                record
                    .request_id
                    .as_ref()
                    .map(|r| format!(" [request-id {r}]"))
                    .unwrap_or_default()
            ),
            Event::StepFinished { report } => eprintln!(
                "■ {} {:?}{}",
                report.id,
                report.outcome,
                report
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        }
    };
    // Enforced runs go through the service, so they are journaled, audited and can be
    // inspected (`riposte runs show`) and rolled back (`riposte rollback`).
    let mut enforced = config.clone();
    enforced.mode = Mode::Enforce;
    let service =
        Service::from_config(enforced, ServiceOptions::from_settings(&config.engine)).await?;
    let caller = Caller { name: cli_caller() };
    let run = service
        .run_now(playbook, alert, inputs, &caller, &on_event)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = service
        .report(&run.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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

fn select(config: &Config, wanted: Option<&str>, alert: &Alert) -> anyhow::Result<Vec<Playbook>> {
    super::plan::select_playbooks(config, wanted, alert)
}
