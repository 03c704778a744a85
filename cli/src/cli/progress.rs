//! Progress on stderr while a run executes: each step as it starts and finishes, each request
//! with its status and Microsoft's request id, and — while a step waits on something slow (an
//! ARM long-running operation being polled, a snapshot copying) — a line every few seconds
//! saying what is still running and for how long, so a responder at 3 a.m. can tell a slow
//! tenant from a hung command. Stdout stays for the result (`--format json` parses cleanly).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riposte::engine::Event;

/// How often a step still running is mentioned.
const TICK: Duration = Duration::from_secs(5);

/// Prints progress until dropped.
pub struct Progress {
    running: Arc<Mutex<BTreeMap<String, (String, Instant)>>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    quiet: bool,
}

impl Progress {
    /// Silent when `quiet` (nothing on stderr but warnings).
    pub fn start(quiet: bool) -> Progress {
        let running: Arc<Mutex<BTreeMap<String, (String, Instant)>>> = Arc::default();
        let ticker = (!quiet).then(|| {
            let running = Arc::clone(&running);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                every.tick().await;
                loop {
                    every.tick().await;
                    let lines: Vec<String> = running
                        .lock()
                        .map(|r| {
                            r.iter()
                                .filter(|(_, (_, since))| since.elapsed() >= TICK)
                                .map(|(id, (action, since))| {
                                    format!(
                                        "  … {id} ({action}) still running after {}s (waiting on the API: long-running operation or retry)",
                                        since.elapsed().as_secs()
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    for line in lines {
                        eprintln!("{line}");
                    }
                }
            })
        });
        Progress {
            running,
            ticker,
            quiet,
        }
    }

    /// Says that the command now waits for something other than a step (an approval).
    /// Said even when quiet: stderr is not the data, and a command that sits silently
    /// waiting for a person looks hung.
    pub fn waiting(&self, what: &str) {
        eprintln!("… {what}");
    }

    /// The engine's progress events, printed.
    pub fn on_event(&self) -> impl Fn(&Event<'_>) + Send + Sync + use<> {
        let running = Arc::clone(&self.running);
        let quiet = self.quiet;
        move |e: &Event<'_>| {
            match e {
                Event::StepStarted { id, action } => {
                    if let Ok(mut r) = running.lock() {
                        r.insert(id.to_string(), (action.to_string(), Instant::now()));
                    }
                }
                Event::StepFinished { report } => {
                    if let Ok(mut r) = running.lock() {
                        r.remove(&report.id);
                    }
                }
                Event::Request { .. } => {}
            }
            if !quiet {
                eprintln!("{}", line(e));
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

/// One event as a line.
pub fn line(e: &Event<'_>) -> String {
    match e {
        Event::StepStarted { id, action } => format!("▶ {id} ({action})"),
        Event::Request { step, record } => format!(
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
        Event::StepFinished { report } => format!(
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
}
