//! A compiled list of filters and the loops that run one phase over it.

use crate::{Filter, Flow, RequestCtx, RequestHeader, ResponseHeader, Session};
use bytes::Bytes;
use http::HeaderName;
use std::sync::Arc;

/// Filters of one listener or one route, in config order. Cheap to clone.
#[derive(Clone, Default)]
pub struct FilterChain {
    filters: Arc<[Arc<dyn Filter>]>,
    wants_body: bool,
    wants_response_body: bool,
    secret_query_params: Arc<[String]>,
    identity_headers: Arc<[HeaderName]>,
}

impl std::fmt::Debug for FilterChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FilterChain({} filters)", self.filters.len())
    }
}

impl FilterChain {
    /// Wraps built filters.
    pub fn new(filters: Vec<Arc<dyn Filter>>) -> Self {
        let wants_body = filters.iter().any(|f| f.wants_request_body());
        let wants_response_body = filters.iter().any(|f| f.wants_response_body());
        let secret_query_params = filters.iter().flat_map(|f| f.secret_query_params()).collect();
        let mut identity_headers: Vec<HeaderName> = Vec::new();
        for name in filters.iter().flat_map(|f| f.sets_request_headers()) {
            if !identity_headers.contains(&name) {
                identity_headers.push(name);
            }
        }
        FilterChain {
            filters: filters.into(),
            wants_body,
            wants_response_body,
            secret_query_params,
            identity_headers: identity_headers.into(),
        }
    }

    /// Whether the chain has no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Query parameters whose values the access log must not show.
    pub fn secret_query_params(&self) -> &[String] {
        &self.secret_query_params
    }

    /// The identity headers the chain's filters set upstream ([`Filter::sets_request_headers`]),
    /// each once, in chain order: what an edge listener strips from client requests.
    pub fn identity_headers(&self) -> &[HeaderName] {
        &self.identity_headers
    }

    /// Whether any filter wants to see the request body.
    pub fn wants_body(&self) -> bool {
        self.wants_body
    }

    /// Runs the request phase in order; stops at the first filter that does not continue.
    pub async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        for f in self.filters.iter() {
            match f.request(session, ctx).await? {
                Flow::Continue => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Continue)
    }

    /// Whether any filter wants to see the response body.
    pub fn wants_response_body(&self) -> bool {
        self.wants_response_body
    }

    /// Runs the request-body phases in order: each filter looks at the chunk
    /// ([`Filter::request_body`]), then may change it ([`Filter::edit_request_body`]) before the
    /// next filter sees it.
    pub fn request_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        if !self.wants_body {
            return Ok(Flow::Continue);
        }
        for f in self.filters.iter() {
            match f.request_body(body.as_ref(), end, ctx) {
                Flow::Continue => f.edit_request_body(body, end, ctx)?,
                other => return Ok(other),
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs the response-body phase in reverse order.
    pub fn response_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        if !self.wants_response_body {
            return Ok(());
        }
        for f in self.filters.iter().rev() {
            f.response_body(body, end, ctx)?;
        }
        Ok(())
    }

    /// Runs the response-trailers phase in reverse order, until a filter turns the trailers
    /// into the body's last bytes ([`Filter::response_trailers`]).
    pub fn response_trailers(
        &self,
        trailers: &mut http::HeaderMap,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<Bytes>> {
        for f in self.filters.iter().rev() {
            if let Some(last) = f.response_trailers(trailers, ctx)? {
                return Ok(Some(last));
            }
        }
        Ok(None)
    }

    /// The first upstream override any filter asks for.
    pub fn upstream_select(&self, session: &Session, ctx: &mut RequestCtx) -> Option<Arc<str>> {
        self.filters.iter().find_map(|f| f.upstream_select(session, ctx))
    }

    /// Runs the upstream-request phase in order.
    pub fn upstream_request(&self, req: &mut RequestHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        for f in self.filters.iter() {
            f.upstream_request(req, ctx)?;
        }
        Ok(())
    }

    /// Runs the response phase in reverse order.
    pub fn response(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        for f in self.filters.iter().rev() {
            f.response(resp, ctx)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FlowExt, TestRequest};
    use crate::Reject;
    use async_trait::async_trait;

    /// Notes its name in each phase; refuses in the request phase when `refuse` is set.
    struct Mark {
        name: &'static str,
        refuse: bool,
    }

    /// The names of the filters whose request phase ran, in order.
    #[derive(Clone, Default)]
    struct Ran(Vec<&'static str>);

    #[async_trait]
    impl Filter for Mark {
        async fn request(&self, _session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
            let mut ran = ctx.state.get::<Ran>().cloned().unwrap_or_default();
            ran.0.push(self.name);
            ctx.state.insert(ran);
            Ok(if self.refuse { Flow::Reject(Reject::new(403, "forbidden", self.name)) } else { Flow::Continue })
        }

        fn secret_query_params(&self) -> Vec<String> {
            vec![format!("{}_token", self.name)]
        }

        fn sets_request_headers(&self) -> Vec<HeaderName> {
            vec![
                HeaderName::from_static("x-verified"),
                HeaderName::from_bytes(format!("x-{}", self.name).as_bytes()).expect("a header name"),
            ]
        }

        fn response(&self, response: &mut ResponseHeader, _ctx: &mut RequestCtx) -> pingora::Result<()> {
            response.append_header("x-order", self.name)?;
            Ok(())
        }

        fn response_trailers(
            &self,
            trailers: &mut http::HeaderMap,
            _ctx: &mut RequestCtx,
        ) -> pingora::Result<Option<Bytes>> {
            trailers.append("x-order", http::HeaderValue::from_static(self.name));
            Ok(self.refuse.then(|| Bytes::from(self.name)))
        }
    }

    fn chain(marks: &[(&'static str, bool)]) -> FilterChain {
        FilterChain::new(
            marks.iter().map(|&(name, refuse)| Arc::new(Mark { name, refuse }) as Arc<dyn Filter>).collect(),
        )
    }

    #[tokio::test]
    async fn request_phases_run_in_order_until_one_answers() {
        let mut request = TestRequest::get("/", &[]).await;
        chain(&[("a", false), ("b", false)]).request(&mut request.session, &mut request.ctx).await.expect("runs");
        assert_eq!(request.ctx.state.get::<Ran>().map(|r| r.0.clone()), Some(vec!["a", "b"]));

        let mut request = TestRequest::get("/", &[]).await;
        let refusing = chain(&[("a", false), ("b", true), ("c", false)]);
        let flow = refusing.request(&mut request.session, &mut request.ctx).await.expect("runs");
        assert_eq!(flow.expect_reject().message, "b");
        assert_eq!(request.ctx.state.get::<Ran>().map(|r| r.0.clone()), Some(vec!["a", "b"]), "c never ran");
    }

    #[test]
    fn responses_run_in_reverse_order() {
        let mut response = ResponseHeader::build(200, None).expect("response");
        chain(&[("a", false), ("b", false)]).response(&mut response, &mut RequestCtx::default()).expect("runs");
        let order: Vec<_> = response.headers.get_all("x-order").iter().map(|v| v.to_str().expect("ascii")).collect();
        assert_eq!(order, ["b", "a"]);
    }

    #[test]
    fn trailers_run_in_reverse_order_until_one_ends_the_body() {
        let mut trailers = http::HeaderMap::new();
        let last = chain(&[("a", true), ("b", false)]).response_trailers(&mut trailers, &mut RequestCtx::default());
        assert_eq!(last.expect("runs"), Some(Bytes::from("a")), "a turned them into the body's end");
        let order: Vec<_> = trailers.get_all("x-order").iter().map(|v| v.to_str().expect("ascii")).collect();
        assert_eq!(order, ["b", "a"]);
        let mut trailers = http::HeaderMap::new();
        let kept = chain(&[("a", false)]).response_trailers(&mut trailers, &mut RequestCtx::default());
        assert_eq!(kept.expect("runs"), None, "the trailers go as trailers");
    }

    #[test]
    fn what_the_filters_ask_for_is_gathered_once() {
        let c = chain(&[("a", false), ("b", false)]);
        assert_eq!(c.secret_query_params(), ["a_token", "b_token"]);
        assert_eq!(c.identity_headers(), ["x-verified", "x-a", "x-b"], "each name once, in order");
        assert!(!c.wants_body(), "no filter looks at bodies");
        assert!(!c.wants_response_body(), "no filter looks at response bodies");
        assert!(FilterChain::default().is_empty());
        assert!(FilterChain::default().identity_headers().is_empty());
    }
}
