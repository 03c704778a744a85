//! Following a collection's next-page links: ARM's and Log Analytics' `nextLink`, Graph's
//! `@odata.nextLink`. This is the one place pages are followed, so the one place that decides
//! which next link is trusted.

use std::future::Future;

use serde_json::Value;
use tracing::warn;

use super::error::ApiError;
use super::http::ApiResponse;
use super::request::ApiRequest;

/// The most pages one collection is read to: the engine leaves the rest unread, a plan-time
/// lookup refuses to plan from a partial view (a query that wide should be narrowed).
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
    let mut pages = 1;
    let mut next = next_page(body, &first.url, pages);
    loop {
        let url = match next {
            Ok(Some(url)) => url,
            Ok(None) => break,
            Err(NextPageError::TooManyPages { .. }) => {
                warn!(
                    message = "Stopped following pages.",
                    pages,
                    url = %first.url
                );
                break;
            }
            Err(NextPageError::ForeignLink { link, expected }) => {
                return Err(ApiError::ForeignNextLink { link, expected });
            }
        };
        pages += 1;
        let mut page = ApiRequest::get(first.api, url);
        page.headers = first.headers.clone();
        let mut answer = send(page).await?.body;
        next = next_page(&mut answer, &first.url, pages);
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

/// Why a page's next link is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NextPageError {
    /// The link leaves the scheme, host and port of the first request: it is data from the
    /// server, and following it would hand another host the token.
    #[error("refused to follow the next-page link `{link}`: pages must stay on {expected}")]
    ForeignLink { link: String, expected: String },
    /// [`MAX_PAGES`] pages were read and the last one still links to another.
    #[error("more than {MAX_PAGES} pages at {first}; narrow the query")]
    TooManyPages { first: String },
}

/// The page to read after `page`, the `pages_read`-th of the collection first requested at
/// `first_url`, or `None` when it is the last. The next link (`nextLink` or
/// `@odata.nextLink`) is removed from `page`. A link to another site, or one past
/// [`MAX_PAGES`], is a typed refusal; what to do with it is the caller's choice.
pub fn next_page(
    page: &mut Value,
    first_url: &str,
    pages_read: u32,
) -> Result<Option<String>, NextPageError> {
    let Some(link) = take_next_link(page) else {
        return Ok(None);
    };
    check_same_site(&link, first_url)?;
    if pages_read >= MAX_PAGES {
        return Err(NextPageError::TooManyPages {
            first: first_url.chars().take(200).collect(),
        });
    }
    Ok(Some(link))
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

fn check_same_site(link: &str, first: &str) -> Result<(), NextPageError> {
    match (site(link), site(first)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (_, expected) => Err(NextPageError::ForeignLink {
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

    #[test]
    fn next_page_takes_the_link_and_stops_at_the_page_limit() {
        let next = format!("{FIRST}&page=2");
        let mut page = json!({"value": [], "nextLink": next, "@odata.nextLink": ""});
        assert_eq!(next_page(&mut page, FIRST, 1), Ok(Some(next.clone())));
        assert_eq!(page, json!({"value": []}));
        assert_eq!(next_page(&mut json!({"value": []}), FIRST, 1), Ok(None));
        let mut last = json!({"@odata.nextLink": next});
        assert_eq!(
            next_page(&mut last.clone(), FIRST, MAX_PAGES - 1),
            Ok(Some(next))
        );
        assert!(matches!(
            next_page(&mut last, FIRST, MAX_PAGES),
            Err(NextPageError::TooManyPages { .. })
        ));
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
