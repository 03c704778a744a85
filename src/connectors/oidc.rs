//! The identity platform's public documents (OpenID configuration, JWKS) for the review
//! page's sign-in, read through the one HTTP client like every other outbound call.

use serde_json::Value;

use super::error::ApiError;
use super::http::HttpClient;

/// GETs a JSON document that needs no credential. Transient failures are retried by the
/// client; an answer that is not 2xx JSON is an error that names the status, never the
/// body (whoever answers may not be the identity platform).
pub async fn get_document(http: &HttpClient, url: &str) -> Result<Value, ApiError> {
    let request = oauth2::http::Request::builder()
        .method(oauth2::http::Method::GET)
        .uri(url)
        .header(oauth2::http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| ApiError::Invalid(format!("`{url}` cannot be requested: {e}")))?;
    let response = http.send_raw(request).await?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let message = format!("the identity platform answered {status} for its document");
        return Err(if status == 429 || status >= 500 {
            ApiError::Transient {
                status: Some(status),
                message,
                request_id: None,
            }
        } else {
            ApiError::Permanent {
                status,
                code: "unexpected_status".into(),
                message,
                request_id: None,
            }
        });
    }
    serde_json::from_slice(response.body()).map_err(|_| ApiError::Permanent {
        status,
        code: "not_json".into(),
        message: "the identity platform's document is not JSON".into(),
        request_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::HttpOptions;

    #[tokio::test]
    async fn a_refused_document_names_the_status_and_not_the_body() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
        let server = MockServer::start().await;
        Mock::given(matchers::method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string("<script>x</script>"))
            .mount(&server)
            .await;
        let http = HttpClient::new(HttpOptions::default()).unwrap();
        let error = get_document(&http, &format!("{}/doc", server.uri()))
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("404"), "{text}");
        assert!(!text.contains("script"), "{text}");
    }
}
