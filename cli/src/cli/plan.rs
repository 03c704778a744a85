use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{Format, common, parse_pairs};
use riposte::app::App;
use riposte::config::Config;
use riposte::plan::{self, Mode, Planner};

pub struct Args {
    pub alert: PathBuf,
    pub playbook: Option<String>,
    pub source: Option<String>,
    pub inputs: Vec<String>,
    pub format: Format,
}

pub async fn run(config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let app = App::new(config.clone())?;
    let alert = common::read_alert(&app, &args.alert, args.source.as_deref()).await?;
    let inputs = parse_pairs(&args.inputs, "input")?;
    let playbooks = app.select_playbooks(args.playbook.as_deref(), &alert)?;
    let lookup = app.connectors.planning_lookup();
    let planner = Planner {
        endpoints: &app.endpoints,
        lookup: lookup.as_ref(),
        settings: &app.config.actions,
        guard: app.guard.as_ref(),
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
