//! Every action's request builders over arbitrary strings (all of unicode, the brackets `⟨ ⟩`
//! riposte shows unknowns with, `/ .. ? # & ' % \n`, empty, very long): a string parameter that reaches a
//! path, a query or a body lands there as exactly itself — the request decodes back to the
//! request built for a harmless value of the same kind, with that value swapped for the
//! hostile one, so no segment, parameter or body field is added, lost or moved — or the action
//! refuses it with a typed error before building anything (strict ids and user keys may).
//! Text shaped like an unknown (`⟨steps.user.outputs.id⟩`) is text like any other; riposte's
//! own unknowns (from `unknown::placeholder`) fill a slot whole and are compared as shown.
//!
//! The list of actions covered is compared with the registry, so a new action without a
//! property here fails `every_registered_action_is_covered`.

use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use riposte::actions::unknown::{self, is_placeholder};
use riposte::actions::{ActionError, ActionPlan, ActionSettings, PlanContext, registry};
use riposte::alert::{Alert, ArmId, Principal, PrincipalType, Resource, Severity, Source};
use riposte::connectors::{Endpoints, NoLookup};
use serde_json::{Value, json};

/// Every action this file holds a property for, by family.
const COVERED: &[&str] = &[
    "entra.get_user",
    "entra.disable_user",
    "entra.enable_user",
    "entra.revoke_sessions",
    "entra.force_password_reset",
    "entra.require_mfa",
    "arm.get_resource",
    "arm.snapshot",
    "arm.remove_role_assignments",
    "arm.lock_resource",
    "evidence.activity_log",
    "evidence.log_analytics_query",
    "notify.webhook",
];

const SUB: &str = "b1c2d3e4-0000-4a5b-8c6d-000000000001";
const VM: &str = "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01";
const GROUP: &str = "9f0c7e3a-1d2b-4c5e-8f6a-000000000101";
const PRINCIPAL: &str = "a1e7d1c2-5b3f-4c8e-9d21-000000000001";
const QUERY_FILE: &str = "queries/q.kql";

/// Harmless stand-ins, one per kind of value; none occurs in any request by itself.
static REF_PLACEHOLDER: LazyLock<String> =
    LazyLock::new(|| unknown::placeholder("steps.zqref.outputs.zqval"));
const REF_UPN: &str = "zqref.user@contoso.com";
const REF_GUID: &str = "0000aaaa-bbbb-4ccc-8ddd-eeeeffff0000";
const REF_TEXT: &str = "zqref text";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

/// The playbook directory `evidence.log_analytics_query` reads its query file from.
static PLAYBOOK_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("queries")).unwrap();
    std::fs::write(dir.path().join(QUERY_FILE), "AzureActivity | take 1").unwrap();
    dir
});

fn alert() -> Alert {
    Alert {
        id: "a-1".into(),
        source: Source::Generic,
        kind: "first_access".into(),
        title: "t".into(),
        severity: Severity::High,
        observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap(),
        principal: Some(Principal {
            upn: Some("alex@contoso.com".into()),
            object_id: None,
            tenant_id: None,
            kind: PrincipalType::User,
        }),
        resources: vec![Resource::from_id(VM)],
        operation: None,
        source_ip: None,
        needs_enrichment: false,
        raw: json!({}),
    }
}

/// Plans `name` with `with` and no credentials, so every value the step is given (not one a
/// lookup found) is what reaches the request.
fn plan(name: &str, with: &Value) -> Result<ActionPlan, ActionError> {
    let action = registry()
        .iter()
        .find(|a| a.info().name == name)
        .unwrap_or_else(|| panic!("{name} is not registered"));
    let endpoints = Endpoints::default();
    let alert = alert();
    let settings = ActionSettings {
        mfa_group_id: Some(GROUP.into()),
        notify_webhook_url: Some("https://hooks.example.com/services/T0/B0/x".into()),
        log_analytics_workspace: Some("5c9e2a71-3f4b-4d8e-a6c1-000000000201".into()),
        max_planning_reads: None,
    };
    let ctx = PlanContext {
        endpoints: &endpoints,
        lookup: &NoLookup,
        alert: &alert,
        run_id: "0198c3a1-7b2e-7c4d-9e8f-1a2b3c4d5e6f",
        step_id: "s",
        settings: &settings,
        now: Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap(),
        playbook_dir: PLAYBOOK_DIR.path().to_path_buf(),
    };
    RUNTIME.block_on(action.plan_value(with.clone(), &ctx))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL as the parts a server reads, each percent-decoded: the origin, every path segment,
/// every query key and value, and a fragment. A value that escaped its slot changes this list.
fn url_parts(url: &str, out: &mut Vec<String>) {
    let (url, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let (before_query, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let after_scheme = before_query
        .split_once("://")
        .map_or(before_query, |(s, rest)| {
            out.push(format!("scheme {s}"));
            rest
        });
    let mut path = after_scheme.split('/');
    out.push(format!(
        "origin {}",
        decode(path.next().unwrap_or_default())
    ));
    out.extend(path.map(|s| format!("segment {}", decode(s))));
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some((k, v)) => out.push(format!("query {} = {}", decode(k), decode(v))),
            None => out.push(format!("query {}", decode(pair))),
        }
    }
    if let Some(f) = fragment {
        out.push(format!("fragment {}", decode(f)));
    }
}

/// A JSON body as its leaves; a string that is a URL is read as one (`@odata.id`).
fn body_parts(at: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| body_parts(&format!("{at}/{k}"), v, out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| body_parts(&format!("{at}/{i}"), v, out)),
        Value::String(s) if s.starts_with("https://") => {
            let mut parts = Vec::new();
            url_parts(s, &mut parts);
            out.extend(parts.into_iter().map(|p| format!("{at} url {p}")));
        }
        Value::String(s) => out.push(format!("{at} = {s}")),
        other => out.push(format!("{at} = {other}")),
    }
}

/// Everything a request carries, as the receiving API decodes it.
fn decoded(plan: &ActionPlan) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in plan.requests.iter().enumerate() {
        out.push(format!("request {i} {}", r.method.as_str()));
        url_parts(&r.url, &mut out);
        if let Some(body) = &r.body {
            body_parts("body", body, &mut out);
        }
        if let Some(keep) = &r.keep {
            out.push(format!("keep {} = {}", keep.field, keep.equals));
        }
    }
    // Riposte's own unknowns compare as a sealed plan shows them.
    out.iter().map(|p| unknown::shown(p)).collect()
}

/// Names riposte makes for what it creates (`riposte-{run}-{disk name}`, shortened and hashed
/// when the disk's name does not fit ARM's rules) are riposte's own text, not a slot: they
/// compare as one segment, and the real one must be a name ARM accepts.
fn derived_names(parts: Vec<String>, check: bool) -> Vec<String> {
    parts
        .into_iter()
        .map(|p| match p.strip_prefix("segment riposte-") {
            Some(name) => {
                if check {
                    // Without credentials the disk is unknown: riposte's own placeholder.
                    let name = name.strip_suffix("⟨disk name⟩").unwrap_or(name);
                    assert!(
                        name.len() <= 72
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                        "derived name {name:?}"
                    );
                }
                "segment riposte-⟨derived⟩".to_string()
            }
            None => p,
        })
        .collect()
}

/// Whether a refusal is typed and made before anything was built.
fn refused_before_building(result: &Result<ActionPlan, ActionError>) -> bool {
    matches!(
        result,
        Err(ActionError::Params(_) | ActionError::Refused(_) | ActionError::Io(_))
    )
}

/// Which harmless value of the same kind `value` is compared against, with the substitutions
/// that turn the harmless request into the expected one; `None`: the action must refuse it.
type Reference = (String, Vec<(String, String)>);

fn same(reference: &str, value: &str) -> Reference {
    let mut swaps = vec![(unknown::shown(reference), unknown::shown(value))];
    // Riposte's own unknowns quote what they stand for inside the brackets (`each disk of x`).
    if let (Some(r), Some(v)) = (unknown::describe(reference), unknown::describe(value)) {
        swaps.push((r, v));
    }
    (reference.to_string(), swaps)
}

fn user_reference(value: &str) -> Option<Reference> {
    if is_placeholder(value) {
        Some(same(&REF_PLACEHOLDER, value))
    } else if riposte::alert::is_user_key(value) {
        let reference = if is_guid(value) { REF_GUID } else { REF_UPN };
        Some(same(reference, value))
    } else {
        None
    }
}

fn guid_reference(value: &str) -> Option<Reference> {
    if is_placeholder(value) {
        Some(same(&REF_PLACEHOLDER, value))
    } else if is_guid(value) {
        Some(same(REF_GUID, value))
    } else {
        None
    }
}

fn is_guid(s: &str) -> bool {
    riposte::actions::is_guid(s)
}

/// An ARM id is compared with the same id whose subscription, group and names are harmless
/// tokens (its keys, namespace and types kept, since they choose what the action does).
fn arm_reference(value: &str) -> Option<Reference> {
    if is_placeholder(value) {
        return Some(same(&REF_PLACEHOLDER, value));
    }
    ArmId::parse(value)?;
    let segments: Vec<&str> = value.trim().trim_matches('/').split('/').collect();
    let mut swaps = Vec::new();
    let reference: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = if i > 0 { segments[i - 1] } else { "" };
            let is_value = i % 2 == 1
                && (key.eq_ignore_ascii_case("subscriptions")
                    || key.eq_ignore_ascii_case("resourceGroups")
                    || i >= 7);
            if is_value {
                let token = format!("zq{i}zq");
                swaps.push((token.clone(), s.to_string()));
                token
            } else {
                s.to_string()
            }
        })
        .collect();
    Some((format!("/{}", reference.join("/")), swaps))
}

/// Free text reaches a body verbatim; only a blank one may be refused.
fn text_reference(value: &str) -> Option<Reference> {
    (!value.trim().is_empty()).then(|| same(REF_TEXT, value))
}

fn swapped(parts: Vec<String>, swaps: &[(String, String)]) -> Vec<String> {
    parts
        .into_iter()
        .map(|p| {
            swaps
                .iter()
                .fold(p, |p, (from, to)| p.replace(from.as_str(), to))
        })
        .collect()
}

/// The property for one string parameter of one action: `with` is the step's other
/// parameters, `param` gets `value`.
fn holds(
    action: &str,
    with: Value,
    param: &str,
    value: &str,
    reference_for: fn(&str) -> Option<Reference>,
) -> Result<(), TestCaseError> {
    let mut given = with.clone();
    given[param] = json!(value);
    let result = plan(action, &given);
    let Some((reference, swaps)) = reference_for(value) else {
        prop_assert!(
            refused_before_building(&result),
            "{action}.{param} = {value:?} must be refused, got {result:?}"
        );
        return Ok(());
    };
    let mut harmless = with;
    harmless[param] = json!(reference);
    let expected = derived_names(
        swapped(
            decoded(&plan(action, &harmless).expect("the harmless value plans")),
            &swaps,
        ),
        false,
    );
    match result {
        Ok(plan) => prop_assert_eq!(
            derived_names(decoded(&plan), true),
            expected,
            "{}.{} = {:?}",
            action,
            param,
            value
        ),
        Err(e) => prop_assert!(
            refused_before_building(&Err(e)),
            "{action}.{param} = {value:?}: untyped failure"
        ),
    }
    Ok(())
}

/// Pieces hostile strings are made of: URL syntax, the placeholder brackets, a fake secret
/// redaction, encoded separators, controls, bidi overrides, other scripts.
const PIECES: &[&str] = &[
    "⟨",
    "⟩",
    "/",
    "..",
    ".",
    "?",
    "#",
    "&",
    "'",
    "''",
    "%",
    "%2F",
    "%2e%2e",
    "\n",
    "\r",
    " ",
    "=",
    "+",
    "$",
    "@",
    "\\",
    ";",
    ":",
    "a",
    "Z",
    "0",
    "é",
    "日本",
    "🦀",
    "\u{0}",
    "\u{202e}",
    "secret: webhook path, sha256:0011223344556677",
    "steps.user.outputs.id",
    "#EXT#",
    "$filter=",
    "subscriptions",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(select(PIECES), 0..10).prop_map(|p| p.concat()),
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => (select(PIECES), 200..1500usize).prop_map(|(p, n)| p.repeat(n)),
    ]
    .boxed()
}

/// Values shaped like riposte's unknowns, around anything — text, as an alert could send —
/// and riposte's own unknowns of template paths.
fn placeholder_like() -> BoxedStrategy<String> {
    prop_oneof![
        3 => text().prop_map(|t| format!("⟨{t}⟩")),
        1 => "(steps|item)(\\.[a-z_]{1,12}){0,3}".prop_map(|p| unknown::placeholder(&p)),
    ]
    .boxed()
}

fn guid() -> BoxedStrategy<String> {
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".boxed()
}

/// Valid user principal names with every character a UPN's local part may hold, guests
/// (`#EXT#`) among them.
fn upn() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9'_!#^~+-]{1,3}([a-zA-Z0-9'._!#^~+-]{0,20}[a-zA-Z0-9'_!#^~+-])?@(contoso\\.com|sub-1.example\\.org)",
        "[a-z0-9']{1,10}".prop_map(|l| format!("{l}_fabrikam.com#EXT#@contoso.onmicrosoft.com")),
    ]
    .boxed()
}

fn user() -> BoxedStrategy<String> {
    prop_oneof![upn(), guid(), placeholder_like(), text()].boxed()
}

fn guid_like() -> BoxedStrategy<String> {
    prop_oneof![guid(), placeholder_like(), text()].boxed()
}

/// ARM ids with hostile subscriptions, groups and names, of the types the actions branch on,
/// plus ids padded with whitespace, climbing with `..`, or broken.
fn arm_id() -> BoxedStrategy<String> {
    let types = select(
        &[
            "Microsoft.Compute/virtualMachines",
            "Microsoft.Compute/disks",
            "Microsoft.Storage/storageAccounts",
        ][..],
    );
    let part = prop_oneof![3 => text(), 1 => Just("rg-prod".to_string())];
    prop_oneof![
        4 => (guid(), part.clone(), types, part.clone()).prop_map(|(s, g, t, n)| {
            format!("/subscriptions/{s}/resourceGroups/{g}/providers/{t}/{n}")
        }),
        1 => (part.clone(), part.clone())
            .prop_map(|(s, g)| format!("/subscriptions/{s}/resourceGroups/{g}")),
        1 => (select(&[" ", "\n", "\t", "/", "//"][..]), select(&["", " ", "\n", "/"][..]))
            .prop_map(|(before, after)| format!("{before}{VM}{after}")),
        1 => text().prop_map(|t| format!("{VM}/../../{t}")),
        1 => placeholder_like(),
        1 => text(),
    ]
    .boxed()
}

fn api_version() -> BoxedStrategy<String> {
    prop_oneof![
        "20[0-9]{2}-[01][0-9]-[0-3][0-9](-[a-z0-9]{1,8})?",
        text(),
        placeholder_like()
    ]
    .boxed()
}

fn api_version_reference(value: &str) -> Option<Reference> {
    let accepted = plan(
        "arm.get_resource",
        &json!({"resource": VM, "api_version": value}),
    )
    .is_ok();
    accepted.then(|| same("2099-01-01", value))
}

fn resource_group() -> BoxedStrategy<String> {
    prop_oneof!["[\\w().-]{1,20}", text(), placeholder_like()].boxed()
}

fn resource_group_reference(value: &str) -> Option<Reference> {
    let accepted = plan(
        "arm.snapshot",
        &json!({"resource": VM, "resource_group": value}),
    )
    .is_ok();
    accepted.then(|| same("zqrgzq", value))
}

fn timespan() -> BoxedStrategy<String> {
    prop_oneof![
        "P([0-9]{1,20}[WD])?(T[0-9]{1,20}[HMS])?",
        text(),
        placeholder_like()
    ]
    .boxed()
}

/// A timespan the Log Analytics body carries verbatim once it parses.
fn timespan_reference(value: &str) -> Option<Reference> {
    riposte::actions::evidence::parse_timespan(value)
        .is_ok()
        .then(|| same("P7D", value))
}

fn webhook_url() -> BoxedStrategy<String> {
    prop_oneof![
        text(),
        text().prop_map(|t| format!("https://hooks.example.com/{t}")),
        text().prop_map(|t| format!("https://{t}/x")),
        Just("http://169.254.169.254/metadata".to_string()),
    ]
    .boxed()
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn every_registered_action_is_covered() {
    let mut registered: Vec<&str> = registry().iter().map(|a| a.info().name).collect();
    let mut covered = COVERED.to_vec();
    registered.sort_unstable();
    covered.sort_unstable();
    assert_eq!(
        registered, covered,
        "an action without a builder property here (or a covered one no longer registered)"
    );
}

/// Runs `check` for each family member with its own harmless parameters.
fn each(
    actions: &[(&str, Value)],
    check: impl Fn(&str, Value) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    for (name, with) in actions {
        assert!(COVERED.contains(name), "{name}");
        check(name, with.clone())?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn entra_user_parameters_fill_one_segment(value in user()) {
        let mfa = json!({"strategy": "conditional_access_group"});
        each(&[
            ("entra.get_user", json!({})),
            ("entra.disable_user", json!({})),
            ("entra.enable_user", json!({})),
            ("entra.revoke_sessions", json!({})),
            ("entra.force_password_reset", json!({"with_mfa": true})),
            ("entra.require_mfa", mfa.clone()),
            ("entra.require_mfa", json!({"strategy": "per_user"})),
        ], |name, with| holds(name, with, "user", &value, user_reference))?;
        holds("entra.require_mfa", json!({"user": PRINCIPAL, "strategy": "conditional_access_group"}), "group", &value, guid_reference)?;
    }

    #[test]
    fn arm_resource_ids_fill_their_segments(value in arm_id()) {
        each(&[
            ("arm.get_resource", json!({})),
            ("arm.get_resource", json!({"api_version": "2024-03-01"})),
            ("arm.snapshot", json!({})),
            ("arm.snapshot", json!({"resource_group": "rg-x", "api_version": "2024-03-01"})),
            ("arm.lock_resource", json!({"level": "CanNotDelete"})),
            ("arm.lock_resource", json!({"level": "ReadOnly"})),
            ("arm.remove_role_assignments", json!({"principal": PRINCIPAL})),
            ("arm.remove_role_assignments", json!({"principal": unknown::placeholder("steps.user.outputs.id"), "include_inherited": true})),
        ], |name, with| holds(name, with, "resource", &value, arm_reference))?;
    }

    #[test]
    fn arm_other_parameters_fill_their_slot(
        principal in guid_like(),
        version in api_version(),
        group in resource_group(),
    ) {
        holds("arm.remove_role_assignments", json!({"resource": VM}), "principal", &principal, guid_reference)?;
        holds("arm.remove_role_assignments", json!({"resource": unknown::placeholder("steps.vm.outputs.id")}), "principal", &principal, guid_reference)?;
        holds("arm.get_resource", json!({"resource": VM}), "api_version", &version, api_version_reference)?;
        holds("arm.snapshot", json!({"resource": VM}), "api_version", &version, api_version_reference)?;
        holds("arm.snapshot", json!({"resource": VM}), "resource_group", &group, resource_group_reference)?;
        holds("arm.snapshot", json!({"resource": *REF_PLACEHOLDER}), "resource_group", &group, resource_group_reference)?;
    }

    #[test]
    fn evidence_parameters_fill_their_slot(
        caller in user(),
        subscription in guid_like(),
        workspace in guid_like(),
        span in timespan(),
        query_file in text(),
    ) {
        let activity = json!({"caller": "alex@contoso.com", "subscription": SUB});
        holds("evidence.activity_log", activity.clone(), "caller", &caller, text_reference)?;
        holds("evidence.activity_log", activity.clone(), "subscription", &subscription, guid_reference)?;
        // The Activity Log's timespan becomes a window of dates, never text in the request.
        let window = plan("evidence.activity_log", &json!({"caller": "alex@contoso.com", "subscription": SUB, "timespan": span}));
        prop_assert!(window.is_ok() || refused_before_building(&window), "{:?}", window);
        let query = json!({"query_file": QUERY_FILE});
        holds("evidence.log_analytics_query", query.clone(), "workspace", &workspace, guid_reference)?;
        holds("evidence.log_analytics_query", query.clone(), "timespan", &span, timespan_reference)?;
        // A query file is a path inside the playbook's directory, never text of a request.
        let read = plan("evidence.log_analytics_query", &json!({"query_file": query_file}));
        prop_assert!(refused_before_building(&read) || query_file.trim_start_matches("./") == QUERY_FILE, "{:?}", read);
    }

    #[test]
    fn webhook_text_reaches_the_body_verbatim(message in text(), title in text(), url in webhook_url()) {
        holds("notify.webhook", json!({}), "message", &message, text_reference)?;
        holds("notify.webhook", json!({"message": "m"}), "title", &title, |v| Some(same(REF_TEXT, v)))?;
        // A step's url shows only its origin: its path is a secret, and nothing of it is text
        // the request carries elsewhere.
        let posted = plan("notify.webhook", &json!({"message": "m", "url": url}));
        match posted {
            Ok(p) => {
                let parsed = url::Url::parse(&url).unwrap();
                let origin = parsed.origin().ascii_serialization();
                let shown = &p.requests[0].url;
                prop_assert!(shown == &format!("{origin}/") || shown.starts_with(&format!("{origin}/⟨secret: webhook path, sha256:")), "{} → {}", url, shown);
            }
            Err(e) => prop_assert!(refused_before_building(&Err(e))),
        }
    }
}

/// Fixed cases the generators might take long to find: each failed before the encoders
/// checked what a placeholder-shaped value holds.
#[test]
fn placeholder_shaped_values_cannot_add_segments_or_parameters() {
    for (action, param, with, value) in [
        (
            "entra.disable_user",
            "user",
            json!({}),
            "⟨a/../../servicePrincipals/x⟩",
        ),
        ("arm.get_resource", "resource", json!({}), "⟨x⟩"),
        (
            "arm.lock_resource",
            "resource",
            json!({"level": "ReadOnly"}),
            "⟨/subscriptions/s/resourceGroups/other⟩",
        ),
        (
            "evidence.log_analytics_query",
            "workspace",
            json!({"query_file": QUERY_FILE}),
            "⟨w?x=1&y=2⟩",
        ),
        (
            "arm.remove_role_assignments",
            "principal",
            json!({"resource": VM}),
            "⟨p' or 1 eq 1 &$top=1⟩",
        ),
    ] {
        let reference = match param {
            "resource" => arm_reference,
            "user" => user_reference,
            _ => guid_reference,
        };
        holds(action, with, param, value, reference).unwrap_or_else(|e| panic!("{e}"));
    }
}
