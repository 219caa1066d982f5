//! `cors`: answers CORS preflight requests and adds `Access-Control-*` headers to responses for
//! allowed origins.
//!
//! ```yaml
//! - cors: {allow_origins: ["https://app.example"], allow_methods: [GET, POST],
//!          allow_headers: [authorization, content-type], expose_headers: [x-request-id],
//!          max_age_s: 600, allow_credentials: false}
//! ```
//! `allow_origins: ["*"]` allows any origin (and, as browsers require, cannot be combined with
//! `allow_credentials: true`).

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, RequestCtx, ResponseHeader, Session};
use async_trait::async_trait;
use http::{header, HeaderValue};
use serde::Deserialize;

/// The `cors` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`scheme://host[:port]`), or `"*"`.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for.
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight answer.
    #[serde(default)]
    pub max_age_s: Option<u64>,
    /// Allow cookies and credentials.
    #[serde(default)]
    pub allow_credentials: bool,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST"].iter().map(|s| s.to_string()).collect()
}

/// The `cors` filter, with its header values built once.
#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: HeaderValue,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

/// The allowed `Origin` of this request, remembered for the response phase.
#[derive(Clone)]
struct AllowedOrigin(HeaderValue);

fn join(list: &[String], field: &str) -> Result<Option<HeaderValue>, BuildError> {
    if list.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&list.join(", "))
        .map(Some)
        .map_err(|_| BuildError::at(field, "contains characters not allowed in a header"))
}

impl Cors {
    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The preflight answer for an allowed origin.
    fn preflight(&self, origin: HeaderValue) -> crate::Response {
        let mut headers = vec![
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (header::ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone()),
            (header::VARY, HeaderValue::from_static("Origin")),
        ];
        if let Some(h) = &self.headers {
            headers.push((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
        }
        if let Some(m) = &self.max_age {
            headers.push((header::ACCESS_CONTROL_MAX_AGE, m.clone()));
        }
        if self.credentials {
            headers.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
        crate::Response { status: 204, headers, body: bytes::Bytes::new() }
    }
}

impl FilterFactory for Cors {
    const NAME: &'static str = "cors";
    type Config = CorsConfig;

    fn build(c: CorsConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let any_origin = c.allow_origins.iter().any(|o| o == "*");
        if any_origin && c.allow_credentials {
            return Err(BuildError::at("allow_credentials", "cannot be true with allow_origins \"*\""));
        }
        if c.allow_origins.is_empty() {
            return Err(BuildError::at("allow_origins", "list at least one origin, or \"*\""));
        }
        let methods: Vec<String> = c.allow_methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        Ok(Cors {
            any_origin,
            origins: c.allow_origins,
            methods: join(&methods, "allow_methods")?.unwrap_or(HeaderValue::from_static("GET, HEAD, POST")),
            headers: join(&c.allow_headers, "allow_headers")?,
            expose: join(&c.expose_headers, "expose_headers")?,
            max_age: c.max_age_s.map(HeaderValue::from),
            credentials: c.allow_credentials,
        })
    }
}

#[async_trait]
impl Filter for Cors {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let req = session.req_header();
        let Some(origin) = req.headers.get(header::ORIGIN).cloned() else { return Ok(Flow::Continue) };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return Ok(Flow::Continue);
        }
        let value = if self.any_origin { HeaderValue::from_static("*") } else { origin };
        if req.method == http::Method::OPTIONS && req.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Ok(Flow::Respond(self.preflight(value)));
        }
        ctx.state.insert(AllowedOrigin(value));
        Ok(Flow::Continue)
    }

    fn response(&self, response: &mut ResponseHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(AllowedOrigin(origin)) = ctx.state.get::<AllowedOrigin>().cloned() else { return Ok(()) };
        response.insert_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)?;
        response.append_header(header::VARY, "Origin")?;
        if let Some(e) = &self.expose {
            response.insert_header(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone())?;
        }
        if self.credentials {
            response.insert_header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, FlowExt, TestRequest};

    fn build(yaml: &str) -> Result<Cors, BuildError> {
        testkit::build(yaml, &testkit::context())
    }

    async fn preflight_from(origin: &str) -> TestRequest {
        let headers = [("origin", origin), ("access-control-request-method", "PUT")];
        TestRequest::with_method("OPTIONS", "/", &headers).await
    }

    #[tokio::test]
    async fn preflight_carries_the_allowed_settings() {
        let c = build("{allow_origins: [\"https://app.example\"], allow_methods: [get, put], allow_headers: [authorization], max_age_s: 600}")
            .expect("valid");
        let r = preflight_from("https://app.example").await.request(&c).await.expect_respond();
        assert_eq!(r.status, 204);
        let get = |name: header::HeaderName| r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        assert_eq!(get(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(HeaderValue::from_static("https://app.example")));
        assert_eq!(get(header::ACCESS_CONTROL_ALLOW_METHODS), Some(HeaderValue::from_static("GET, PUT")));
        assert_eq!(get(header::ACCESS_CONTROL_MAX_AGE), Some(HeaderValue::from_static("600")));
        // Another origin gets no answer of the filter's own, and no CORS headers.
        let mut evil = preflight_from("https://evil.example").await;
        evil.request(&c).await.expect_continue();
        assert!(evil.response(&c, 200).headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn responses_to_an_allowed_origin_carry_the_headers() {
        let c = build("{allow_origins: [\"https://app.example\"], expose_headers: [x-request-id]}").expect("valid");
        let mut request = TestRequest::get("/", &[("origin", "https://app.example")]).await;
        request.request(&c).await.expect_continue();
        let response = request.response(&c, 200);
        assert_eq!(response.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(response.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
        assert_eq!(response.headers[header::VARY], "Origin");
    }

    #[test]
    fn any_origin_excludes_credentials() {
        assert!(build("{allow_origins: [\"*\"], allow_credentials: true}").is_err());
        assert!(build("{allow_origins: []}").is_err());
    }
}
