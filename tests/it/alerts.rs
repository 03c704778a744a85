//! Every alert fixture through the public parser: good ones are detected without `--source`
//! and normalised to the one first-access scenario; bad ones fail naming the field path.

use crate::common;

use common::fixture;
use riposte::alert::{
    AlertError, AlertSettings, PrincipalType, Severity, Source, enrich_lacework, parse_alert,
};
use serde_json::Value;

const USER: &str = "alex.wilber@contoso.com";
const USER_ID: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
const TENANT: &str = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
const OPERATION: &str = "Microsoft.Compute/virtualMachines/runCommand/action";
const IP: &str = "203.0.113.45";

/// The `[alerts.generic]` configuration `generic.json` needs:
///
/// ```toml
/// [alerts.generic]
/// id = "/alert/uid"
/// title = "/alert/rule"
/// severity = "/alert/risk"
/// observed_at = "/alert/detected"
/// principal_upn = "/alert/actor/login"
/// principal_object_id = "/alert/actor/aad_object_id"
/// tenant_id = "/alert/actor/tenant"
/// resources = "/alert/targets"
/// operation = "/alert/action"
/// source_ip = "/alert/actor/ip"
/// ```
fn generic_settings() -> AlertSettings {
    common::alert_settings()
}

/// Each good fixture: its detected source and its id.
const GOOD: [(&str, Source, &str); 7] = [
    ("lacework-details.json", Source::Lacework, "51234"),
    ("lacework-details-events.json", Source::Lacework, "51234"),
    (
        "sentinel-incident.json",
        Source::Sentinel,
        "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-sec/providers/Microsoft.SecurityInsights/Incidents/3f9b7a10-0000-4c1d-8e2f-00000000b201",
    ),
    (
        "sentinel-incident-pascal.json",
        Source::Sentinel,
        "3f9b7a10-0000-4c1d-8e2f-00000000b202",
    ),
    (
        "azure-monitor-activity-log.json",
        Source::AzureMonitor,
        "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/providers/Microsoft.AlertsManagement/alerts/9a8b7c6d-0000-4e5f-8a9b-00000000a701",
    ),
    (
        "defender-alert.json",
        Source::Defender,
        "dc7e0000-0000-4b1a-8c2d-00000000d801_1",
    ),
    ("generic.json", Source::Generic, "ACME-2026-000871"),
];

#[test]
fn good_fixtures_normalise_to_the_first_access_scenario() {
    for (name, source, id) in GOOD {
        let (forced, settings) = match source {
            Source::Generic => (Some("generic"), generic_settings()),
            _ => (None, AlertSettings::default()),
        };
        let alert = parse_alert(&fixture(name), forced, &settings)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(alert.source, source, "{name}");
        assert_eq!(alert.id, id, "{name}");
        assert_eq!(alert.kind, "first_access", "{name}");
        assert_eq!(alert.severity, Severity::High, "{name}");
        assert!(!alert.needs_enrichment, "{name}");
        let principal = alert
            .principal
            .unwrap_or_else(|| panic!("{name}: no principal"));
        assert_eq!(principal.upn.as_deref(), Some(USER), "{name}");
        assert_eq!(principal.object_id.as_deref(), Some(USER_ID), "{name}");
        assert_eq!(principal.kind, PrincipalType::User, "{name}");
        assert_eq!(principal.tenant_id.as_deref(), Some(TENANT), "{name}");
        assert_eq!(alert.resources.len(), 1, "{name}: {:?}", alert.resources);
        let vm = &alert.resources[0];
        assert!(vm.id.eq_ignore_ascii_case(VM), "{name}: {}", vm.id);
        assert_eq!(vm.name.as_deref(), Some("vm-web-01"), "{name}");
        assert_eq!(vm.resource_group.as_deref(), Some("rg-prod"), "{name}");
        assert!(
            vm.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Microsoft.Compute/virtualMachines")),
            "{name}"
        );
        assert_eq!(alert.source_ip.as_deref(), Some(IP), "{name}");
        if source != Source::Defender {
            assert_eq!(alert.operation.as_deref(), Some(OPERATION), "{name}");
        }
        // The payload is kept as received.
        let original: Value = serde_json::from_slice(&fixture(name)).unwrap();
        assert_eq!(alert.raw, original, "{name}");
    }
}

#[test]
fn azure_monitor_prefers_the_scope_spelling_of_a_lower_cased_target() {
    let alert = parse_alert(
        &fixture("azure-monitor-activity-log.json"),
        None,
        &AlertSettings::default(),
    )
    .unwrap();
    assert_eq!(alert.resources[0].id, VM);
    assert_eq!(
        alert.observed_at.to_rfc3339(),
        "2026-04-21T04:01:07.643238100+00:00"
    );
}

#[test]
fn lacework_webhook_needs_enrichment_and_keeps_template_text_literal() {
    let alert = parse_alert(
        &fixture("lacework-webhook.json"),
        None,
        &AlertSettings::default(),
    )
    .unwrap();
    assert_eq!(alert.source, Source::Lacework);
    assert_eq!(alert.id, "51234");
    assert_eq!(alert.kind, "first_access");
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.observed_at.to_rfc3339(), "2026-04-21T04:00:00+00:00");
    assert!(alert.needs_enrichment);
    assert!(alert.principal.is_none() && alert.resources.is_empty());
    assert_eq!(alert.source_ip, None);
    // The undocumented timestamp format is kept verbatim, and so is anything that looks like a
    // template: alert values are data.
    assert_eq!(alert.raw["event_timestamp"], "21 Apr 2026 04:00 GMT");
    let description = alert.raw["event_description"].as_str().unwrap();
    assert!(
        description.ends_with("Rule note: {{ 7*7 }}"),
        "{description}"
    );
    assert!(!description.contains("49"));
}

#[test]
fn enrich_fills_the_webhook_from_details() {
    let settings = AlertSettings::default();
    let webhook = parse_alert(&fixture("lacework-webhook.json"), None, &settings).unwrap();
    let details: Value = serde_json::from_slice(&fixture("lacework-details.json")).unwrap();
    let alert = enrich_lacework(&webhook, details.clone(), &settings).unwrap();
    assert_eq!(alert.id, "51234");
    assert_eq!(alert.source, Source::Lacework);
    assert_eq!(alert.observed_at, webhook.observed_at);
    assert!(!alert.needs_enrichment);
    let principal = alert.principal.as_ref().unwrap();
    assert_eq!(principal.upn.as_deref(), Some(USER));
    assert_eq!(principal.object_id.as_deref(), Some(USER_ID));
    assert_eq!(alert.resources[0].id, VM);
    assert_eq!(alert.operation.as_deref(), Some(OPERATION));
    assert_eq!(alert.source_ip.as_deref(), Some(IP));
    assert_eq!(alert.raw["webhook"], webhook.raw);
    assert_eq!(alert.raw["details"], details);

    // Enriching an enriched alert again does not nest the webhook.
    let again = enrich_lacework(&alert, details, &settings).unwrap();
    assert_eq!(again.raw["webhook"], webhook.raw);

    // Only Lacework alerts are enriched.
    let sentinel = parse_alert(&fixture("sentinel-incident.json"), None, &settings).unwrap();
    let err = enrich_lacework(&sentinel, Value::Null, &settings).unwrap_err();
    assert!(err.to_string().starts_with("source: "), "{err}");
}

#[test]
fn bad_fixtures_name_the_field_path() {
    let settings = AlertSettings::default();
    let err = parse_alert(&fixture("bad-not-json.txt"), None, &settings).unwrap_err();
    assert!(matches!(err, AlertError::NotJson(_)), "{err}");

    let err = parse_alert(&fixture("bad-azure-monitor-time.json"), None, &settings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "data.essentials.firedDateTime: expected an RFC 3339 time, found \"yesterday\""
    );

    let err = parse_alert(&fixture("bad-sentinel-no-title.json"), None, &settings).unwrap_err();
    assert_eq!(
        err,
        AlertError::Field {
            path: "object.properties.title".into(),
            problem: "required field is missing".into(),
        }
    );
}

#[test]
fn detection_is_unambiguous_and_says_when_it_cannot_tell() {
    let settings = AlertSettings::default();
    // Every good fixture but the generic one is recognised by exactly one adapter (checked by
    // parsing without --source above); here, the failures.
    let err = parse_alert(br#"{"hello": "world"}"#, None, &settings).unwrap_err();
    assert_eq!(err, AlertError::Unrecognised);
    assert!(err.to_string().contains("pass --source"));

    let err = parse_alert(&fixture("generic.json"), None, &generic_settings()).unwrap_err();
    assert_eq!(err, AlertError::Unrecognised, "generic is never guessed");

    // A payload with the marks of two sources must not be guessed either.
    let mut both: Value = serde_json::from_slice(&fixture("lacework-webhook.json")).unwrap();
    both["schemaId"] = "azureMonitorCommonAlertSchema".into();
    let err = parse_alert(both.to_string().as_bytes(), None, &settings).unwrap_err();
    assert_eq!(
        err,
        AlertError::Ambiguous {
            matched: vec!["lacework", "azure-monitor"]
        }
    );
    assert!(err.to_string().contains("pass --source"));
}

#[test]
fn source_forces_the_adapter() {
    let settings = AlertSettings::default();
    // The ambiguous payload parses once the source is named.
    let mut both: Value = serde_json::from_slice(&fixture("lacework-webhook.json")).unwrap();
    both["schemaId"] = "azureMonitorCommonAlertSchema".into();
    let alert = parse_alert(both.to_string().as_bytes(), Some("lacework"), &settings).unwrap();
    assert_eq!(alert.source, Source::Lacework);

    // Forcing the wrong adapter fails on that adapter's fields.
    let err =
        parse_alert(&fixture("defender-alert.json"), Some("sentinel"), &settings).unwrap_err();
    assert_eq!(err.to_string(), "properties: required field is missing");
    let err = parse_alert(
        &fixture("defender-alert.json"),
        Some("azure-monitor"),
        &settings,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("schemaId: "), "{err}");

    let err = parse_alert(&fixture("defender-alert.json"), Some("splunk"), &settings).unwrap_err();
    assert_eq!(err, AlertError::UnknownSource("splunk".into()));

    // Generic without configuration says what to configure.
    let err = parse_alert(&fixture("generic.json"), Some("generic"), &settings).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("alerts.generic.id: no JSON pointer configured"),
        "{err}"
    );
}
