//! A test kit for filter authors: build a filter from the YAML a user would write, give it a real
//! Pingora [`Session`] made from raw request bytes, run its phases and look at what they decided.
//!
//! A filter is tested through the phases the core calls ([`Filter::request`],
//! [`Filter::upstream_request`], [`Filter::response`]), so a test sees what a client would, and
//! the filter needs no entry point of its own for tests. Nothing here opens a socket: the session
//! reads the request from memory, so tests run in microseconds and in parallel.
//!
//! ```
//! use portico_filters::headers::Headers;
//! use portico_filters::testkit::{self, FlowExt, TestRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let filter: Headers = testkit::build("{response: {set: {x-frame-options: DENY}}}", &testkit::context())
//!     .expect("valid config");
//! let mut request = TestRequest::get("/", &[]).await;
//! request.request(&filter).await.expect_continue();
//! let response = request.response(&filter, 200);
//! assert_eq!(response.headers["x-frame-options"], "DENY");
//! # }
//! ```
//!
//! The kit is part of the crate's public API (not `cfg(test)`), so a filter crate outside this
//! repository can use it from its own tests.

use crate::{BuildContext, BuildError, Consumer, Filter, FilterFactory, Flow, Reject, RequestCtx, Response};
use crate::{RequestHeader, ResponseHeader, Session};
use pingora::{Error, ErrorType};
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

/// A [`BuildContext`] with no consumers, paths resolved from the working directory, no Redis and
/// no place in a config: what a filter that needs none of these is built with.
pub fn context() -> BuildContext<'static> {
    BuildContext { consumers: &[], base_dir: Path::new("."), redis_url: None, place: "" }
}

/// [`context`] with these consumers, for filters that identify callers (`api_key`,
/// `basic_auth`, `jwt`). Set other fields with struct update syntax:
/// `BuildContext { base_dir: &dir, ..testkit::context_with(&consumers) }`.
pub fn context_with(consumers: &[Arc<Consumer>]) -> BuildContext<'_> {
    BuildContext { consumers, ..context() }
}

/// Builds filter `F` from a YAML snippet (`{key: value}`, the part after `- name:` in a config)
/// the way the config loader does: the snippet is read into [`FilterFactory::Config`] (an empty
/// snippet means the defaults), a field that does not fit is a [`BuildError`] naming its path,
/// and then [`FilterFactory::build`] validates it.
///
/// YAML that does not parse at all is a [`BuildError`] for the whole config.
pub fn build<F: FilterFactory>(yaml: &str, cx: &BuildContext<'_>) -> Result<F, BuildError> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| BuildError::whole(e.to_string()))?;
    // As in the registry: `{name: }` with nothing after the colon means "defaults".
    let value = if value.is_null() { serde_yaml::Value::Mapping(Default::default()) } else { value };
    let config: F::Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        BuildError::at(if path == "." { String::new() } else { path }, e.into_inner().to_string())
    })?;
    F::build(config, cx)
}

/// A Pingora HTTP/1 session that has read the request header in `raw` (`GET / HTTP/1.1\r\n...
/// \r\n\r\n`, optionally followed by a body), as the core's phases see it.
///
/// The session reads from memory (a `Cursor`, one of the IO types Pingora implements its `IO`
/// trait for); what a filter writes to it is accepted and dropped. An error when `raw` holds no
/// request or a request Pingora refuses.
pub async fn session(raw: &[u8]) -> pingora::Result<Session> {
    let mut session = Session::new_h1(Box::new(Cursor::new(raw.to_vec())));
    if session.read_request().await? {
        Ok(session)
    } else {
        Error::e_explain(ErrorType::ReadError, "the bytes hold no HTTP request")
    }
}

/// One request going through a filter: a real [`Session`] and the [`RequestCtx`] the core would
/// hand to every phase. Set `ctx` fields (`client_ip`, `consumer`, `route`) before running a
/// phase to play the part of the core and of earlier filters.
pub struct TestRequest {
    /// The downstream session, its request header read.
    pub session: Session,
    /// The per-request context, empty at first.
    pub ctx: RequestCtx,
}

impl TestRequest {
    /// A request read from `raw` bytes; see [`session`].
    pub async fn from_bytes(raw: &[u8]) -> pingora::Result<TestRequest> {
        Ok(TestRequest { session: session(raw).await?, ctx: RequestCtx::default() })
    }

    /// `GET uri HTTP/1.1` with a `Host: localhost` header and `headers`.
    ///
    /// # Panics
    /// When Pingora cannot read that request (a `uri` or header with spaces or line breaks):
    /// the test's own input is wrong.
    pub async fn get(uri: &str, headers: &[(&str, &str)]) -> TestRequest {
        Self::with_method("GET", uri, headers).await
    }

    /// `METHOD uri HTTP/1.1` with a `Host: localhost` header and `headers`, no body.
    ///
    /// # Panics
    /// As [`TestRequest::get`].
    pub async fn with_method(method: &str, uri: &str, headers: &[(&str, &str)]) -> TestRequest {
        let mut raw = format!("{method} {uri} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        match Self::from_bytes(raw.as_bytes()).await {
            Ok(request) => request,
            Err(e) => panic!("testkit: Pingora refused the test's request {raw:?}: {e}"),
        }
    }

    /// The request header as the filters see it (and may have changed it).
    pub fn header(&self) -> &RequestHeader {
        self.session.req_header()
    }

    /// Runs `filter`'s request phase.
    ///
    /// # Panics
    /// When the phase returns an error (built-in filters never do: they answer with
    /// [`Flow::Reject`]); call [`Filter::request`] directly to look at an error.
    pub async fn request(&mut self, filter: &dyn Filter) -> Flow {
        match filter.request(&mut self.session, &mut self.ctx).await {
            Ok(flow) => flow,
            Err(e) => panic!("testkit: the request phase failed: {e}"),
        }
    }

    /// Runs `filter`'s upstream-request phase on a copy of the request header, and returns the
    /// header that would go upstream.
    ///
    /// # Panics
    /// When the phase returns an error.
    pub fn upstream_request(&mut self, filter: &dyn Filter) -> RequestHeader {
        let mut upstream = self.session.req_header().clone();
        if let Err(e) = filter.upstream_request(&mut upstream, &mut self.ctx) {
            panic!("testkit: the upstream-request phase failed: {e}");
        }
        upstream
    }

    /// Runs `filter`'s response phase on an empty response with `status`, and returns the
    /// response header that would go to the client.
    ///
    /// # Panics
    /// When `status` is not a status code or the phase returns an error.
    pub fn response(&mut self, filter: &dyn Filter, status: u16) -> ResponseHeader {
        let response = match ResponseHeader::build(status, None) {
            Ok(response) => response,
            Err(e) => panic!("testkit: {status} is not a status: {e}"),
        };
        self.response_to(filter, response)
    }

    /// Runs `filter`'s response phase on `response`, and returns it as the client would get it.
    ///
    /// # Panics
    /// When the phase returns an error.
    pub fn response_to(&mut self, filter: &dyn Filter, mut response: ResponseHeader) -> ResponseHeader {
        if let Err(e) = filter.response(&mut response, &mut self.ctx) {
            panic!("testkit: the response phase failed: {e}");
        }
        response
    }
}

/// Assertions on what a request phase decided.
///
/// Each panics with the flow it got when the flow is not the one expected, so a failing test
/// says what the filter did instead.
pub trait FlowExt {
    /// The filter let the request go on.
    fn expect_continue(self);
    /// The filter refused the request: the refusal.
    fn expect_reject(self) -> Reject;
    /// The filter answered the request itself: the answer.
    fn expect_respond(self) -> Response;
}

impl FlowExt for Flow {
    fn expect_continue(self) {
        if !matches!(self, Flow::Continue) {
            panic!("expected Flow::Continue, got {self:?}");
        }
    }

    fn expect_reject(self) -> Reject {
        match self {
            Flow::Reject(reject) => reject,
            other => panic!("expected Flow::Reject, got {other:?}"),
        }
    }

    fn expect_respond(self) -> Response {
        match self {
            Flow::Respond(response) => response,
            other => panic!("expected Flow::Respond, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;

    #[test]
    fn builds_like_the_registry() {
        // The same errors, with the same paths, as a config file's filter item.
        for yaml in ["{request: {add: {'bad header': '1'}}}", "{requset: {}}", "[1, 2]", ""] {
            let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test yaml parses");
            let registry = crate::registry::build(Headers::NAME, value, &context()).err();
            assert_eq!(build::<Headers>(yaml, &context()).err(), registry, "{yaml:?}");
        }
        assert_eq!(
            build::<Headers>("{request: {add: {'bad header': '1'}}}", &context()).err().map(|e| e.path),
            Some("request.add.bad header".to_string())
        );
        assert!(build::<Headers>("{", &context()).is_err(), "YAML that does not parse");
    }

    #[tokio::test]
    async fn sessions_read_the_request() {
        let request = TestRequest::get("/a?b=c", &[("x-one", "1")]).await;
        assert_eq!(request.header().method, "GET");
        assert_eq!(request.header().uri, "/a?b=c");
        assert_eq!(request.header().headers["x-one"], "1");
        let post = TestRequest::from_bytes(b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await.expect("valid");
        assert_eq!(post.header().method, "POST");
        assert!(session(b"").await.is_err(), "no request");
        assert!(session(b"not http\r\n\r\n").await.is_err(), "not a request");
    }

    #[test]
    #[should_panic(expected = "expected Flow::Reject, got Continue")]
    fn assertions_say_what_they_got() {
        Flow::Continue.expect_reject();
    }
}
