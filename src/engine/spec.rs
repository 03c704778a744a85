//! Run specs: what a run runs, as the store keeps it, turned back into the playbook the
//! planner and the executor need. A single action becomes a one-step playbook whose
//! parameters are data, never template text.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::runtime::Service;
use super::service::ServiceError;
use crate::actions;
use crate::playbook::{self, Playbook};
use crate::store::{RunRecord, RunSpec, RunTarget};

/// The spec of a run of `playbook` with `inputs`.
pub fn playbook_spec(playbook: &Playbook, inputs: BTreeMap<String, String>) -> RunSpec {
    RunSpec {
        target: RunTarget::Playbook {
            name: playbook.name.clone(),
            sha256: playbook.sha256.clone(),
            text: playbook.text.clone(),
            path: playbook.path.clone(),
        },
        inputs,
        only_resources: None,
    }
}

/// The spec of a run of one action with literal parameters; refuses an unknown action or
/// parameters the action does not take.
pub fn action_spec(action: &str, params: Map<String, Value>) -> Result<RunSpec, ServiceError> {
    // Outbound targets come from configuration or a playbook's own text, never from a
    // caller's parameters (DESIGN.md §3, trust boundaries).
    if let Some(found) = actions::find(action)
        && found.info().effect == actions::Effect::Notify
        && params.contains_key("url")
    {
        return Err(ServiceError::BadRequest(format!(
            "`{action}` takes its target from [actions] in configuration or from a playbook, not from a `url` parameter"
        )));
    }
    // Who a single action acts on is named by the caller: it must be a user key (an object
    // id or a UPN), never text that would climb out of its slot.
    for field in actions::PRINCIPAL_PARAMS {
        if let Some(v) = params.get(field) {
            match v.as_str() {
                Some(key) if crate::alert::is_user_key(key) => {}
                _ => {
                    return Err(ServiceError::BadRequest(format!(
                        "params.{field}: {v} is not an object id or a user principal name"
                    )));
                }
            }
        }
    }
    let spec = RunSpec {
        target: RunTarget::Action {
            action: action.to_string(),
            params,
        },
        inputs: BTreeMap::new(),
        only_resources: None,
    };
    playbook_of(&spec)?;
    Ok(spec)
}

/// The playbook a spec runs. A playbook's text must still hash to the sha256 it was stored
/// with: a store row edited behind riposte's back is refused, not executed.
pub fn playbook_of(spec: &RunSpec) -> Result<Playbook, ServiceError> {
    match &spec.target {
        RunTarget::Playbook {
            sha256, text, path, ..
        } => {
            let actual = hex::encode(Sha256::digest(text.as_bytes()));
            if &actual != sha256 {
                return Err(ServiceError::Internal(format!(
                    "the stored playbook text hashes to {actual}, not the recorded {sha256}"
                )));
            }
            playbook::load_str(text, path).map_err(|e| ServiceError::BadRequest(e.to_string()))
        }
        RunTarget::Action { action, params } => single_action_playbook(action, params),
    }
}

/// The playbook a single-action run executes: one step, its parameters as literals.
fn single_action_playbook(
    action: &str,
    params: &Map<String, Value>,
) -> Result<Playbook, ServiceError> {
    if actions::find(action).is_none() {
        return Err(ServiceError::NotFound(format!("no action `{action}`")));
    }
    // JSON is YAML: the parameters go in as data, never as template text.
    let with = serde_json::to_string(&params_without_templates(&Value::Object(params.clone())))
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let text = format!("name: act\nsteps:\n  - id: act\n    uses: {action}\n    with: {with}\n");
    playbook::load_str(&text, Path::new("act.yaml"))
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// Parameters arrive as data; a `${{` inside one must stay text, so it is broken up.
fn params_without_templates(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("${{", "$\u{200b}{{")),
        Value::Array(a) => Value::Array(a.iter().map(params_without_templates).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), params_without_templates(v)))
                .collect(),
        ),
        Value::Null => json!({}),
        other => other.clone(),
    }
}

impl Service {
    /// The playbook and inputs a stored run runs, from its spec alone.
    pub(super) fn run_spec(
        &self,
        run: &RunRecord,
    ) -> Result<(Playbook, BTreeMap<String, String>), ServiceError> {
        let spec = run.spec.as_ref().ok_or_else(|| {
            ServiceError::Internal(format!(
                "run {} was stored without a run spec (before this version); start it again",
                run.id
            ))
        })?;
        let key = match &spec.target {
            RunTarget::Playbook { sha256, .. } => Some(sha256.clone()),
            RunTarget::Action { .. } => None,
        };
        if let Some(key) = &key
            && let Some(p) = self.parsed.lock().ok().and_then(|c| c.get(key).cloned())
        {
            return Ok((p, spec.inputs.clone()));
        }
        let playbook = playbook_of(spec)?;
        if let Some(key) = key
            && let Ok(mut cache) = self.parsed.lock()
        {
            cache.insert(key, playbook.clone());
        }
        Ok((playbook, spec.inputs.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playbook_spec_loads_back_from_its_text_alone() {
        let text =
            "name: p\nsteps:\n  - id: u\n    uses: entra.get_user\n    with:\n      user: a@b.c\n";
        let p = playbook::load_str(text, Path::new("/gone/p.yaml")).unwrap();
        let spec = playbook_spec(&p, BTreeMap::new());
        let back = playbook_of(&spec).unwrap();
        assert_eq!(back.name, "p");
        assert_eq!(back.sha256, p.sha256);
    }

    #[test]
    fn an_edited_stored_text_is_refused() {
        let text =
            "name: p\nsteps:\n  - id: u\n    uses: entra.get_user\n    with:\n      user: a@b.c\n";
        let p = playbook::load_str(text, Path::new("p.yaml")).unwrap();
        let mut spec = playbook_spec(&p, BTreeMap::new());
        if let RunTarget::Playbook { text, .. } = &mut spec.target {
            *text = text.replace("a@b.c", "ceo@b.c");
        }
        assert!(matches!(playbook_of(&spec), Err(ServiceError::Internal(_))));
    }

    #[test]
    fn action_parameters_stay_data() {
        let params = json!({"message": "${{ alert.raw }}"})
            .as_object()
            .unwrap()
            .clone();
        let spec = action_spec("notify.webhook", params).unwrap();
        let p = playbook_of(&spec).unwrap();
        let with = format!("{:?}", p.steps[0].with);
        assert!(!with.contains("${{"), "{with}");
        assert!(matches!(
            action_spec("entra.nope", Map::new()),
            Err(ServiceError::NotFound(_))
        ));
    }

    #[test]
    fn a_single_action_names_its_user_by_a_user_key() {
        let params = |u: &str| json!({ "user": u }).as_object().unwrap().clone();
        assert!(action_spec("entra.disable_user", params("alex@contoso.com")).is_ok());
        let err = action_spec(
            "entra.disable_user",
            params("x@y.com/../../servicePrincipals/1"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ServiceError::BadRequest(m) if m.contains("params.user")),
            "{err}"
        );
    }

    #[test]
    fn a_caller_cannot_choose_where_a_notification_goes() {
        let params = json!({"url": "https://attacker.example/hook", "message": "hi"})
            .as_object()
            .unwrap()
            .clone();
        let err = action_spec("notify.webhook", params).unwrap_err();
        assert!(matches!(err, ServiceError::BadRequest(_)), "{err}");
        let params = json!({"message": "hi"}).as_object().unwrap().clone();
        assert!(action_spec("notify.webhook", params).is_ok());
    }
}
