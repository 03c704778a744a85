//! `riposte report ID [--format html|md]`: the incident report of a run from the configured
//! store, on stdout (redirect it to a file to open or attach it).

use std::io::Write;
use std::process::ExitCode;

use super::ops::{err, service};
use riposte::config::Config;
use riposte::report::{self, Format};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ReportFormat {
    #[default]
    Html,
    Md,
}

pub async fn run(config: &Config, id: &str, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let service = service(config).await?;
    let gathered = report::for_run(service.as_ref(), id).await.map_err(err)?;
    let format = match format {
        ReportFormat::Html => Format::Html,
        ReportFormat::Md => Format::Markdown,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report::render(&gathered, format).as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
