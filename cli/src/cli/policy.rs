//! `riposte policy test` and `riposte policy eval --input FILE`: the tools a policy author
//! needs to change `policies/` with confidence — the Rego unit tests, and one decision shown
//! with its reasons for an input document they wrote or copied from a plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::Format;
use riposte::config::Config;
use riposte::policy::{self, RegoGuard, Verdict};

fn policy_dir(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| config.policies.clone());
    if !dir.is_dir() {
        anyhow::bail!(
            "the policies directory {} does not exist; set `policies` in riposte.toml or pass --dir",
            dir.display()
        );
    }
    Ok(dir)
}

/// Runs every `test_*` rule of the `*_test.rego` files; exit 1 when one fails.
pub fn test(config: &Config, dir: Option<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
    let dir = policy_dir(config, dir)?;
    let outcomes = policy::run_tests(&dir, &config.guardrails)?;
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let passed = outcomes.len() - failed;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": passed, "failed": failed, "tests": outcomes,
            }))?
        ),
        Format::Table => {
            for o in &outcomes {
                match &o.message {
                    None => println!("test {} ... ok", o.name),
                    Some(m) => println!("test {} ... FAILED ({}: {m})", o.name, o.file.display()),
                }
            }
            if outcomes.is_empty() {
                eprintln!("no test_* rules in {}/*_test.rego", dir.display());
            }
            println!(
                "\ntest result: {}. {passed} passed; {failed} failed",
                if failed == 0 { "ok" } else { "FAILED" }
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints the decision the policies give for one input document. The decision is the output,
/// so a denial still exits 0 (as `plan` does).
pub fn eval(
    config: &Config,
    dir: Option<PathBuf>,
    input: &Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let dir = policy_dir(config, dir)?;
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read input {}", input.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: invalid JSON: {e}",
            input.display(),
            e.line(),
            e.column()
        )
    })?;
    let guard = RegoGuard::load(&dir, &config.guardrails)?;
    let decision = guard.decide_document(&doc);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&decision)?),
        Format::Table => {
            let verdict = match decision.decision {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
                Verdict::RequireApproval => "require_approval",
            };
            println!("decision: {verdict}");
            for r in &decision.reasons {
                println!("  - {r}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
