//! `impl ProxyHttp`: Pingora's phases, in the order a request meets them, each a few numbered
//! steps that call into the files beside this one.
//!
//! # The request path
//!
//! ```text
//!  phase                           what it may do                                 beside it
//!  1  early_request_filter         pin the config; count the request in flight;   ctx.rs, guards.rs
//!                                  request id, trace context, client certificate
//!  2  request_filter               framing, host, canonical path, forged          request.rs, canon.rs,
//!                                  identity headers (400, 431, 501);
//!                                  redirect to HTTPS; find the route (404, 405);  select.rs, respond.rs
//!                                  run the chains (refuse, answer, annotate);
//!                                  answer a static route; take the route's slot;
//!                                  answer an aggregate route (src/compose/)
//!  2b request_cache_filter         a route that caches turns the cache on (its    cache.rs,
//!     cache_key_callback           methods); the key; lookup, lock, hits, 304s,   src/cache/
//!     cache_vary_filter            ranges and stale hits are pingora-cache's: a
//!     response_cache_filter        hit skips 3 to 7; storable or not; stale
//!     should_serve_stale           while revalidating or on origin errors
//!  3  request_body_filter          keep the mirror's copy; body filters refuse    mirror.rs
//!                                  (a tunnel's bytes: only counted)               websocket/
//!  4  upstream_peer                pick the pool (filter, canary, split); take    peer.rs, select.rs,
//!                                  its slot; ask its breaker; pick a healthy      retry.rs, guards.rs
//!                                  target; bound the peer by the route's timeout
//!                                  (an upgrade: HTTP/1.1, the idle timeout);      websocket/
//!                                  HTTP/2: wait for the target's turn             multiplex.rs
//!  4a connected_to_upstream        a stream: the next request's turn              multiplex.rs
//!  5  fail_to_connect              record the attempt, a warn line; retry or not  retry.rs, failure.rs
//!  6  upstream_request_filter      rewrite, hop-by-hop, X-Forwarded-*, ids; then  forward.rs
//!                                  the chains' edits
//!  7  upstream_response_filter     drop a response whose status (or gRPC          retry.rs
//!                                  status) the route retries on
//!  8  response_filter              hop-by-hop; x-cache-status; request id;        respond.rs,
//!                                  chains in reverse (hits too); a 101 opens      cache.rs,
//!                                  the tunnel                                     websocket/
//!  9  upstream_response_body_filter  cut the body off once the route's timeout
//!                                  is spent (not a tunnel's)
//! 10  response_body_filter         the chains' response-body phases, in reverse   websocket/
//!                                  (a tunnel's bytes: only counted)
//! 10a response_trailer_filter      a gRPC call's status; the chains' trailer       grpc.rs
//!                                  phases, in reverse (gRPC-Web: the last frame)
//! 11  error_while_proxy            record the attempt, a warn line; retry or not  retry.rs, failure.rs
//! 12  fail_to_proxy                answer the error that ended the request        errors.rs, respond.rs
//! 13  logging                      record the last attempt; give back what the    access.rs,
//!                                  request holds; metrics; mirror; access log     failure.rs
//!                                  (a tunnel's: at its close, with its reason)    websocket/
//! ```
//!
//! 5, 11 and 12 run only when something fails; 4 to 11 run again for every retry; 13 always runs.
//!
//! Invariants:
//! - A request runs on the config it arrived on (`ctx.request.runtime`), whatever reloads come.
//! - Every response Portico makes itself is JSON `{"error", "message", "request_id"}`, and every
//!   response carries `x-request-id`; Portico's own answers are all listed in `errors.rs`.
//! - Filter chains run the listener's, then the route's on the way in, the reverse on the way
//!   out ([`Ctx::chains`]).
//! - What a request holds (its in-flight count, `max_in_flight` slots, an attempt's share of its
//!   target and breaker) is a guard given back on drop (`guards.rs`).
//! - Every retry decision is in `retry.rs`.

mod access;
mod cache;
pub(crate) mod canon;
mod ctx;
pub(crate) mod errors;
mod failure;
pub(crate) mod forward;
mod grpc;
pub(crate) mod guards;
mod multiplex;
mod peer;
mod request;
pub(crate) mod respond;
mod retry;
pub(crate) mod select;
mod websocket;

pub use ctx::Ctx;
pub use websocket::Tunnels;

use crate::config::Role;
use crate::state::Shared;
use async_trait::async_trait;
use bytes::Bytes;
use errors::{Answer, ErrorKind, UpstreamErrorKind};
use guards::InFlight;
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, RespCacheable};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::ErrorType;
use portico_filters::{Flow, Reject};
use std::sync::Arc;
use std::time::Instant;

/// The proxy logic of one listener.
pub struct Portico {
    shared: Arc<Shared>,
    listener: Arc<str>,
}

impl Portico {
    /// Proxy logic for the listener called `listener`.
    pub fn new(shared: Arc<Shared>, listener: Arc<str>) -> Self {
        Portico { shared, listener }
    }
}

#[async_trait]
impl ProxyHttp for Portico {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.listener.clone())
    }

    /// 1. Who is asking, on which config.
    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        // 1. Pin the config this request runs on, and count it in flight.
        let runtime = self.shared.runtime.load_full();
        ctx.request.listener = runtime.listeners.get(&self.listener).cloned();
        ctx.request.runtime = Some(runtime);
        ctx.request.in_flight = Some(InFlight::enter(self.shared.metrics.in_flight()));
        // 2. The listener's `keepalive_timeout_s` (Pingora set the session from the request's own
        //    keep-alive wishes just before; those that ask to close still close).
        if let Some(l) = &ctx.request.listener {
            match l.keepalive_timeout {
                None => session.set_keepalive(None),
                Some(t) if session.get_keepalive().is_some() => session.set_keepalive(Some(t.as_secs().max(1))),
                Some(_) => {}
            }
            // The listener's body and write timeouts (HTTP/2 streams are made by Pingora's own
            // loop, so src/keepalive cannot set them there).
            crate::keepalive::downstream_timeouts(session.as_downstream_mut(), &l.limits);
        }
        // 3. Request id (kept only from a trusted peer), trace context, client address and
        //    certificate.
        let trusted = ctx.request.listener.as_ref().is_some_and(|l| l.role == Role::Internal);
        ctx.identify(session, trusted);
        ctx.request.grpc = grpc::is_grpc(session.req_header());
        Ok(())
    }

    /// 2. The route, its filters, and whether the request goes upstream (`Ok(true)`: answered).
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        request::filter(&self.shared, &self.listener, session, ctx).await
    }

    /// 2b. Whether this request may use the shared cache (after the filters: they run on hits).
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        cache::enable(session, ctx);
        Ok(())
    }

    /// 2b. The request's cache key, from its route's `key:`.
    fn cache_key_callback(&self, session: &Session, ctx: &mut Ctx) -> Result<CacheKey> {
        cache::key(session, ctx)
    }

    /// 2b. What a stored response varies on: the route's `vary:` and the origin's `Vary`.
    fn cache_vary_filter(&self, meta: &CacheMeta, ctx: &mut Ctx, req: &RequestHeader) -> Option<HashBinary> {
        cache::vary(meta, ctx, req)
    }

    /// 2b. Whether the upstream's response may be stored (RFC 9111 plus the route's policy).
    fn response_cache_filter(&self, session: &Session, resp: &ResponseHeader, ctx: &mut Ctx) -> Result<RespCacheable> {
        Ok(cache::cacheable(session, resp, ctx))
    }

    /// 2b. Whether a stale entry may be served (while revalidating, or as the origin fails).
    fn should_serve_stale(&self, _session: &mut Session, _ctx: &mut Ctx, error: Option<&Error>) -> bool {
        cache::serve_stale(error)
    }

    /// 3. Each chunk of the request body, as it is read.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if websocket::client_bytes(ctx, body, end_of_stream) {
            return Ok(());
        }
        for chain in ctx.chains().iter() {
            if let Flow::Reject(r) = chain.request_body(body, end_of_stream, &mut ctx.filter)? {
                let status = r.status;
                ctx.outcome.reject = Some(r);
                return Error::e_explain(ErrorType::HTTPStatus(status), "refused by a request body filter");
            }
        }
        // The mirror sends the body as it went upstream, after the filters' edits.
        let mirror = ctx.routing.route.as_ref().and_then(|r| r.mirror.as_ref());
        crate::mirror::keep_body(&mut ctx.routing.mirror_body, body.as_ref(), mirror);
        Ok(())
    }

    /// 4. Where this attempt goes; runs again for every retry.
    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let peer = peer::choose(session, ctx)?;
        multiplex::take_turn(ctx, &peer, &self.shared.metrics).await;
        Ok(peer)
    }

    /// 4a. A connection (new or reused) and, on HTTP/2, a stream: the next request's turn.
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        multiplex::pass_turn(ctx);
        Ok(())
    }

    /// 5. The connection could not be made: whether to try again.
    fn fail_to_connect(&self, session: &mut Session, _peer: &HttpPeer, ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
        multiplex::pass_turn(ctx);
        let kind = UpstreamErrorKind::of(&e);
        failure::log_attempt(ctx, &e);
        ctx.upstream.finish_attempt(&self.shared.metrics, false, kind);
        ctx.upstream.last_failure = Some(kind.error_type());
        if let Some(span) = ctx.span() {
            span.attempt_failed(kind.error_type());
        }
        e.set_retry(retry::after_connect_failure(&self.shared.metrics, session, ctx, kind));
        e
    }

    /// 6. The request header as it goes upstream.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forward::prepare_upstream_request(session, upstream_request, ctx)?;
        for chain in ctx.chains().iter() {
            chain.upstream_request(upstream_request, &mut ctx.filter)?;
        }
        if ctx.routing.mirror_body.is_some() {
            ctx.routing.mirror_header = Some(Box::new(upstream_request.clone()));
        }
        Ok(())
    }

    /// 7. The upstream's response header, before anything reaches the client.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.outcome.upstream_time = ctx.upstream.started.map(|s| s.elapsed());
        multiplex::saw_version(ctx, upstream_response.version);
        let status = upstream_response.status.as_u16();
        if let Some(span) = ctx.span() {
            span.attempt_status(status);
        }
        // A gRPC call's Trailers-Only answer carries its status here.
        let grpc_status = if ctx.request.grpc { grpc::status_of(&upstream_response.headers) } else { None };
        ctx.outcome.grpc_status = grpc_status;
        let retry = retry::on_status(&self.shared.metrics, session, ctx, status)
            .or_else(|| grpc_status.and_then(|code| retry::on_grpc_status(&self.shared.metrics, session, ctx, code)));
        match retry {
            Some(retry) => Err(retry),
            None => Ok(()),
        }
    }

    /// 8. The response header as it goes to the client.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        websocket::upgraded(session, upstream_response, ctx, &self.shared.tunnels);
        forward::strip_hop_by_hop_response(upstream_response);
        cache::decorate(session, upstream_response, ctx)?;
        respond::decorate(upstream_response, ctx)
    }

    /// 9. Each chunk of the upstream's response body.
    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        // Each read is already bounded by what was left of the route's timeout when the attempt
        // began; a body that keeps trickling in is cut off here once the whole timeout is spent.
        let spent = ctx.upstream.deadline.is_some_and(|d| Instant::now() >= d);
        if !end_of_stream && spent && !websocket::is_tunnel(ctx) {
            ctx.outcome.error = Some(ErrorKind::RouteTimeout);
            return Error::e_explain(
                ErrorType::new("RouteTimeout"),
                "the route's timeout_ms ran out while the response body was streaming",
            );
        }
        Ok(None)
    }

    /// 10. Each chunk of the response body on its way to the client (upstream or cache).
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if websocket::upstream_bytes(ctx, body, end_of_stream) {
            return Ok(None);
        }
        for chain in ctx.chains().rev() {
            chain.response_body(body, end_of_stream, &mut ctx.filter)?;
        }
        Ok(None)
    }

    /// 10a. The upstream's response trailers (HTTP/2): a gRPC call's status; the chains'
    ///      trailer phases, in reverse (gRPC-Web turns them into the body's last frame).
    async fn response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut Ctx,
    ) -> Result<Option<Bytes>> {
        if let Some(code) = grpc::status_of(trailers).filter(|_| ctx.request.grpc) {
            ctx.outcome.grpc_status = Some(code);
        }
        for chain in ctx.chains().rev() {
            if let Some(last) = chain.response_trailers(trailers, &mut ctx.filter)? {
                return Ok(Some(last));
            }
        }
        Ok(None)
    }

    /// 11. The exchange with the upstream failed midway: whether to try again.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let kind = UpstreamErrorKind::of(&e);
        let status_retry = ctx.upstream.retry_status.take().is_some();
        if !status_retry {
            failure::log_attempt(ctx, &e);
        }
        let counted = if status_retry { UpstreamErrorKind::Status } else { kind };
        ctx.upstream.finish_attempt(&self.shared.metrics, false, counted);
        ctx.upstream.last_failure = Some(counted.error_type());
        // A status retry's span has its status already (phase 7); it ends with the next attempt.
        if let (Some(span), false) = (ctx.request.span.as_mut(), status_retry) {
            span.attempt_failed(kind.error_type());
        }
        let mut e = e.more_context(format!("Peer: {peer}"));
        retry::after_proxy_error(&self.shared.metrics, session, ctx, &mut e, kind, status_retry, client_reused);
        e
    }

    /// 12. The request ended with an error: answer it, if the client can still be answered.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        // 1. A refusal a phase kept, else the catalogue's answer for the error.
        let (reject, fault) = match ctx.outcome.reject.take() {
            Some(r) => (r, false),
            None => match Answer::from_error(e) {
                Some(answer) => (Reject::from(answer), answer.is_fault()),
                None => {
                    ctx.outcome.error = Some(ErrorKind::ClientClosed);
                    return FailToProxy { error_code: 0, can_reuse_downstream: false };
                }
            },
        };
        // 2. Sent, unless a response has begun; then the connection ends cleanly (`failure`).
        if session.response_written().is_none() {
            failure::answer_then_close(session, ctx, &reject, e).await;
        }
        ctx.outcome.error =
            Some(if fault { ErrorKind::Failed(reject.error) } else { ErrorKind::Answered(reject.error) });
        FailToProxy { error_code: reject.status, can_reuse_downstream: false }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &Ctx, _error: &Error) -> bool {
        // Refusals by filters, limits and failing upstreams are expected outcomes, not proxy errors.
        ctx.outcome.error.is_some_and(ErrorKind::is_expected)
    }

    /// 13. The request is done (whatever happened): bookkeeping.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map(|r| r.status.as_u16()).unwrap_or(0);
        // 1. How the last attempt went.
        let upstream_ok = e.is_none() && status > 0 && status < 500;
        let kind = if e.is_some() { UpstreamErrorKind::Other } else { UpstreamErrorKind::Status };
        ctx.upstream.finish_attempt(&self.shared.metrics, upstream_ok, kind);
        // 2. Give back what the request holds now, not when Pingora drops the context.
        ctx.release();
        // 3. Metrics, and the mirror's copy.
        let elapsed = ctx.request.started.elapsed();
        let req = session.req_header();
        if let Some(runtime) = &ctx.request.runtime {
            let m = ctx.route_runtime().map_or(&runtime.unrouted_metrics, |rt| &rt.metrics);
            m.observe(&req.method, if status == 0 { 499 } else { status }, elapsed.as_secs_f64());
            if ctx.request.grpc {
                self.shared.metrics.grpc_request(&ctx.filter.route, ctx.outcome.grpc_status.map(|c| c.as_str()));
            }
            let mirror = ctx.routing.route.as_ref().and_then(|r| r.mirror.as_ref());
            let header = ctx.routing.mirror_header.take();
            if let (Some(m), Some(body), Some(header)) = (mirror, ctx.routing.mirror_body.take(), header) {
                crate::mirror::send(runtime, m, &header, body);
            }
        }
        cache::record(session, ctx);
        // 4. The access-log line (a tunnel's with why it closed), then the request's spans.
        websocket::close(ctx, e);
        if self.shared.access_log.enabled() {
            access::write(&self.shared.access_log, session, e, ctx, status, elapsed);
        }
        let error = ctx.outcome.error.or_else(|| e.map(|e| ErrorKind::Upstream(UpstreamErrorKind::of(e))));
        if let Some(span) = ctx.span() {
            span.finish(status, error.and_then(|k| k.span_error(status)));
        }
        // 5. A tunnel is forgotten before Pingora closes its socket.
        ctx.outcome.tunnel = None;
    }
}
