//! `riposte`: the command line. Every command takes what it needs from `riposte::app::App`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The format is configuration (`[log] format`); a configuration that does not load is the
    // command's to report, so logging falls back to text for it.
    let config = riposte::config::Config::load(cli.config.as_deref());
    let format = config.as_ref().map(|c| c.log.format).unwrap_or_default();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RIPOSTE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    match format {
        riposte::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        riposte::config::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
    }
    match cli::run(cli, config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
