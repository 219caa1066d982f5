//! A compiled list of filters and the loops that run one phase over it.

use crate::{Filter, Flow, RequestCtx, RequestHeader, ResponseHeader, Session};
use bytes::Bytes;
use std::sync::Arc;

/// Filters of one listener or one route, in config order. Cheap to clone.
#[derive(Clone, Default)]
pub struct FilterChain {
    filters: Arc<[Arc<dyn Filter>]>,
    wants_body: bool,
    secret_query_params: Arc<[String]>,
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
        let secret_query_params = filters.iter().flat_map(|f| f.secret_query_params()).collect();
        FilterChain { filters: filters.into(), wants_body, secret_query_params }
    }

    /// Whether the chain has no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Query parameters whose values the access log must not show.
    pub fn secret_query_params(&self) -> &[String] {
        &self.secret_query_params
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

    /// Runs the request-body phase in order.
    pub fn request_body(&self, body: Option<&Bytes>, end: bool, ctx: &mut RequestCtx) -> Flow {
        if !self.wants_body {
            return Flow::Continue;
        }
        for f in self.filters.iter() {
            match f.request_body(body, end, ctx) {
                Flow::Continue => {}
                other => return other,
            }
        }
        Flow::Continue
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
