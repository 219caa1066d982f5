//! `api_key`: identify the consumer by an API key sent in a header or a query parameter;
//! answer 401 when it is missing or unknown.
//!
//! ```yaml
//! - api_key: {header: x-api-key, query: api_key, hide_credentials: true}
//! ```
//! The header is looked at first, then the query parameter (only when `query` is set). Keys come
//! from the consumers' `api_keys`. With `hide_credentials` the key is removed from the request
//! before it goes upstream (the header, and the query parameter with the rest of the query kept).

use crate::credentials::{ct_eq, digest, query_param, uri_without_param};
use crate::{
    BuildContext, BuildError, Consumer, Filter, FilterFactory, Flow, Reject, RequestCtx, RequestHeader, Session,
};
use async_trait::async_trait;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The `api_key` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Request header carrying the key; `x-api-key` by default, `null` to read only the query.
    #[serde(default = "default_header")]
    pub header: Option<String>,
    /// Query parameter carrying the key; none by default.
    #[serde(default)]
    pub query: Option<String>,
    /// Remove the key from the request before it goes upstream; `false` by default.
    #[serde(default)]
    pub hide_credentials: bool,
}

fn default_header() -> Option<String> {
    Some("x-api-key".to_string())
}

/// One known key: the key itself (to confirm the digest match) and its consumer.
#[derive(Debug)]
struct KnownKey {
    key: Box<[u8]>,
    consumer: Arc<Consumer>,
}

/// The `api_key` filter.
#[derive(Debug)]
pub struct ApiKey {
    header: Option<HeaderName>,
    query: Option<String>,
    hide_credentials: bool,
    /// SHA-256 of each key to its consumer: one hash and one map lookup per request, however
    /// many consumers there are.
    keys: HashMap<[u8; 32], KnownKey>,
    challenge: HeaderValue,
}

impl ApiKey {
    fn unauthorized(&self, message: &'static str) -> Reject {
        let mut reject = Reject::new(401, "unauthorized", message);
        reject.headers.push((WWW_AUTHENTICATE, self.challenge.clone()));
        reject
    }

    /// Finds the consumer that `req` carries a key of and, with `hide_credentials`, removes the
    /// key from `req`. Refuses with 401 when no key is sent or the key is unknown.
    fn authenticate(&self, req: &mut RequestHeader) -> Result<Arc<Consumer>, Reject> {
        let from_header =
            self.header.as_ref().and_then(|h| req.headers.get(h)).map(|v| v.as_bytes()).filter(|v| !v.is_empty());
        let found = match from_header {
            Some(key) => Some(self.lookup(key)),
            None => {
                let query = req.uri.query().unwrap_or("");
                self.query
                    .as_deref()
                    .and_then(|name| query_param(query, name))
                    .filter(|v| !v.is_empty())
                    .map(|key| self.lookup(key.as_bytes()))
            }
        };
        let consumer = match found {
            None => return Err(self.unauthorized("missing API key")),
            Some(None) => return Err(self.unauthorized("invalid API key")),
            Some(Some(consumer)) => consumer,
        };
        if self.hide_credentials {
            self.hide(req);
        }
        Ok(consumer)
    }

    fn lookup(&self, key: &[u8]) -> Option<Arc<Consumer>> {
        let known = self.keys.get(&digest(key))?;
        ct_eq(&known.key, key).then(|| known.consumer.clone())
    }

    /// Removes the key's header and query parameter from `req`.
    fn hide(&self, req: &mut RequestHeader) {
        if let Some(h) = &self.header {
            req.remove_header(h);
        }
        let Some(name) = &self.query else { return };
        let Some(pq) = req.uri.path_and_query().map(|pq| pq.as_str()) else {
            return;
        };
        let Some(stripped) = uri_without_param(pq, name) else {
            return;
        };
        let mut parts = req.uri.clone().into_parts();
        if let Ok(pq) = stripped.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                req.set_uri(uri);
            }
        }
    }
}

impl FilterFactory for ApiKey {
    const NAME: &'static str = "api_key";
    type Config = ApiKeyConfig;

    fn build(config: ApiKeyConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let header = match config.header {
            Some(h) => Some(
                HeaderName::from_bytes(h.as_bytes()).map_err(|_| BuildError::at("header", "invalid header name"))?,
            ),
            None => None,
        };
        if header.is_none() && config.query.is_none() {
            return Err(BuildError::whole("set `header`, `query` or both"));
        }
        if config.query.as_deref() == Some("") {
            return Err(BuildError::at("query", "empty query parameter name"));
        }
        let mut keys: HashMap<[u8; 32], KnownKey> = HashMap::new();
        for consumer in cx.consumers {
            for key in consumer.api_keys.iter().filter(|k| !k.is_empty()) {
                let known = KnownKey { key: key.as_bytes().into(), consumer: consumer.clone() };
                if let Some(other) = keys.insert(digest(key.as_bytes()), known) {
                    if other.consumer.name != consumer.name {
                        return Err(BuildError::whole(format!(
                            "consumers \"{}\" and \"{}\" have the same API key",
                            other.consumer.name, consumer.name
                        )));
                    }
                }
            }
        }
        if keys.is_empty() {
            return Err(BuildError::whole("no consumer has an API key (`consumers[].api_keys`)"));
        }
        Ok(ApiKey {
            header,
            query: config.query,
            hide_credentials: config.hide_credentials,
            keys,
            challenge: HeaderValue::from_static("ApiKey realm=\"portico\""),
        })
    }
}

#[async_trait]
impl Filter for ApiKey {
    fn secret_query_params(&self) -> Vec<String> {
        self.query.iter().cloned().collect()
    }

    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        match self.authenticate(session.req_header_mut()) {
            Ok(consumer) => {
                ctx.consumer = Some(consumer);
                Ok(Flow::Continue)
            }
            Err(reject) => Ok(Flow::Reject(reject)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, TestRequest};

    fn consumers() -> Vec<Arc<Consumer>> {
        (0..10_000)
            .map(|i| {
                Arc::new(Consumer {
                    name: format!("c{i}"),
                    api_keys: vec![format!("key-{i}"), format!("alt-{i}")],
                    ..Default::default()
                })
            })
            .collect()
    }

    fn build_with(yaml: &str, consumers: &[Arc<Consumer>]) -> Result<ApiKey, BuildError> {
        testkit::build(yaml, &testkit::context_with(consumers))
    }

    async fn req(uri: &str, key: Option<&str>) -> TestRequest {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        TestRequest::get(uri, &headers).await
    }

    /// Runs the request phase: the consumer it found, or its refusal.
    async fn authenticate(f: &ApiKey, request: &mut TestRequest) -> Result<Arc<Consumer>, Reject> {
        match request.request(f).await {
            Flow::Continue => Ok(request.ctx.consumer.clone().expect("a consumer once the key is known")),
            Flow::Reject(reject) => Err(reject),
            other => panic!("expected a consumer or a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn finds_the_consumer_among_many() {
        let f = build_with("{}", &consumers()).expect("valid");
        let mut r = req("/", Some("key-9876")).await;
        assert_eq!(authenticate(&f, &mut r).await.expect("known key").name, "c9876");
        let mut r = req("/", Some("alt-3")).await;
        assert_eq!(authenticate(&f, &mut r).await.expect("known key").name, "c3");
        // Not hidden by default.
        assert!(r.header().headers.get("x-api-key").is_some());
    }

    #[tokio::test]
    async fn missing_and_wrong_keys_are_401_with_a_challenge() {
        let f = build_with("{}", &consumers()).expect("valid");
        let missing = authenticate(&f, &mut req("/", None).await).await.expect_err("no key");
        assert_eq!((missing.status, missing.error, &*missing.message), (401, "unauthorized", "missing API key"));
        assert_eq!(missing.headers[0].0, WWW_AUTHENTICATE);
        let empty = authenticate(&f, &mut req("/", Some("")).await).await.expect_err("empty key");
        assert_eq!(empty.message, "missing API key");
        let wrong = authenticate(&f, &mut req("/", Some("key-99999")).await).await.expect_err("unknown key");
        assert_eq!((wrong.status, &*wrong.message), (401, "invalid API key"));
        assert!(!wrong.headers.is_empty());
        // The query is not read unless configured.
        let not_read = authenticate(&f, &mut req("/?api_key=key-1", None).await).await.expect_err("query off");
        assert_eq!(not_read.message, "missing API key");
    }

    #[tokio::test]
    async fn query_key_is_hidden_keeping_the_rest_of_the_query() {
        let f = build_with("{query: api_key, hide_credentials: true}", &consumers()).expect("valid");
        let mut r = req("/items?a=1&api_key=key-5&b=2", None).await;
        assert_eq!(authenticate(&f, &mut r).await.expect("known key").name, "c5");
        assert_eq!(r.header().uri.to_string(), "/items?a=1&b=2");
        let mut r = req("/items?api_key=key-5", None).await;
        authenticate(&f, &mut r).await.expect("known key");
        assert_eq!(r.header().uri.to_string(), "/items");
        let wrong = authenticate(&f, &mut req("/?api_key=nope", None).await).await.expect_err("unknown");
        assert_eq!(wrong.message, "invalid API key");
    }

    #[tokio::test]
    async fn header_key_is_hidden_and_wins_over_the_query() {
        let f = build_with("{query: api_key, hide_credentials: true}", &consumers()).expect("valid");
        let mut r = req("/x?api_key=key-2", Some("key-1")).await;
        assert_eq!(authenticate(&f, &mut r).await.expect("known key").name, "c1");
        assert!(r.header().headers.get("x-api-key").is_none());
        assert_eq!(r.header().uri.to_string(), "/x");
    }

    #[test]
    fn config_errors() {
        let shared = vec![
            Arc::new(Consumer { name: "a".into(), api_keys: vec!["k".into()], ..Default::default() }),
            Arc::new(Consumer { name: "b".into(), api_keys: vec!["k".into()], ..Default::default() }),
        ];
        let err = build_with("{}", &shared).expect_err("duplicate key");
        assert!(err.message.contains("\"a\" and \"b\""), "{}", err.message);
        assert!(build_with("{}", &[]).is_err());
        assert_eq!(build_with("{header: 'bad header'}", &consumers()).expect_err("bad").path, "header");
        assert!(build_with("{header: null}", &consumers()).is_err());
        assert!(serde_yaml::from_str::<ApiKeyConfig>("{hide: true}").is_err());
    }
}
