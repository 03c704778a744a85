//! Operating runs from the command line, against the configured store: list, show, approve,
//! reject, cancel, roll back, and verify the audit trail.

use std::process::ExitCode;
use std::sync::Arc;

use super::Format;
use super::run::cli_caller;
use riposte::app::App;
use riposte::config::Config;
use riposte::engine::Service;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::store::RunStatus;

pub(super) async fn service(config: &Config) -> anyhow::Result<Arc<Service>> {
    App::new(config.clone())?.service().await
}

pub(super) fn caller() -> Caller {
    Caller { name: cli_caller() }
}

pub(super) fn err(e: riposte::engine::service::ServiceError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn list(
    config: &Config,
    status: Option<String>,
    limit: u32,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let status = match status {
        Some(s) => Some(
            serde_json::from_value::<RunStatus>(serde_json::Value::String(s.clone()))
                .map_err(|_| anyhow::anyhow!("unknown status `{s}`"))?,
        ),
        None => None,
    };
    let runs = service(config)
        .await?
        .runs(limit, status)
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
        Format::Table => {
            println!(
                "{:36}  {:17}  {:28}  {:20}  ALERTS",
                "RUN", "STATUS", "PLAYBOOK", "CREATED"
            );
            for r in runs {
                let alerts: Vec<String> = r
                    .alerts
                    .iter()
                    .map(|a| format!("{}:{}", a.source, a.source_id))
                    .collect();
                println!(
                    "{:36}  {:17}  {:28}  {:20}  {}",
                    r.id,
                    format!("{:?}", r.status),
                    r.playbook,
                    r.created_at.format("%Y-%m-%d %H:%M:%S"),
                    alerts.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let svc = service(config).await?;
    let view = svc.run(id).await.map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        Format::Table => {
            let r = &view.run;
            println!(
                "Run {} · {:?} · playbook {} · mode {}",
                r.id,
                r.status,
                r.playbook,
                r.mode.as_str()
            );
            println!(
                "requested by {} · plan {}",
                r.requested_by.as_deref().unwrap_or("-"),
                r.plan_hash.as_deref().unwrap_or("-")
            );
            for a in &r.alerts {
                println!("alert {} {}", a.source, a.source_id);
            }
            if let Some(plan) = svc.plan_of(id).await.map_err(err)? {
                println!();
                print!("{}", riposte::plan::render_table(&plan));
            }
            println!("\nTimeline:");
            for e in &view.timeline {
                println!(
                    "  {} {:16} #{} {:?}",
                    e.at.format("%H:%M:%S%.3f"),
                    e.step_id,
                    e.item,
                    e.state
                );
            }
            if !view.evidence.is_empty() {
                println!("\nEvidence:");
                for e in &view.evidence {
                    println!(
                        "  {} {} sha256:{} ({} bytes)",
                        e.step_id, e.name, e.sha256, e.size
                    );
                }
            }
            if let Some(report) = svc.report(id).await.map_err(err)? {
                println!();
                print!("{}", report.summary());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Approves, then executes here with progress on stderr; `--format json` prints the run and
/// its report on stdout.
pub async fn approve(
    config: &Config,
    id: &str,
    plan_hash: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let svc = service(config).await?;
    svc.approve(id, plan_hash, &caller()).await.map_err(err)?;
    let progress = super::progress::Progress::start(format == Format::Json);
    progress.waiting(&format!("approved plan {plan_hash} of run {id}; executing"));
    let on_event = progress.on_event();
    let mut run = svc.drive(id, Some(&on_event)).await.map_err(err)?;
    // A run whose steps wait on a long operation is driven again until it settles.
    for _ in 0..3 {
        if run.status != RunStatus::Running {
            break;
        }
        run = svc.drive(id, Some(&on_event)).await.map_err(err)?;
    }
    let report = svc.report(id).await.map_err(err)?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run, "report": report}))?
        ),
        Format::Table => {
            if let Some(report) = &report {
                print!("{}", report.summary());
            }
            println!("run {} is {}", run.id, run.status.as_str());
        }
    }
    Ok(if matches!(run.status, RunStatus::Failed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn reject(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let run = service(config)
        .await?
        .reject(id, &caller())
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&run)?),
        Format::Table => println!("rejected run {}; it is {}", run.id, run.status.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits 1 (with the service's reason) when the run has started executing or finished.
pub async fn cancel(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let run = service(config)
        .await?
        .cancel(id, &caller())
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&run)?),
        Format::Table => println!("cancelled run {}; it is {}", run.id, run.status.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(config: &Config, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let report = service(config)
        .await?
        .rollback(id, &caller())
        .await
        .map_err(err)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            for (step, requests) in &report.undone {
                println!("undone: {step}");
                for r in requests {
                    println!(
                        "  {} {} → {}{}",
                        r.method,
                        r.url,
                        r.status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "no answer".into()),
                        r.request_id
                            .as_ref()
                            .map(|i| format!(" [request-id {i}]"))
                            .unwrap_or_default()
                    );
                }
            }
            for (step, why) in &report.refused {
                println!("cannot undo {step}: {why}");
            }
            for (step, why) in &report.kept {
                println!("kept {step}: {why}");
            }
            for (step, why) in &report.failed {
                println!("FAILED to undo {step}: {why}");
            }
        }
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Exits 1 when the chain is broken; `--format json` prints `{"intact", "records"}` or
/// `{"intact": false, "error"}` on stdout either way, so a script need not parse stderr.
pub async fn audit_verify(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let service = service(config).await?;
    let verified = service.store().verify_audit().await;
    match (&verified, format) {
        (Ok(n), Format::Json) => println!("{}", serde_json::json!({"intact": true, "records": n})),
        (Ok(n), Format::Table) => println!("audit trail intact: {n} records, hash chain verified"),
        (Err(e), Format::Json) => println!(
            "{}",
            serde_json::json!({"intact": false, "error": e.to_string()})
        ),
        (Err(e), Format::Table) => eprintln!("audit trail BROKEN: {e}"),
    }
    Ok(if verified.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
