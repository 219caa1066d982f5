//! `headers`: add, set and remove request and response headers.
//!
//! ```yaml
//! - headers: {request: {add: {x-a: "1"}, set: {x-env: prod}, remove: [x-b]},
//!             response: {remove: [server], set: {x-frame-options: DENY}}}
//! ```

use crate::{BuildContext, BuildError, Filter, FilterFactory, RequestCtx, RequestHeader, ResponseHeader};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Edits for one direction.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditsConfig {
    /// Appended, keeping any existing values.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Replaces any existing values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The `headers` filter's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// Edits to the request sent upstream.
    #[serde(default)]
    pub request: EditsConfig,
    /// Edits to the response sent to the client.
    #[serde(default)]
    pub response: EditsConfig,
}

/// Header edits compiled once: names and values parsed at config time.
#[derive(Debug, Default)]
struct Edits {
    add: Vec<(HeaderName, HeaderValue)>,
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl Edits {
    fn compile(cfg: EditsConfig, side: &str) -> Result<Self, BuildError> {
        let pair = |op: &str, (k, v): (String, String)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| BuildError::at(format!("{side}.{op}.{k}"), "invalid header name"))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|_| BuildError::at(format!("{side}.{op}.{k}"), "invalid header value"))?;
            Ok::<_, BuildError>((name, value))
        };
        let add = cfg.add.into_iter().map(|kv| pair("add", kv)).collect::<Result<_, _>>()?;
        let set = cfg.set.into_iter().map(|kv| pair("set", kv)).collect::<Result<_, _>>()?;
        let remove = cfg
            .remove
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| BuildError::at(format!("{side}.remove[{i}]"), "invalid header name"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Edits { add, set, remove })
    }

    fn is_empty(&self) -> bool {
        self.add.is_empty() && self.set.is_empty() && self.remove.is_empty()
    }
}

/// Applies one set of edits to any Pingora header type.
macro_rules! apply {
    ($edits:expr, $h:expr) => {{
        for name in &$edits.remove {
            $h.remove_header(name);
        }
        for (name, value) in &$edits.set {
            $h.insert_header(name.clone(), value.clone())?;
        }
        for (name, value) in &$edits.add {
            $h.append_header(name.clone(), value.clone())?;
        }
    }};
}

/// The `headers` filter.
#[derive(Debug)]
pub struct Headers {
    request: Edits,
    response: Edits,
}

impl FilterFactory for Headers {
    const NAME: &'static str = "headers";
    type Config = HeadersConfig;

    fn build(config: HeadersConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        Ok(Headers {
            request: Edits::compile(config.request, "request")?,
            response: Edits::compile(config.response, "response")?,
        })
    }
}

impl Filter for Headers {
    fn upstream_request(&self, request: &mut RequestHeader, _ctx: &mut RequestCtx) -> pingora::Result<()> {
        if !self.request.is_empty() {
            apply!(self.request, request);
        }
        Ok(())
    }

    fn response(&self, response: &mut ResponseHeader, _ctx: &mut RequestCtx) -> pingora::Result<()> {
        if !self.response.is_empty() {
            apply!(self.response, response);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, TestRequest};

    fn build(yaml: &str) -> Result<Headers, BuildError> {
        testkit::build(yaml, &testkit::context())
    }

    #[tokio::test]
    async fn edits_request_and_response_headers() {
        let f = build("{request: {add: {x-a: '1'}, set: {x-s: new}, remove: [x-gone]}, response: {remove: [server], set: {x-r: '2'}}}")
            .expect("valid config");
        let mut request = TestRequest::get("/", &[("x-s", "old"), ("x-gone", "1"), ("x-a", "0")]).await;
        let req = request.upstream_request(&f);
        assert_eq!(req.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(req.headers.get("x-s").map(|v| v.as_bytes()), Some(&b"new"[..]));
        assert!(req.headers.get("x-gone").is_none());

        let mut resp = ResponseHeader::build(200, None).expect("response");
        resp.insert_header("server", "x").expect("header");
        let resp = request.response_to(&f, resp);
        assert!(resp.headers.get("server").is_none());
        assert_eq!(resp.headers.get("x-r").map(|v| v.as_bytes()), Some(&b"2"[..]));
    }

    #[test]
    fn rejects_bad_header_names_and_unknown_keys() {
        let err = build("{request: {add: {'bad header': '1'}}}").expect_err("bad name");
        assert_eq!(err.path, "request.add.bad header");
        assert!(serde_yaml::from_str::<HeadersConfig>("{requset: {}}").is_err());
    }
}
