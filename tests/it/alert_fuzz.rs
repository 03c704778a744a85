//! Every alert adapter over hostile JSON: arbitrary trees built from the keys the adapters
//! read, and the fixtures with any node replaced by one — deep nesting, huge arrays, wrong
//! types, unicode, the placeholder brackets, ARM ids with `..`, UPNs with `#EXT#`, `%`, CR/LF.
//! Parsing never panics, and ends in a clear error or an alert that is `alert::admissible`:
//! its principal a user key, its resources strict ARM ids, at most `max_resources` of them.

use crate::common;

use proptest::prelude::*;
use proptest::sample::select;
use riposte::alert::{Alert, AlertSettings, ArmId, is_user_key, parse_alert, parse_alert_value};
use serde_json::{Map, Value, json};

/// Every source name, and `None` for detection.
const SOURCES: &[Option<&str>] = &[
    Some("lacework"),
    Some("sentinel"),
    Some("defender"),
    Some("azure-monitor"),
    Some("generic"),
    None,
];

const FIXTURES: &[&str] = &[
    "lacework-details.json",
    "lacework-details-events.json",
    "lacework-webhook.json",
    "sentinel-incident.json",
    "sentinel-incident-pascal.json",
    "azure-monitor-activity-log.json",
    "defender-alert.json",
    "generic.json",
];

/// Keys the adapters look for, so generated trees reach their code rather than stopping at
/// the first missing field.
const KEYS: &[&str] = &[
    "data",
    "alertId",
    "alertName",
    "severity",
    "startTime",
    "alertInfo",
    "description",
    "entityMap",
    "CT_User",
    "AzureActivityEvent",
    "Events",
    "EVENT",
    "AZURE_ACTIVITY_LOG",
    "KEY",
    "PROPS",
    "username",
    "principal_id",
    "principal_type",
    "caller",
    "claims",
    "CLAIMS",
    "resourceId",
    "authorization",
    "evidence",
    "principalType",
    "event_id",
    "event_title",
    "event_timestamp",
    "schemaId",
    "essentials",
    "alertTargetIDs",
    "alertContext",
    "firedDateTime",
    "alertRule",
    "properties",
    "title",
    "incidentNumber",
    "Entities",
    "Custom Details",
    "relatedEntities",
    "kind",
    "accountName",
    "upnSuffix",
    "aadUserId",
    "evidence",
    "userAccount",
    "userPrincipalName",
    "azureAdUserId",
    "azureResourceId",
    "createdDateTime",
    "id",
    "alert",
    "uid",
    "rule",
    "risk",
    "detected",
    "actor",
    "login",
    "aad_object_id",
    "targets",
];

const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";

fn hostile_text() -> BoxedStrategy<String> {
    let pieces = select(
        &[
            "alex.wilber@contoso.com",
            "AdeleVance_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "a1e7d1c2-5b3f-4c8e-9d21-000000000001",
            VM,
            "/..",
            "/../../resourceGroups/rg-other",
            "%2e%2e",
            "%",
            "\r\n",
            "⟨steps.user.outputs.id⟩",
            "⟨secret: webhook path, sha256:0011223344556677⟩",
            "{\"caller\": \"ceo@contoso.com\"}",
            "[1,",
            "2026-04-21T04:00:00Z",
            "High",
            "@",
            "#",
            "?",
            " ",
            "é日本🦀",
            "\u{0}",
            "\u{202e}",
        ][..],
    );
    prop_oneof![
        4 => prop::collection::vec(pieces, 0..5).prop_map(|p| p.concat()),
        1 => any::<String>(),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => hostile_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_map(|n| json!(n)),
        // A huge list of targets, as a storm of resources would be.
        1 => (1000..5000usize).prop_map(|n| json!(vec![VM; n])),
    ]
    .boxed()
}

fn tree() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((select(KEYS), inner), 0..8).prop_map(|kv| {
                    Value::Object(
                        kv.into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect::<Map<_, _>>(),
                    )
                }),
            ]
        })
        .boxed()
}

/// Every JSON pointer of a document.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            pointers(
                v,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// A fixture with up to three of its nodes replaced by hostile trees.
fn mutated_fixture() -> BoxedStrategy<Value> {
    (
        select(FIXTURES),
        prop::collection::vec((any::<prop::sample::Index>(), tree()), 1..4),
    )
        .prop_map(|(name, edits)| {
            let mut doc: Value = serde_json::from_slice(&common::fixture(name)).unwrap();
            for (index, replacement) in edits {
                let mut all = Vec::new();
                pointers(&doc, String::new(), &mut all);
                // Leaves are where a source puts text an attacker influences; whole subtrees
                // test the wrong types.
                let leaves: Vec<String> = all
                    .iter()
                    .filter(|p| {
                        doc.pointer(p)
                            .is_some_and(|v| !v.is_object() && !v.is_array())
                    })
                    .cloned()
                    .collect();
                let (all, replacement) = match (&replacement, leaves.is_empty()) {
                    (Value::String(_), false) => (leaves, replacement),
                    _ => (all, replacement),
                };
                let at = index.get(&all).clone();
                match doc.pointer_mut(&at) {
                    Some(slot) => *slot = replacement,
                    None => unreachable!("{at} was listed"),
                }
            }
            doc
        })
        .boxed()
}

/// A fixture whose ARM ids (every string that starts like one) gain a hostile tail:
/// `..` climbing to another group, `%2e%2e`, whitespace, a query, the placeholder brackets.
fn fixture_with_hostile_ids() -> BoxedStrategy<Value> {
    (select(FIXTURES), hostile_text())
        .prop_map(|(name, tail)| {
            let mut doc: Value = serde_json::from_slice(&common::fixture(name)).unwrap();
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            for at in all {
                if let Some(Value::String(s)) = doc.pointer_mut(&at)
                    && s.starts_with("/subscriptions/")
                {
                    s.push_str(&tail);
                }
            }
            doc
        })
        .boxed()
}

fn settings() -> AlertSettings {
    common::alert_settings()
}

/// What every parsed alert must be: nothing that the engine would act on wrongly.
fn admissible(alert: &Alert, settings: &AlertSettings) -> Result<(), TestCaseError> {
    if let Some(p) = &alert.principal {
        if let Some(upn) = &p.upn {
            prop_assert!(is_user_key(upn), "principal upn {:?}", upn);
        }
        if let Some(oid) = &p.object_id {
            prop_assert!(riposte::actions::is_guid(oid), "object id {:?}", oid);
        }
    }
    prop_assert!(alert.resources.len() <= settings.max_resources);
    for r in &alert.resources {
        prop_assert!(ArmId::parse(&r.id).is_some(), "resource {:?}", r.id);
    }
    Ok(())
}

fn every_source(doc: &Value) -> Result<(), TestCaseError> {
    let settings = settings();
    for source in SOURCES {
        match parse_alert_value(doc.clone(), *source, &settings) {
            Ok(alert) => admissible(&alert, &settings)?,
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_trees_are_an_error_or_admissible(doc in tree()) {
        every_source(&doc)?;
    }

    #[test]
    fn mutated_fixtures_are_an_error_or_admissible(doc in mutated_fixture()) {
        every_source(&doc)?;
    }

    #[test]
    fn fixtures_with_hostile_ids_are_an_error_or_admissible(doc in fixture_with_hostile_ids()) {
        every_source(&doc)?;
    }
}

/// Nesting deeper than the JSON parser's limit is a clear error, not a stack overflow.
#[test]
fn deep_nesting_is_an_error() {
    let settings = settings();
    for depth in [200, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"data\":".repeat(depth), "}".repeat(depth));
        for text in [arrays, objects] {
            for source in SOURCES {
                let err = parse_alert(text.as_bytes(), *source, &settings).unwrap_err();
                assert!(!err.to_string().is_empty());
            }
        }
    }
}
