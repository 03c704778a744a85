//! Alert content can only fill the declared template slots, encoded: it cannot add, remove or
//! redirect a request, whatever it contains.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use riposte::actions::ActionSettings;
use riposte::alert::{Alert, Principal, PrincipalType, Resource, Severity, Source};
use riposte::connectors::{Endpoints, NoLookup};
use riposte::plan::{Mode, Planner};
use riposte::policy::Unguarded;

const PLAYBOOK: &str = "\
name: slots
steps:
  - id: look
    uses: entra.get_user
    with:
      user: ${{ alert.principal.upn }}
  - id: suspend
    uses: entra.disable_user
    with:
      user: ${{ alert.principal.upn }}
";

fn alert(upn: &str, title: &str) -> Alert {
    Alert {
        id: "a-1".into(),
        source: Source::Generic,
        kind: "first_access".into(),
        title: title.into(),
        severity: Severity::High,
        observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap(),
        principal: Some(Principal {
            upn: Some(upn.into()),
            object_id: None,
            tenant_id: None,
            kind: PrincipalType::User,
        }),
        resources: vec![Resource::from_id(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v",
        )],
        operation: None,
        source_ip: None,
        needs_enrichment: false,
        raw: serde_json::json!({"title": title}),
    }
}

fn plan_for(upn: &str, title: &str) -> riposte::plan::Plan {
    let playbook = riposte::playbook::load_str(PLAYBOOK, Path::new("slots.yaml")).unwrap();
    let endpoints = Endpoints::default();
    let planner = Planner {
        endpoints: &endpoints,
        lookup: &NoLookup,
        settings: &ActionSettings::default(),
        guard: &Unguarded,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(planner.plan(
        &playbook,
        &alert(upn, title),
        &BTreeMap::new(),
        Mode::DryRun,
        "run-1",
        Utc::now(),
    ))
    .unwrap()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn alert_values_fill_one_encoded_slot(
        upn in "[a-zA-Z0-9@._#'/?&=%{}$ \\-]{1,40}|\\{\\{ 7\\*7 \\}\\}|\\$\\{\\{ run\\.id \\}\\}",
        title in ".{0,40}",
    ) {
        prop_assume!(!upn.starts_with('$') && !upn.starts_with('⟨'));
        let plan = plan_for(&upn, &title);
        let requests: Vec<_> = plan.steps.iter().flat_map(|s| s.requests.iter()).collect();
        if !riposte::alert::is_user_key(&upn) {
            // Not an object id or a UPN: nobody to act on, so nothing is planned at all.
            prop_assert!(requests.is_empty(), "planned for {:?}: {:?}", upn, requests);
            return Ok(());
        }
        // The same two requests, whatever the alert says.
        prop_assert_eq!(requests.len(), 2);
        let base = "https://graph.microsoft.com/v1.0/users/";
        for r in &requests {
            prop_assert!(r.url.starts_with(base), "redirected: {}", r.url);
            let rest = &r.url[base.len()..];
            let (segment, query) = match rest.split_once('?') {
                Some((seg, q)) => (seg, Some(q)),
                None => (rest, None),
            };
            // One path segment, holding exactly the alert's value.
            prop_assert!(!segment.contains('/') && !segment.contains('#'), "segment escaped: {}", r.url);
            prop_assert_eq!(decode(segment), upn.clone());
            if let Some(q) = query {
                prop_assert!(q.starts_with("$select="), "query added: {}", r.url);
                prop_assert!(!q.contains('&'), "parameter added: {}", r.url);
            }
        }
        prop_assert_eq!(requests[1].method.as_str(), "PATCH");
        prop_assert_eq!(requests[1].body.clone(), Some(serde_json::json!({"accountEnabled": false})));
    }
}

#[test]
fn template_syntax_in_alert_values_is_data() {
    let plan = plan_for("{{ 7*7 }}@contoso.com", "${{ run.id }} {{ 7*7 }}");
    // Not a user key: the step is not planned, and its reason quotes the text as it came.
    let reason = plan.steps[1].reason.clone().unwrap_or_default();
    assert!(reason.contains("{{ 7*7 }}@contoso.com"), "{reason}");
    assert!(plan.steps.iter().all(|s| s.requests.is_empty()));
    assert_eq!(plan.alert.title, "${{ run.id }} {{ 7*7 }}");
    // A real UPN with characters that need care fills its one slot, as data.
    let plan = plan_for("o'brien@contoso.com", "t");
    let url = &plan.steps[1].requests[0].url;
    assert_eq!(
        decode(url.rsplit('/').next().unwrap()),
        "o'brien@contoso.com"
    );
}
