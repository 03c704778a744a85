//! `riposte demo`: the emulator, the service and the bundled Lacework alert, end to end, on
//! embedded defaults. It prints what happens and leaves the API up for exploring.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use riposte::config::Config;
use riposte::engine::service::{Caller, ServiceApi};
use riposte::store::RunStatus;
use riposte_emulator::{Emulator, Tenant};

/// The emulator's webhook sink the demo's notifications go to.
const DEMO_SINK: &str = "soc-channel";
const WEBHOOK_ALERT: &str = include_str!("../../../tests/fixtures/alerts/lacework-webhook.json");
const PLAYBOOK: &str = include_str!("../../../playbooks/first-access-containment.yaml");
/// The query files the bundled playbook names, written beside it outside a checkout.
const QUERIES: [(&str, &str); 3] = [
    (
        "first-access-anomalies.kql",
        include_str!("../../../playbooks/first-access-anomalies.kql"),
    ),
    (
        "first-access-account-computer.kql",
        include_str!("../../../playbooks/first-access-account-computer.kql"),
    ),
    (
        "first-access-rare-processes.kql",
        include_str!("../../../playbooks/first-access-rare-processes.kql"),
    ),
];
const POLICY: &str = include_str!("../../../policies/guardrails.rego");
const POLICY_DATA: &str = include_str!("../../../policies/data.json");

pub async fn run(listen: SocketAddr, once: bool) -> anyhow::Result<ExitCode> {
    if !listen.ip().is_loopback() {
        anyhow::bail!("the demo listens on loopback addresses only (got {listen})");
    }
    let emulator = Emulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Tenant::default_fixture(),
    )
    .context("cannot start the emulator")?;
    let base = emulator.base_url();
    let dir = std::env::temp_dir().join(format!("riposte-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (playbooks, policies) = bundled_files(&dir)?;
    let token = super::token::fresh_token();
    let digest = riposte::server::token_digest(&token);
    let toml = format!(
        "mode = \"enforce\"\nplaybooks = \"{}\"\npolicies = \"{}\"\n\n[store]\nurl = \"sqlite://{}\"\n\n[server]\nlisten = \"{listen}\"\n\n[[server.tokens]]\nname = \"demo-admin\"\nrole = \"admin\"\nsha256 = \"{digest}\"\n\n{}",
        playbooks.display(),
        policies.display(),
        dir.join("riposte.db").display(),
        riposte_emulator::client_config_toml_with_notify(&base, DEMO_SINK),
    );
    let config_path = dir.join("riposte.toml");
    std::fs::write(&config_path, &toml)?;
    let config = Config::load(Some(&config_path))?;

    println!("riposte demo");
    println!("  emulator (Entra, Graph, ARM, Log Analytics, Lacework): {base}");
    println!("  configuration: {}", config_path.display());
    let service = riposte::app::App::new(config.clone())?.service().await?;
    // The notifier starts following the audit trail here, before anything happens.
    service.tell_pass().await?;

    println!(
        "\n1. Lacework posts its webhook: \"New Azure API Call Invoked by User Accessed Resource for the First Time\""
    );
    let ingested = service
        .ingest(
            "lacework",
            WEBHOOK_ALERT.as_bytes(),
            &Caller {
                name: "lacework-webhook".into(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "   stored durably as alert {} (Lacework event {})",
        ingested.alert_id, ingested.source_id
    );

    println!(
        "2. riposte fetches the alert's Details from Lacework, matches the first-access playbook, plans and runs it"
    );
    service
        .process_alerts()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = service
        .runs(1, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .next()
        .context("no run started")?;
    let on_event = |e: &riposte::engine::Event<'_>| {
        if let riposte::engine::Event::StepFinished { report } = e {
            println!(
                "   {:16} {:?}{}",
                report.id,
                report.outcome,
                report
                    .reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            );
        }
    };
    let mut record = service
        .drive(&run.id, Some(&on_event))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..5 {
        if record.status != RunStatus::Running {
            break;
        }
        record = service
            .drive(&run.id, Some(&on_event))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "   run {} is {:?} (plan {})",
        record.id,
        record.status,
        record.plan_hash.as_deref().unwrap_or("-")
    );

    let state = emulator.state();
    println!("\n3. What changed in the tenant:");
    for (counter, what) in [
        ("user_disabled", "accounts disabled"),
        ("sessions_revoked", "sign-in sessions revoked"),
        ("role_assignments_deleted", "role assignments removed"),
        ("password_profile_updated", "password changes forced"),
        ("group_member_added", "users added to the MFA group"),
        ("snapshots_created", "disk snapshots taken"),
        ("locks_created", "snapshots locked against deletion"),
    ] {
        println!("   {:>3} {what}", state.counter(counter));
    }
    // The service's own notices (awaiting approval, finished, failed) follow the audit trail;
    // one pass now tells the channel about this run.
    service.tell_pass().await?;
    let messages = state.webhook_messages(Some(DEMO_SINK));
    println!(
        "   {:>3} messages posted to the SOC channel (the emulator's webhook sink {DEMO_SINK})",
        messages.len()
    );
    let audit = service.store().verify_audit().await?;
    println!("   audit trail: {audit} hash-chained records, verified");

    if once {
        emulator.shutdown().await;
        return Ok(if record.status == RunStatus::Succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    // The requested port, or any free one if it is taken (another riposte, say).
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
    };
    let api = listener.local_addr()?;
    println!("\n4. The API and the review page are up. Your admin token (shown once): {token}");
    println!("   review page: http://{api}/ (sign in with the token)");
    println!("   curl -H 'Authorization: Bearer {token}' http://{api}/v1/runs");
    println!(
        "   curl -H 'Authorization: Bearer {token}' http://{api}/v1/runs/{}",
        record.id
    );
    println!(
        "   curl -X POST -H 'Authorization: Bearer {token}' http://{api}/v1/runs/{}/rollback",
        record.id
    );
    println!(
        "   riposte --config {} runs show {}",
        config_path.display(),
        record.id
    );
    println!(
        "   riposte --config {} report {} --format md   (or http://{api}/v1/runs/{}/report)",
        config_path.display(),
        record.id,
        record.id
    );
    let worker = service.spawn_worker();
    let code = super::serve::serve_on(listener, service, &config.server, None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), worker.stop()).await;
    emulator.shutdown().await;
    code
}

/// The playbooks and policies directories: the checkout's when run from one, else the
/// bundled copies written beside the demo's database.
fn bundled_files(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let here = (PathBuf::from("playbooks"), PathBuf::from("policies"));
    if here.0.join("first-access-containment.yaml").is_file()
        && here.1.join("guardrails.rego").is_file()
    {
        return Ok((
            std::fs::canonicalize(&here.0)?,
            std::fs::canonicalize(&here.1)?,
        ));
    }
    let (p, q) = (dir.join("playbooks"), dir.join("policies"));
    std::fs::create_dir_all(&p)?;
    std::fs::create_dir_all(&q)?;
    std::fs::write(p.join("first-access-containment.yaml"), PLAYBOOK)?;
    for (name, text) in QUERIES {
        std::fs::write(p.join(name), text)?;
    }
    std::fs::write(q.join("guardrails.rego"), POLICY)?;
    std::fs::write(q.join("data.json"), POLICY_DATA)?;
    Ok((p, q))
}
