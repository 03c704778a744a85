//! What a run runs, stored on the run: the playbook's own text (and its sha256), or one action
//! and its parameters, with the inputs it was given. Recovery, approval and re-planning read
//! this, never a playbook loaded in some process's memory or a file that may have changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub target: RunTarget,
    /// The playbook's inputs as given (a manual run); an alert-triggered run has none and
    /// its playbook's defaults apply.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// A follow-up run acts only on these resources of its alert (ARM ids, compared without
    /// case): the ones its incident's earlier runs had not handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunTarget {
    /// A playbook, by its text as it was when the run was created.
    Playbook {
        name: String,
        /// Hex sha256 of `text`, as every plan records it.
        sha256: String,
        text: String,
        /// Where the text came from: names it in messages and anchors the files its steps
        /// name (`query_file`).
        path: PathBuf,
    },
    /// One action with literal parameters (`riposte act`, `POST /v1/actions/{name}`).
    Action {
        action: String,
        params: Map<String, Value>,
    },
}

impl RunSpec {
    /// The name runs list under: the playbook's, or `action:<name>`.
    pub fn label(&self) -> String {
        match &self.target {
            RunTarget::Playbook { name, .. } => name.clone(),
            RunTarget::Action { action, .. } => format!("action:{action}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_round_trip_through_json_with_their_kind() {
        let spec = RunSpec {
            target: RunTarget::Action {
                action: "entra.disable_user".into(),
                params: json!({"user": "a@b.c"}).as_object().unwrap().clone(),
            },
            inputs: BTreeMap::new(),
            only_resources: None,
        };
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["target"]["kind"], "action");
        assert_eq!(serde_json::from_value::<RunSpec>(v).unwrap(), spec);
        assert_eq!(spec.label(), "action:entra.disable_user");
    }
}
