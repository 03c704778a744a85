//! Following a collection's next-page links: ARM's and Log Analytics' `nextLink`, Graph's
//! `@odata.nextLink`. This is the one place pages are followed, so the one place that decides
//! which next link is trusted.

use std::future::Future;

use serde_json::Value;
use tracing::warn;

use super::error::ApiError;
use super::http::ApiResponse;
use super::request::ApiRequest;

/// More pages than this and the rest is left unread (a query that wide should be narrowed).
pub const MAX_PAGES: u32 = 1000;

/// The keys a page's link to the next page goes by.
const NEXT_LINK_KEYS: &[&str] = &["nextLink", "@odata.nextLink"];

/// Appends every further page of a GET's answer to `body["value"]`, sending each page's
/// request through `send`, and removes the next link from `body`. A next link is data from
/// the server: one that leaves the scheme, host and port of `first` is refused
/// ([`ApiError::ForeignNextLink`]), so a page can never send riposte (and its token) elsewhere.
/// The request's [`KeepItems`](super::KeepItems) filter, if any, is applied to every item.
/// Requests other than GET, and answers without a `value` array, are left as they are.
pub async fn follow<S, F>(first: &ApiRequest, body: &mut Value, mut send: S) -> Result<(), ApiError>
where
    S: FnMut(ApiRequest) -> F,
    F: Future<Output = Result<ApiResponse, ApiError>>,
{
    if !first.method.is_read() || !body.get("value").is_some_and(Value::is_array) {
        return Ok(());
    }
    let mut next = take_next_link(body);
    let mut pages = 1;
    while let Some(url) = next.take() {
        if pages >= MAX_PAGES {
            warn!(
                message = "Stopped following pages.",
                pages,
                url = %first.url
            );
            break;
        }
        check_same_site(&url, &first.url)?;
        pages += 1;
        let mut page = ApiRequest::get(first.api, url);
        page.headers = first.headers.clone();
        let mut answer = send(page).await?.body;
        next = take_next_link(&mut answer);
        if let (Some(all), Some(Value::Array(more))) = (
            body.get_mut("value").and_then(Value::as_array_mut),
            answer.get_mut("value").map(Value::take),
        ) {
            all.extend(more);
        }
    }
    if let (Some(keep), Some(all)) = (
        &first.keep,
        body.get_mut("value").and_then(Value::as_array_mut),
    ) {
        all.retain(|item| keep.matches(item));
    }
    Ok(())
}

/// Removes the next-page link from a page, returning it when it is a non-empty string.
fn take_next_link(page: &mut Value) -> Option<String> {
    let obj = page.as_object_mut()?;
    let mut found = None;
    for key in NEXT_LINK_KEYS {
        if let Some(Value::String(link)) = obj.remove(*key)
            && !link.is_empty()
        {
            found.get_or_insert(link);
        }
    }
    found
}

/// Scheme, lower-cased host and port (the scheme's default when absent).
fn site(url: &str) -> Option<(String, String, u16)> {
    let u = url::Url::parse(url).ok()?;
    Some((
        u.scheme().to_string(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

fn check_same_site(link: &str, first: &str) -> Result<(), ApiError> {
    match (site(link), site(first)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (_, expected) => Err(ApiError::ForeignNextLink {
            link: link.chars().take(200).collect(),
            expected: expected
                .map(|(scheme, host, port)| format!("{scheme}://{host}:{port}"))
                .unwrap_or_else(|| first.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::request::Api;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn answer(body: Value) -> ApiResponse {
        ApiResponse {
            status: 200,
            headers: HashMap::new(),
            body,
            request_id: None,
            client_request_id: "c".into(),
            attempts: 1,
        }
    }

    const FIRST: &str = "https://management.azure.com/subscriptions/s/x?api-version=1";

    #[tokio::test]
    async fn pages_are_appended_with_the_first_requests_headers() {
        let first = ApiRequest::get(Api::Graph, FIRST)
            .with_header("ConsistencyLevel", "eventual")
            .unwrap();
        let mut body = json!({"value": [1], "nextLink": format!("{FIRST}&page=2")});
        let sent = Mutex::new(Vec::new());
        follow(&first, &mut body, |req| {
            let page = if req.url.ends_with("page=2") {
                json!({"value": [2], "@odata.nextLink": format!("{FIRST}&page=3")})
            } else {
                json!({"value": [3]})
            };
            sent.lock().unwrap().push(req);
            async move { Ok(answer(page)) }
        })
        .await
        .unwrap();
        assert_eq!(body, json!({"value": [1, 2, 3]}));
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent.len(), 2);
        assert!(
            sent.iter()
                .all(|r| r.headers == first.headers && r.api == Api::Graph)
        );
    }

    #[tokio::test]
    async fn kept_items_are_filtered_on_every_page() {
        let first = ApiRequest::get(Api::Arm, FIRST).keep_items("caller", "Alex@contoso.com");
        let mut body = json!({"value": [{"caller": "alex@contoso.com"}, {"caller": "eve@x"}],
            "nextLink": format!("{FIRST}&page=2")});
        follow(&first, &mut body, |_| async {
            Ok(answer(
                json!({"value": [{"caller": "ALEX@contoso.com"}, {"id": "no caller"}]}),
            ))
        })
        .await
        .unwrap();
        assert_eq!(
            body,
            json!({"value": [{"caller": "alex@contoso.com"}, {"caller": "ALEX@contoso.com"}]})
        );
    }

    #[tokio::test]
    async fn a_next_link_to_another_site_is_refused() {
        let first = ApiRequest::get(Api::Arm, FIRST);
        for hostile in [
            "https://evil.example/subscriptions/s/x?page=2",
            "http://management.azure.com/subscriptions/s/x?page=2",
            "https://management.azure.com:8443/subscriptions/s/x",
            "https://management.azure.com.evil.example/x",
            "/subscriptions/s/x?page=2",
        ] {
            let mut body = json!({"value": [1], "nextLink": hostile});
            let err = follow(&first, &mut body, |_| async {
                panic!("a foreign next link must not be sent")
            })
            .await
            .unwrap_err();
            assert!(
                matches!(err, ApiError::ForeignNextLink { .. }),
                "{hostile}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn writes_and_single_objects_are_left_alone() {
        let post = ApiRequest::new(crate::connectors::Method::Post, Api::Arm, FIRST);
        let mut body = json!({"value": [1], "nextLink": "https://evil.example/"});
        follow(&post, &mut body, |_| async { panic!("no page for a POST") })
            .await
            .unwrap();
        assert_eq!(body["nextLink"], "https://evil.example/");
        let get = ApiRequest::get(Api::Arm, FIRST);
        let mut object = json!({"id": "x", "nextLink": "https://evil.example/"});
        follow(&get, &mut object, |_| async { panic!("not a collection") })
            .await
            .unwrap();
    }
}
