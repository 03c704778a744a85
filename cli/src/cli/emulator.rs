use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use riposte_emulator::{Emulator, Tenant};

/// Starts the local tenant and serves until Ctrl-C.
pub async fn run(listen: SocketAddr, tenant: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if !listen.ip().is_loopback() {
        anyhow::bail!("the emulator listens on loopback addresses only (got {listen})");
    }
    let tenant = match tenant {
        Some(path) => Tenant::from_file(&path)
            .with_context(|| format!("cannot load tenant {}", path.display()))?,
        None => Tenant::default_fixture(),
    };
    let handle = Emulator::start(listen, tenant).context("cannot start the emulator")?;
    println!("{}", handle.base_url());
    eprintln!(
        "emulator listening on {} (Entra, Graph, ARM, Log Analytics, Lacework, IMDS; control routes under /_emulator/). Ctrl-C stops it.",
        handle.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
