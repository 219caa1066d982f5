#![doc = include_str!("../README.md")]

pub mod acl;
pub mod api_key;
pub mod basic_auth;
mod body;
mod chain;
pub mod compression;
pub mod context;
pub mod cors;
mod credentials;
pub mod fault;
pub mod grpc_web;
pub mod headers;
pub mod ip_restrict;
pub mod json_schema;
pub mod json_transform;
pub mod jwt;
pub mod metrics;
pub mod rate_limit;
pub mod registry;
pub mod reject;
pub mod request_size_limit;
pub mod testkit;

pub use chain::FilterChain;
pub use context::{Consumer, RequestCtx};
pub use credentials::{percent_decode, raw_query_param};
pub use pingora::http::{RequestHeader, ResponseHeader};
pub use pingora::proxy::Session;
/// The result of a filter phase (Pingora's), re-exported so that a filter in a user's crate
/// names it without depending on `pingora` itself (and so on the same version).
pub use pingora::Result;
pub use registry::{BuildContext, BuildError, FilterFactory, Registry};
pub use reject::Reject;

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// What a filter's request phase decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the next filter, and then to the upstream.
    Continue,
    /// Stop here: Portico answers with this error as a JSON body.
    Reject(Reject),
    /// Answer with this response instead of going upstream (a CORS preflight, a cached answer);
    /// the core writes it and runs the response filters over it.
    Respond(Response),
}

/// A whole response a filter answers with.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

/// A step in a listener's or a route's filter chain.
///
/// Filters are built once per config (see [`registry`]) and shared by every request, so they keep
/// per-request state in [`RequestCtx::state`], never in `self`. The chain runs the listener's
/// filters, then the route's, in order for the request phases and in reverse order for
/// [`Filter::response`].
///
/// Every method has a default that does nothing, so a filter implements only the phases it
/// needs.
#[async_trait]
pub trait Filter: Send + Sync + 'static {
    /// Runs once the request header is read and the route is known, before any upstream is
    /// chosen.
    ///
    /// Return [`Flow::Reject`] to answer with an error, [`Flow::Respond`] to answer with a
    /// response of the filter's own (the core writes it), or [`Flow::Continue`] to go on. Later
    /// filters of the chain do not run once one has answered.
    ///
    /// By default this does nothing and returns `Ok(Flow::Continue)`.
    async fn request(&self, _session: &mut Session, _ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        Ok(Flow::Continue)
    }

    /// Whether [`Filter::request_body`] should be called; the core skips the body phase for
    /// chains where no filter wants it, so return `true` only when the filter looks at bodies.
    ///
    /// By default `false`.
    fn wants_request_body(&self) -> bool {
        false
    }

    /// Runs for each chunk of the request body as it streams to the upstream. `body` is one
    /// chunk, not the whole body. A [`Flow::Reject`] here ends the request with that error
    /// (if the response has not started yet).
    ///
    /// By default this does nothing and returns [`Flow::Continue`].
    fn request_body(&self, _body: Option<&Bytes>, _end_of_stream: bool, _ctx: &mut RequestCtx) -> Flow {
        Flow::Continue
    }

    /// Runs for each chunk of the request body after [`Filter::request_body`], with the chunk
    /// to change: a filter that rewrites bodies (a JSON transform, a gRPC-Web text decoder)
    /// replaces `*body` here, keeping back chunks until it has what it needs and emitting the
    /// result at `end_of_stream`. A filter that changes the body's length also removes
    /// `Content-Length` in [`Filter::upstream_request`]. Called only when
    /// [`Filter::wants_request_body`] is `true`. An `Err` ends the request (use
    /// [`RequestCtx::state`] to keep a [`Reject`] for the answer).
    ///
    /// By default this leaves the body alone.
    fn edit_request_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        Ok(())
    }

    /// Whether [`Filter::response_body`] should be called; the core skips the phase for chains
    /// where no filter wants it.
    ///
    /// By default `false`.
    fn wants_response_body(&self) -> bool {
        false
    }

    /// Runs for each chunk of the response body on its way to the client, in reverse chain order
    /// (like [`Filter::response`]), for upstream responses and cache hits. The filter may
    /// replace `*body`, keep chunks back (set `None`) and emit them at `end_of_stream`. A filter
    /// that changes the length removes `Content-Length` in [`Filter::response`].
    ///
    /// By default this leaves the body alone.
    fn response_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        Ok(())
    }

    /// Runs when the upstream's response trailers arrive (an HTTP/2 upstream's: gRPC's
    /// `grpc-status` and `grpc-message`), in reverse chain order, before they go to the client.
    /// The filter may edit them, or return `Some(bytes)` to end the response body with these
    /// bytes instead of sending trailers (gRPC-Web carries its trailers in the body; an
    /// HTTP/1.1 client cannot get trailers at all); the first filter that returns `Some` wins
    /// and the filters after it do not run.
    ///
    /// By default this leaves the trailers alone and returns `Ok(None)`.
    fn response_trailers(
        &self,
        _trailers: &mut http::HeaderMap,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<Bytes>> {
        Ok(None)
    }

    /// Runs when the core picks an upstream pool: returning `Some(name)` sends this request to
    /// the named upstream instead of the route's (traffic split, header canary). The first filter
    /// that returns `Some` wins.
    ///
    /// By default `None`: keep the route's upstream.
    fn upstream_select(&self, _session: &Session, _ctx: &mut RequestCtx) -> Option<Arc<str>> {
        None
    }

    /// Runs just before the request header is sent upstream: edit headers or the path here.
    ///
    /// By default this does nothing.
    fn upstream_request(&self, _request: &mut RequestHeader, _ctx: &mut RequestCtx) -> pingora::Result<()> {
        Ok(())
    }

    /// Query parameters that carry secrets (a token, an API key): the access log shows them as
    /// `[redacted]`. Asked once, when the chain is built.
    ///
    /// By default none.
    fn secret_query_params(&self) -> Vec<String> {
        Vec::new()
    }

    /// Request headers this filter sets towards the upstream to say who the caller is (a
    /// verified claim, a consumer name): headers an upstream trusts because Portico set them.
    /// Asked once, when the chain is built; the core strips these names from every request that
    /// arrives on an edge listener, on every route, so a client cannot pose as a verified caller
    /// on a route that lacks this filter (see [`FilterChain::identity_headers`]).
    ///
    /// A filter that sets such a header must also remove any value the client sent (on its own
    /// route the core's strip and the filter's own both apply).
    ///
    /// By default none.
    fn sets_request_headers(&self) -> Vec<http::HeaderName> {
        Vec::new()
    }

    /// Runs before the response header goes to the client, in reverse chain order; it also runs
    /// on responses Portico makes itself (errors, `respond` routes), so CORS and header edits
    /// apply everywhere.
    ///
    /// By default this does nothing.
    fn response(&self, _response: &mut ResponseHeader, _ctx: &mut RequestCtx) -> pingora::Result<()> {
        Ok(())
    }
}
