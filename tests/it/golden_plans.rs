//! Golden plans: the bundled playbook planned for a sample alert of every source, without
//! credentials (every lookup unknown). A change to what riposte would send shows up here.

use crate::common;

use std::collections::BTreeMap;

use riposte::connectors::{Endpoints, NoLookup};
use riposte::plan::{Mode, Planner};
use riposte::policy::Unguarded;

fn golden(fixture: &str, source: Option<&str>) -> riposte::plan::Plan {
    let playbook = riposte::playbook::load_file(
        &common::root().join("playbooks/first-access-containment.yaml"),
    )
    .unwrap();
    let alert =
        riposte::alert::parse_alert(&common::fixture(fixture), source, &common::alert_settings())
            .unwrap();
    let endpoints = Endpoints::default();
    let settings =
        common::action_settings("https://contoso.webhook.office.com/webhookb2/secret-path");
    let planner = Planner {
        endpoints: &endpoints,
        lookup: &NoLookup,
        settings: &settings,
        guard: &Unguarded,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(planner.plan(
        &playbook,
        &alert,
        &BTreeMap::new(),
        Mode::DryRun,
        common::RUN_ID,
        common::now(),
    ))
    .unwrap()
}

macro_rules! golden_test {
    ($name:ident, $fixture:expr, $source:expr) => {
        #[test]
        fn $name() {
            let plan = golden($fixture, $source);
            insta::assert_json_snapshot!(stringify!($name), plan, {
                ".playbook.sha256" => "[playbook sha256]",
                ".plan_hash" => "[plan hash]",
                ".alert.raw" => "[raw payload]",
            });
        }
    };
}

golden_test!(lacework_details, "lacework-details.json", None);
golden_test!(
    lacework_details_events,
    "lacework-details-events.json",
    None
);
golden_test!(lacework_webhook_unenriched, "lacework-webhook.json", None);
golden_test!(sentinel_incident, "sentinel-incident.json", None);
golden_test!(
    sentinel_incident_pascal,
    "sentinel-incident-pascal.json",
    None
);
golden_test!(
    azure_monitor_activity_log,
    "azure-monitor-activity-log.json",
    None
);
golden_test!(defender_alert, "defender-alert.json", None);
golden_test!(generic, "generic.json", Some("generic"));

#[test]
fn the_plan_hash_covers_requests_and_nothing_else() {
    let a = golden("lacework-details.json", None);
    let b = golden("lacework-details.json", None);
    assert_eq!(a.plan_hash, b.plan_hash, "planning is deterministic");
    let mut changed = a.steps.clone();
    changed[4].requests[0].body = Some(serde_json::json!({"accountEnabled": true}));
    assert_ne!(riposte::plan::plan_hash(&changed), a.plan_hash);
}

#[test]
fn every_mutating_request_is_absolute_and_encoded() {
    for fixture in [
        "lacework-details.json",
        "sentinel-incident.json",
        "defender-alert.json",
    ] {
        let plan = golden(fixture, None);
        for step in &plan.steps {
            for r in &step.requests {
                assert!(r.url.starts_with("https://"), "{}: {}", step.id, r.url);
                // Placeholders (values known only at run time) are prose; everything else is encoded.
                let known: String = r
                    .url
                    .split('⟨')
                    .map(|part| part.split_once('⟩').map_or(part, |(_, rest)| rest))
                    .collect();
                assert!(
                    !known.contains(' ') && !known.contains('#'),
                    "{}: unencoded text in {}",
                    step.id,
                    r.url
                );
            }
        }
    }
}
