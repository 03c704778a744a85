//! The `riposte` command line (DESIGN.md §3). Each command is one file; this one parses
//! arguments and dispatches. Errors reach `main` with context; exit codes: 0 success,
//! 1 something the user must act on, 2 usage.

mod alerts;
mod catalogue;
mod common;
mod demo;
mod emulator;
mod evidence;
mod ops;
mod plan;
mod policy;
mod preflight;
mod progress;
mod report;
mod run;
pub mod serve;
mod token;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use riposte::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "riposte",
    version,
    about = "Automated response for Microsoft Entra ID and Azure, from declarative playbooks under guardrail policies."
)]
pub struct Cli {
    /// Configuration file (default ./riposte.toml; may be absent).
    #[arg(long, global = true, env = "RIPOSTE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks and policies: every problem as file:line:column: message; exit 1 if any.
    Validate {
        /// Files or directories (default: the configured playbooks and policies directories).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Dry run: print the plan an alert would produce. Never mutates.
    Plan {
        /// The alert payload (JSON).
        #[arg(long)]
        alert: PathBuf,
        /// A playbook name or file; default: every playbook whose triggers match.
        #[arg(long)]
        playbook: Option<String>,
        /// The alert's source (lacework, sentinel, defender, azure-monitor, generic);
        /// default: detected.
        #[arg(long)]
        source: Option<String>,
        /// Playbook inputs, `name=value`.
        #[arg(long = "input", value_name = "K=V")]
        inputs: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Plan, then execute when the mode is enforce (`mode`, RIPOSTE_MODE or --enforce);
    /// in dry-run it prints the plan and sends nothing.
    Run {
        /// The alert payload (JSON); omit it for a manual run with --playbook.
        #[arg(long)]
        alert: Option<PathBuf>,
        /// A playbook name or file; default: every playbook whose triggers match the alert.
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long)]
        source: Option<String>,
        /// Playbook inputs, `name=value`.
        #[arg(long = "input", value_name = "K=V")]
        inputs: Vec<String>,
        /// For a manual run: the user (UPN or object id) the run acts on.
        #[arg(long)]
        principal: Option<String>,
        /// For a manual run: an affected resource's ARM id (repeatable).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Execute even if the configured mode is dry-run.
        #[arg(long)]
        enforce: bool,
        /// If the run must wait for an approval, wait for it here and then execute.
        #[arg(long)]
        wait: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One action, manually, through the same plan → guard → execute path.
    Act {
        /// The action, e.g. entra.disable_user.
        action: String,
        /// Parameters, `name=value`.
        #[arg(long = "param", value_name = "K=V")]
        params: Vec<String>,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long = "resource")]
        resources: Vec<String>,
        #[arg(long)]
        enforce: bool,
        /// If the run must wait for an approval, wait for it here and then execute.
        #[arg(long)]
        wait: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Guardrail policies: run their Rego unit tests, or show one decision with its reasons.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The action catalogue with each action's permissions.
    Actions {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print the playbook JSON Schema (for editors).
    Schema,
    /// Start the local Entra/Graph/ARM/Log Analytics/Lacework tenant; prints its address.
    Emulator {
        /// Loopback address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Tenant file (YAML); default: the bundled fixture tenant.
        #[arg(long)]
        tenant: Option<PathBuf>,
    },
    /// Compare the permissions the playbooks need with what the configured identity holds.
    Preflight {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The service: alert ingestion, the engine and the HTTP API.
    Serve,
    /// The emulator, the service and the bundled Lacework alert end to end, on embedded
    /// defaults; prints what happens and leaves the API up.
    Demo {
        /// Where the API listens (loopback).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Exit once the alert's run has finished instead of leaving the API up.
        #[arg(long)]
        once: bool,
    },
    /// Runs in the store: `runs list`, `runs show ID`.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Approve a run's plan; the hash must be the plan's, and you must not be its requester.
    Approve {
        id: String,
        #[arg(long)]
        plan_hash: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Reject a run awaiting approval.
    Reject {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Stop a run that has not started executing (pending, planning, awaiting approval).
    Cancel {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Stored alerts: `alerts list [--status S]`, `alerts retry ID`.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Undo a run: recorded compensations, newest step first; says what cannot be undone.
    Rollback {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A run's evidence, byte for byte as stored: `evidence list ID`, `evidence get ID STEP`.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// The incident report of a run: what fired, who, what was found (timeline, the seed's
    /// chart), what was done, what can be undone, every evidence digest.
    Report {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: report::ReportFormat,
    },
    /// The audit trail: `audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a shell completion script: `riposte completions bash > /etc/bash_completion.d/riposte`,
    /// zsh (into a directory on `$fpath`, as `_riposte`), or fish.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// API tokens for `riposte serve`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first.
    List {
        /// Only runs with this status (pending, planning, awaiting_approval, running,
        /// succeeded, failed, denied, rolled_back, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One run: plan, step timeline, evidence digests, outcome.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts, newest first, with their attempts and, when failed, why.
    List {
        /// Only alerts with this status (pending, matched, unmatched, failed).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Make a failed alert pending again, its attempts reset; the service matches it next.
    Retry {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// The run's evidence with step, position, size, content type and sha256.
    List {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One item's bytes exactly as stored, to stdout or --out; its digest on stderr.
    Get {
        id: String,
        /// The step that collected it.
        step: String,
        /// Which of the step's items, from 0 (a paged or for_each step keeps several).
        #[arg(default_value_t = 0)]
        n: usize,
        /// Write the bytes to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: detects any edited or removed record.
    Verify {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh API token once, and the `[[server.tokens]]` entry (its sha256) to paste
    /// into riposte.toml.
    New {
        /// Who holds the token; runs and approvals record this name.
        #[arg(long, value_parser = token::parse_name)]
        name: String,
        /// viewer, responder, approver or admin (each includes the ones before it).
        #[arg(long)]
        role: riposte::config::Role,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run every `test_*` rule in the policies directory's `*_test.rego` files; exit 1 if one fails.
    Test {
        /// The policies directory (default: the configured one).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show the decision, with its reasons, for one input document (JSON).
    Eval {
        /// The input document, as documented in policies/README.md.
        #[arg(long)]
        input: PathBuf,
        /// The policies directory (default: the configured one).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs the command line with the configuration `main` loaded once (an error is reported by
/// the commands that need a configuration, not by those that do not); returns the exit code.
pub async fn run(
    cli: Cli,
    config: Result<Config, riposte::config::ConfigError>,
) -> anyhow::Result<ExitCode> {
    let load_config = || config.clone();
    match cli.command {
        Command::Validate { paths, format } => validate::run(&load_config()?, paths, format),
        Command::Plan {
            alert,
            playbook,
            source,
            inputs,
            format,
        } => {
            plan::run(
                &load_config()?,
                plan::Args {
                    alert,
                    playbook,
                    source,
                    inputs,
                    format,
                },
            )
            .await
        }
        Command::Run {
            alert,
            playbook,
            source,
            inputs,
            principal,
            resources,
            enforce,
            wait,
            format,
        } => {
            let args = run::RunArgs {
                alert,
                playbook,
                source,
                inputs,
                principal,
                resources,
                enforce,
                wait,
                format,
            };
            run::run(&load_config()?, args).await
        }
        Command::Act {
            action,
            params,
            principal,
            resources,
            enforce,
            wait,
            format,
        } => {
            let args = run::ActArgs {
                action,
                params,
                principal,
                resources,
                enforce,
                wait,
                format,
            };
            run::act(&load_config()?, args).await
        }
        Command::Policy { command } => match command {
            PolicyCommand::Test { dir, format } => policy::test(&load_config()?, dir, format),
            PolicyCommand::Eval { input, dir, format } => {
                policy::eval(&load_config()?, dir, &input, format)
            }
        },
        Command::Actions { format } => catalogue::actions(format),
        Command::Schema => catalogue::schema(),
        Command::Emulator { listen, tenant } => emulator::run(listen, tenant).await,
        Command::Preflight { format } => preflight::run(&load_config()?, format).await,
        Command::Serve => serve::run(&load_config()?).await,
        Command::Demo { listen, once } => demo::run(listen, once).await,
        Command::Runs { command } => match command {
            RunsCommand::List {
                status,
                limit,
                format,
            } => ops::list(&load_config()?, status, limit, format).await,
            RunsCommand::Show { id, format } => ops::show(&load_config()?, &id, format).await,
        },
        Command::Approve {
            id,
            plan_hash,
            format,
        } => ops::approve(&load_config()?, &id, &plan_hash, format).await,
        Command::Reject { id, format } => ops::reject(&load_config()?, &id, format).await,
        Command::Cancel { id, format } => ops::cancel(&load_config()?, &id, format).await,
        Command::Alerts { command } => match command {
            AlertsCommand::List {
                status,
                limit,
                format,
            } => alerts::list(&load_config()?, status, limit, format).await,
            AlertsCommand::Retry { id, format } => {
                alerts::retry(&load_config()?, &id, format).await
            }
        },
        Command::Rollback { id, format } => ops::rollback(&load_config()?, &id, format).await,
        Command::Evidence { command } => match command {
            EvidenceCommand::List { id, format } => {
                evidence::list(&load_config()?, &id, format).await
            }
            EvidenceCommand::Get { id, step, n, out } => {
                evidence::get(&load_config()?, &id, &step, n, out.as_deref()).await
            }
        },
        Command::Report { id, format } => report::run(&load_config()?, &id, format).await,
        Command::Audit {
            command: AuditCommand::Verify { format },
        } => ops::audit_verify(&load_config()?, format).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "riposte",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::New { name, role, format },
        } => token::new(&name, role, format),
    }
}

/// `k=v` pairs from `--input`/`--param`.
pub(crate) fn parse_pairs(
    pairs: &[String],
    flag: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--{flag} `{p}` must be written name=value"))
        })
        .collect()
}
