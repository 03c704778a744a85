use serde_json::Value;

use super::{Adapter, Alert, AlertError, AlertSettings};

pub(crate) struct Generic;

impl Adapter for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }
    fn detect(&self, _raw: &Value) -> bool {
        false
    }
    fn parse(&self, _raw: Value, _settings: &AlertSettings) -> Result<Alert, AlertError> {
        Err(AlertError::Unrecognised)
    }
}
