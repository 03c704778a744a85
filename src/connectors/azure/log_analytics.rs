//! Log Analytics query API (reference/azure-api.md D): evidence queries over a workspace.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AzureSession, encode_segment};
use crate::connectors::error::ApiError;
use crate::connectors::request::{Api, ApiRequest, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// string, datetime, long, real, bool, int, guid, dynamic, timespan.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Cells are JSON scalars or null, in column order.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Rows as objects keyed by column name, the shape templates read most easily.
    pub fn records(&self) -> Vec<serde_json::Map<String, Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row.iter())
                    .map(|(c, v)| (c.name.clone(), v.clone()))
                    .collect()
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub tables: Vec<Table>,
    /// A 200 can carry a partial error (results were cut); kept so evidence says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_error: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct LogAnalyticsClient {
    session: Arc<AzureSession>,
}

impl LogAnalyticsClient {
    pub fn new(session: Arc<AzureSession>) -> LogAnalyticsClient {
        LogAnalyticsClient { session }
    }

    /// `workspace` is the workspace GUID (customerId), not its ARM id; `timespan` an ISO
    /// 8601 duration (`PT12H`) or `start/end`.
    pub fn query_request(
        &self,
        workspace: &str,
        query: &str,
        timespan: Option<&str>,
    ) -> ApiRequest {
        let mut body = json!({ "query": query });
        if let Some(t) = timespan {
            body["timespan"] = json!(t);
        }
        ApiRequest::new(
            Method::Post,
            Api::LogAnalytics,
            format!(
                "{}/v1/workspaces/{}/query",
                self.session.endpoints.log_analytics,
                encode_segment(workspace)
            ),
        )
        .with_body(body)
        // A query reads; sending it twice is harmless.
        .retry_safe()
    }

    pub async fn query(
        &self,
        workspace: &str,
        query: &str,
        timespan: Option<&str>,
    ) -> Result<QueryResult, ApiError> {
        let resp = self
            .session
            .send(&self.query_request(workspace, query, timespan), &[])
            .await?;
        let partial_error = resp.body.get("error").cloned();
        let tables = resp
            .body
            .get("tables")
            .cloned()
            .map(serde_json::from_value::<Vec<Table>>)
            .transpose()
            .map_err(|e| ApiError::Permanent {
                status: resp.status,
                code: "InvalidQueryResponse".into(),
                message: format!("the query answer has no readable tables: {e}"),
                request_id: resp.request_id.clone(),
            })?
            .unwrap_or_default();
        Ok(QueryResult {
            tables,
            partial_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_zip_columns_and_rows() {
        let t: Table = serde_json::from_value(json!({"name": "PrimaryResult",
            "columns": [{"name": "Account", "type": "string"}, {"name": "n", "type": "long"}],
            "rows": [["a", 1], ["b", null]]}))
        .unwrap();
        let r = t.records();
        assert_eq!(r[0]["Account"], "a");
        assert_eq!(r[1]["n"], Value::Null);
    }
}
