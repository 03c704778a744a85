use serde_json::Value;

use super::{Adapter, Alert, AlertError, AlertSettings};

pub(crate) struct Lacework;

impl Adapter for Lacework {
    fn name(&self) -> &'static str {
        "lacework"
    }
    fn detect(&self, _raw: &Value) -> bool {
        false
    }
    fn parse(&self, _raw: Value, _settings: &AlertSettings) -> Result<Alert, AlertError> {
        Err(AlertError::Unrecognised)
    }
}
