use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{Format, common, parse_pairs};
use crate::alert;
use crate::config::Config;
use crate::plan::{self, Mode, Planner};
use crate::playbook::{self, Playbook};
use crate::policy;

pub struct Args {
    pub alert: PathBuf,
    pub playbook: Option<String>,
    pub source: Option<String>,
    pub inputs: Vec<String>,
    pub format: Format,
}

pub async fn run(config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let connectors = common::connectors(config)?;
    let alert =
        common::read_alert(config, &connectors, &args.alert, args.source.as_deref()).await?;
    let inputs = parse_pairs(&args.inputs, "input")?;
    let playbooks = select_playbooks(config, args.playbook.as_deref(), &alert)?;
    let endpoints = config.azure.endpoints()?;
    let lookup = common::lookup(config, &connectors);
    // No policies directory: unguarded, and every decision says so. A directory that does not
    // load is an error — planning must not quietly drop the guardrails.
    let guard = policy::guard_for(config).with_context(|| {
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
    let mut plans = Vec::new();
    for p in &playbooks {
        let run_id = uuid::Uuid::now_v7().to_string();
        let plan = planner
            .plan(
                p,
                &alert,
                &inputs,
                Mode::DryRun,
                &run_id,
                chrono::Utc::now(),
            )
            .await
            .with_context(|| format!("cannot plan playbook {}", p.name))?;
        plans.push(plan);
    }
    match args.format {
        Format::Json if plans.len() == 1 => {
            println!("{}", serde_json::to_string_pretty(&plans[0])?)
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&plans)?),
        Format::Table => {
            for p in &plans {
                print!("{}", plan::render_table(p));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--playbook` as a file or a name, or every playbook whose triggers match.
pub(super) fn select_playbooks(
    config: &Config,
    wanted: Option<&str>,
    alert: &alert::Alert,
) -> anyhow::Result<Vec<Playbook>> {
    if let Some(w) = wanted {
        let path = Path::new(w);
        if path.is_file() {
            return Ok(vec![playbook::load_file(path)?]);
        }
        let (all, diags) = playbook::load_all(std::slice::from_ref(&config.playbooks));
        if let Some(p) = all.into_iter().find(|p| p.name == w) {
            return Ok(vec![p]);
        }
        if !diags.is_empty() {
            anyhow::bail!(
                "no playbook named `{w}` loaded; problems found:\n{}",
                playbook::Diagnostics(diags)
            );
        }
        anyhow::bail!("no playbook named `{w}` in {}", config.playbooks.display());
    }
    let (all, diags) = playbook::load_all(std::slice::from_ref(&config.playbooks));
    if !diags.is_empty() {
        anyhow::bail!(
            "playbooks have problems (run `riposte validate`):\n{}",
            playbook::Diagnostics(diags)
        );
    }
    let matched: Vec<Playbook> = plan::select(&all, alert).into_iter().cloned().collect();
    if matched.is_empty() {
        anyhow::bail!(
            "no playbook in {} matches this alert (source {}, kind {}, severity {}); pass --playbook NAME",
            config.playbooks.display(),
            alert.source,
            alert.kind,
            alert.severity
        );
    }
    Ok(matched)
}
