//! `impl ProxyHttp`: a thin dispatch from Pingora's phases into routing, filter chains and
//! upstream pools. Each phase reads top to bottom as the steps it takes.

mod ctx;
mod forward;
mod respond;

pub use ctx::Ctx;

use crate::config::{Action, HashKey, Role};
use crate::routing::{RequestView, RouteMatch};
use crate::state::Shared;
use crate::telemetry::{self, AccessLine, TraceContext};
use crate::upstream::breaker::Admission;
use crate::upstream::build_peer;
use crate::upstream::targets::Outcome;
use crate::upstream::window::now_ms;
use async_trait::async_trait;
use bytes::Bytes;
use ctx::Attempt;
use http::{header, HeaderValue};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorType, RetryType};
use portico_filters::{Flow, Reject};
use std::sync::atomic::Ordering;
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

/// Adds what every response carries (request id), then runs the route's and the listener's
/// response filters, in reverse chain order.
pub(crate) fn decorate_response(resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    if let Some(v) = &ctx.request_id_header {
        resp.insert_header("x-request-id", v.clone())?;
    }
    if let Some(route) = &ctx.route {
        let chain = route.filters.clone();
        chain.response(resp, &mut ctx.filter)?;
    }
    if let Some(listener) = &ctx.listener {
        let chain = listener.filters.clone();
        chain.response(resp, &mut ctx.filter)?;
    }
    Ok(())
}

/// Picks `(status, code, message)` for an error that ended a request.
fn classify(e: &Error) -> (u16, &'static str, &'static str) {
    use ErrorType::*;
    match e.etype() {
        HTTPStatus(413) => (413, "payload_too_large", "request body too large"),
        HTTPStatus(code) if *code >= 500 => (*code, "upstream_error", "the upstream failed"),
        HTTPStatus(code) => (*code, "bad_request", "the request was refused"),
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
            (504, "upstream_timeout", "the upstream did not answer in time")
        }
        ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | ConnectProxyFailure | InvalidCert
        | HandshakeError => (502, "bad_gateway", "could not connect to the upstream"),
        _ => match e.esource() {
            ErrorSource::Upstream => (502, "bad_gateway", "the upstream connection failed"),
            ErrorSource::Downstream => match e.etype() {
                ReadError | WriteError | ConnectionClosed => (0, "client_closed", ""),
                _ => (400, "bad_request", "the request could not be read"),
            },
            _ => (500, "internal_error", "internal error"),
        },
    }
}

fn upstream_error_kind(e: &Error) -> &'static str {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => "timeout",
        ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure => "connect",
        _ => "other",
    }
}

// === impl Portico: attempts and retries ===

impl Portico {
    /// Records how the attempt under way went (passive health, breaker, load), once.
    fn finish_attempt(&self, ctx: &mut Ctx, success: bool, kind: &str) {
        let Some(attempt) = ctx.attempt.take() else { return };
        attempt.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        let Some(pool) = &ctx.pool else { return };
        let now = now_ms();
        if !success {
            self.shared.metrics.upstream_error(&pool.spec.name, kind);
        }
        if pool.targets.record(&attempt.addr, success, now) == Outcome::Ejected {
            log::warn!("upstream {}: target {} ejected after consecutive failures", pool.spec.name, attempt.addr);
            self.shared.metrics.outlier_ejection(&pool.spec.name, attempt.addr);
        }
        if let Some(b) = &pool.breaker {
            b.record(attempt.admission, success, now);
        }
    }

    /// Whether the route's retry policy, the method and the retry budget allow one more try;
    /// takes the retry from the budget when they do.
    fn may_retry(&self, session: &Session, ctx: &mut Ctx, on: impl Fn(&crate::config::RetrySpec) -> bool) -> bool {
        let Some(route) = ctx.route.clone() else { return false };
        let Some(policy) = route.retry.as_ref() else { return false };
        if !on(policy) || ctx.retries >= policy.attempts {
            return false;
        }
        if !(policy.non_idempotent || session.req_header().method.is_idempotent()) {
            return false;
        }
        if ctx.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        let budget = ctx.runtime.as_ref().and_then(|r| r.routes.get(route.index)).and_then(|r| r.budget.as_ref());
        if !budget.is_none_or(|b| b.try_retry(now_ms())) {
            self.shared.metrics.retry(&route.name, false);
            return false;
        }
        self.shared.metrics.retry(&route.name, true);
        ctx.retries += 1;
        true
    }
}

#[async_trait]
impl ProxyHttp for Portico {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.listener.clone())
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        // Pin the config this request runs on.
        let runtime = self.shared.runtime.load_full();
        let listener = runtime.listeners.get(&self.listener).cloned();
        let trusted = listener.as_ref().is_some_and(|l| l.role == Role::Internal);
        // The listener's `keepalive_timeout_s` (Pingora set the session from the request's own
        // keep-alive wishes just before; those that ask to close still close).
        if let Some(l) = &listener {
            match l.keepalive_timeout {
                None => session.set_keepalive(None),
                Some(t) if session.get_keepalive().is_some() => session.set_keepalive(Some(t.as_secs().max(1))),
                Some(_) => {}
            }
        }
        ctx.runtime = Some(runtime);
        ctx.listener = listener;
        self.shared.metrics.in_flight().inc();
        ctx.in_flight = true;

        // Request id: kept from a trusted peer, made here otherwise.
        let req = session.req_header();
        ctx.filter.request_id = match req.headers.get("x-request-id") {
            Some(v) if trusted && telemetry::valid_request_id(v.as_bytes()) => {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
            _ => telemetry::new_request_id(),
        };
        // Trace context: continued with a new span id, or started.
        ctx.request_id_header = HeaderValue::from_str(&ctx.filter.request_id).ok();
        ctx.trace = TraceContext::continue_or_start(req.headers.get("traceparent").map(|v| v.as_bytes()));
        ctx.filter.client_ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        // Identity from a verified client certificate (recorded at the end of the handshake).
        let identity = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<crate::tls::ClientIdentity>());
        if let Some(id) = identity {
            ctx.filter.identity = id.primary().map(str::to_string);
            ctx.client_cert = Some(id.clone());
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let Some(runtime) = ctx.runtime.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no runtime config");
        };
        // 0. A plain listener that only redirects to HTTPS.
        if let Some(port) = ctx.listener.as_ref().and_then(|l| l.redirect_https) {
            let req = session.req_header();
            let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host());
            let host = strip_port(host.unwrap_or("localhost"));
            let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let location =
                if port == 443 { format!("https://{host}{path}") } else { format!("https://{host}:{port}{path}") };
            let reject =
                Reject::new(308, "https_required", format!("use {location}")).with_header(header::LOCATION, &location);
            respond::reject(session, ctx, &reject).await?;
            return Ok(true);
        }

        // 1. Route.
        let req = session.req_header();
        let host_header = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let host = host_header.or_else(|| req.uri.host()).unwrap_or("");
        let host = strip_port(host);
        let view = RequestView {
            method: &req.method,
            host,
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
        };
        let found = match runtime.router.listener(&self.listener).map(|r| r.find(&view)) {
            Some(RouteMatch::Found(route)) => Ok(route.clone()),
            Some(RouteMatch::MethodNotAllowed(allow)) => {
                Err(Reject::new(405, "method_not_allowed", format!("method not allowed here; allowed: {allow}"))
                    .with_header(header::ALLOW, &allow))
            }
            _ => Err(Reject::new(404, "not_found", "no route matches this request")),
        };
        let route = match found {
            Ok(route) => route,
            Err(reject) => {
                respond::reject(session, ctx, &reject).await?;
                return Ok(true);
            }
        };
        ctx.filter.route = route.name.clone();
        ctx.route = Some(route.clone());

        // 2. The listener's filters, then the route's.
        let listener_chain = ctx.listener.as_ref().map(|l| l.filters.clone()).unwrap_or_default();
        for chain in [&listener_chain, &route.filters] {
            match chain.request(session, &mut ctx.filter).await? {
                Flow::Continue => {}
                Flow::Reject(reject) => {
                    respond::reject(session, ctx, &reject).await?;
                    return Ok(true);
                }
                Flow::Respond(r) => {
                    respond::write(session, ctx, r.status, &r.headers, r.body).await?;
                    return Ok(true);
                }
            }
        }

        // 3. Static responses answer here.
        if let Action::Respond(r) = &route.action {
            respond::write(session, ctx, r.status, &r.headers, r.body.clone()).await?;
            return Ok(true);
        }

        // 4. The route's concurrency limit: excess requests get 503 at once.
        if let (Some(max), Some(rt)) = (route.max_in_flight, runtime.routes.get(route.index)) {
            if rt.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
                rt.in_flight.fetch_sub(1, Ordering::AcqRel);
                let reject = Reject::new(503, "concurrency_limited", "too many requests in flight on this route")
                    .with_header(header::RETRY_AFTER, "1");
                respond::reject(session, ctx, &reject).await?;
                return Ok(true);
            }
            ctx.counted_route = true;
        }
        if route.mirror.is_some() {
            ctx.mirror_body = Some(Vec::new());
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let (Some(buf), Some(chunk), Some(m)) =
            (ctx.mirror_body.as_mut(), body.as_ref(), ctx.route.as_ref().and_then(|r| r.mirror.as_ref()))
        {
            if buf.len() + chunk.len() <= m.max_body_bytes {
                buf.extend_from_slice(chunk);
            } else {
                ctx.mirror_body = None;
            }
        }
        let chains = [ctx.listener.as_ref().map(|l| l.filters.clone()), ctx.route.as_ref().map(|r| r.filters.clone())];
        for chain in chains.into_iter().flatten() {
            if let Flow::Reject(r) = chain.request_body(body.as_ref(), end_of_stream, &mut ctx.filter) {
                let status = r.status;
                ctx.reject = Some(r);
                return Error::e_explain(ErrorType::HTTPStatus(status), "refused by a request body filter");
            }
        }
        Ok(())
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let (Some(runtime), Some(route)) = (ctx.runtime.clone(), ctx.route.clone()) else {
            return Error::e_explain(ErrorType::InternalError, "no route at upstream selection");
        };
        let now = now_ms();
        let first_attempt = ctx.tried.is_empty();
        if first_attempt {
            if let Some(budget) = runtime.routes.get(route.index).and_then(|r| r.budget.as_ref()) {
                budget.request(now);
            }
            ctx.deadline = route.timeout.map(|t| ctx.started + t);
        }
        // The route's timeout bounds every attempt together.
        let remaining = ctx.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining.is_some_and(|r| r.is_zero()) {
            ctx.reject = Some(Reject::new(504, "upstream_timeout", "the route's timeout ran out"));
            return Error::e_explain(ErrorType::HTTPStatus(504), "route timeout");
        }

        // 1. Which pool: a filter's choice, else the route's (weighted when split).
        let listener_chain = ctx.listener.as_ref().map(|l| l.filters.clone()).unwrap_or_default();
        let chosen = listener_chain
            .upstream_select(session, &mut ctx.filter)
            .or_else(|| route.filters.upstream_select(session, &mut ctx.filter));
        let chosen = chosen.or_else(|| {
            route.canary.as_ref().filter(|c| canary_selected(c, session.req_header())).map(|c| c.upstream.clone())
        });
        let name: Arc<str> = match (&chosen, &route.action) {
            (Some(name), _) => name.clone(),
            (None, Action::Upstream(name)) => name.clone(),
            (None, Action::Split(parts)) => pick_weighted(parts),
            (None, Action::Respond(_)) => {
                return Error::e_explain(ErrorType::InternalError, "respond route reached upstream selection")
            }
        };
        let Some(pool) = runtime.pools.get(&name).cloned() else {
            ctx.reject = Some(Reject::new(502, "bad_gateway", format!("no upstream named \"{name}\"")));
            return Error::e_explain(ErrorType::HTTPStatus(502), "unknown upstream");
        };
        ctx.pool = Some(pool.clone());

        // 2. The pool's own limits: concurrency, then the circuit breaker.
        if ctx.counted_pool.is_none() {
            if let Some(max) = pool.spec.max_in_flight {
                if pool.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
                    pool.in_flight.fetch_sub(1, Ordering::AcqRel);
                    ctx.reject = Some(
                        Reject::new(503, "upstream_overloaded", format!("too many requests in flight to \"{name}\""))
                            .with_header(header::RETRY_AFTER, "1"),
                    );
                    return Error::e_explain(ErrorType::HTTPStatus(503), "upstream concurrency limit");
                }
                ctx.counted_pool = Some(pool.clone());
            }
        }
        let admission = pool.breaker.as_ref().map_or(Admission::Allowed, |b| b.admit(now));
        if admission == Admission::Rejected {
            ctx.reject = Some(
                Reject::new(503, "circuit_open", format!("upstream \"{name}\" is failing; try again shortly"))
                    .with_header(header::RETRY_AFTER, "1"),
            );
            return Error::e_explain(ErrorType::HTTPStatus(503), "circuit open");
        }

        // 3. Which target: a healthy one, by the pool's algorithm; retries avoid tried ones.
        let req = session.req_header();
        let mut ip_buf = [0u8; 16];
        let key: &[u8] = match &pool.spec.hash_key {
            _ if pool.spec.balance != crate::config::Balance::ConsistentHash => b"",
            HashKey::Header(h) => req.headers.get(h).map(|v| v.as_bytes()).unwrap_or(b""),
            HashKey::Cookie(name) => cookie(req, name).unwrap_or(b""),
            HashKey::Path => req.uri.path().as_bytes(),
            HashKey::ClientIp => match ctx.filter.client_ip {
                Some(std::net::IpAddr::V4(v4)) => {
                    ip_buf[..4].copy_from_slice(&v4.octets());
                    &ip_buf[..4]
                }
                Some(std::net::IpAddr::V6(v6)) => {
                    ip_buf = v6.octets();
                    &ip_buf
                }
                None => b"",
            },
        };
        let Some(backend) = pool.select(key, &ctx.tried, now) else {
            if let Some(b) = &pool.breaker {
                b.record(admission, true, now);
            }
            ctx.reject =
                Some(Reject::new(503, "no_healthy_upstream", format!("upstream \"{name}\" has no healthy target")));
            return Error::e_explain(ErrorType::HTTPStatus(503), "no healthy target");
        };

        // 4. The peer: target plus the upstream's timeouts and TLS, bounded by what is left of
        //    the route's timeout.
        let mut peer = build_peer(&pool, &backend);
        if let Some(limit) = remaining {
            let o = &mut peer.options;
            for t in [&mut o.connection_timeout, &mut o.read_timeout, &mut o.write_timeout] {
                *t = Some(t.map_or(limit, |t| t.min(limit)));
            }
        }
        if let Some(addr) = backend.as_inet() {
            ctx.tried.push(*addr);
            let state = pool.targets.get(addr);
            state.in_flight.fetch_add(1, Ordering::AcqRel);
            ctx.attempt = Some(Attempt { addr: *addr, state, admission });
        }
        ctx.upstream_started = Some(Instant::now());
        Ok(peer)
    }

    fn fail_to_connect(&self, session: &mut Session, _peer: &HttpPeer, ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
        let kind = upstream_error_kind(&e);
        self.finish_attempt(ctx, false, kind);
        let retry = self.may_retry(session, ctx, |r| match kind {
            "timeout" => r.on_timeout || r.on_connect_error,
            _ => r.on_connect_error,
        });
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let kind = upstream_error_kind(&e);
        let status_retry = ctx.retry_status.take().is_some();
        self.finish_attempt(ctx, false, if status_retry { "status" } else { kind });
        let mut e = e.more_context(format!("Peer: {peer}"));
        if status_retry {
            // The budget was already taken when the status was seen.
            e.set_retry(!session.as_ref().retry_buffer_truncated());
        } else if kind == "timeout" && self.may_retry(session, ctx, |r| r.on_timeout) {
            e.set_retry(!session.as_ref().retry_buffer_truncated());
        } else if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            // Pingora's default: a request that failed on a reused connection may go again.
            // Pingora marks read errors so, but not a write that hit a connection the upstream
            // had just closed (a restarted or killed target): the request never reached it, so
            // it is as safe to send again as a read error is.
            if client_reused && matches!(e.etype(), ErrorType::WriteError | ErrorType::ConnectionClosed) {
                e.retry = RetryType::ReusedOnly;
            }
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forward::prepare_upstream_request(session, upstream_request, ctx)?;
        let listener_chain = ctx.listener.as_ref().map(|l| l.filters.clone()).unwrap_or_default();
        listener_chain.upstream_request(upstream_request, &mut ctx.filter)?;
        if let Some(route) = ctx.route.clone() {
            route.filters.upstream_request(upstream_request, &mut ctx.filter)?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.upstream_time = ctx.upstream_started.map(|s| s.elapsed());
        let status = _upstream_response.status.as_u16();
        let retry_on_status =
            ctx.route.as_ref().and_then(|r| r.retry.as_ref()).is_some_and(|r| r.on_status.contains(&status));
        if retry_on_status && self.may_retry(_session, ctx, |_| true) {
            ctx.retry_status = Some(status);
            return Error::e_explain(ErrorType::HTTPStatus(status), "retrying on upstream status");
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        // Each read is already bounded by what was left of the route's timeout when the attempt
        // began; a body that keeps trickling in is cut off here once the whole timeout is spent.
        if !end_of_stream && ctx.deadline.is_some_and(|d| Instant::now() >= d) {
            ctx.error = Some("route_timeout");
            return Error::e_explain(
                ErrorType::new("RouteTimeout"),
                "the route's timeout_ms ran out while the response body was streaming",
            );
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forward::strip_hop_by_hop_response(upstream_response);
        decorate_response(upstream_response, ctx)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let reject = match ctx.reject.take() {
            Some(r) => r,
            None => {
                let (status, code, message) = classify(e);
                if status == 0 {
                    ctx.error = Some(code);
                    return FailToProxy { error_code: 0, can_reuse_downstream: false };
                }
                Reject::new(status, code, message)
            }
        };
        let status = reject.status;
        if session.response_written().is_none() {
            if let Err(write_err) = respond::reject(session, ctx, &reject).await {
                log::debug!("could not send error response: {write_err}");
            }
        } else {
            ctx.error = Some(reject.error);
        }
        FailToProxy { error_code: status, can_reuse_downstream: false }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &Ctx, _error: &Error) -> bool {
        // Refusals by filters are expected outcomes, not proxy errors.
        ctx.error.is_some_and(|c| c != "upstream_error" && c != "internal_error")
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        if ctx.in_flight {
            self.shared.metrics.in_flight().dec();
        }
        let status = session.response_written().map(|r| r.status.as_u16()).unwrap_or(0);
        let upstream_ok = e.is_none() && status > 0 && status < 500;
        self.finish_attempt(ctx, upstream_ok, if e.is_some() { "other" } else { "status" });
        if let Some(pool) = ctx.counted_pool.take() {
            pool.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        let elapsed = ctx.started.elapsed();
        let req = session.req_header();
        if let Some(runtime) = &ctx.runtime {
            let rt = ctx.route.as_ref().and_then(|r| runtime.routes.get(r.index));
            if ctx.counted_route {
                if let Some(rt) = rt {
                    rt.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let m = rt.map_or(&runtime.unrouted_metrics, |rt| &rt.metrics);
            m.observe(&req.method, if status == 0 { 499 } else { status }, elapsed.as_secs_f64());
            if let (Some(route), Some(body)) = (&ctx.route, ctx.mirror_body.take()) {
                if let Some(m) = &route.mirror {
                    crate::mirror::send(runtime, m, req, body);
                }
            }
        }
        if !self.shared.access_log.enabled() {
            return;
        }
        let client = match session.client_addr().and_then(|a| a.as_inet()) {
            Some(inet) => telemetry::socket_addr_text(inet),
            None => session.client_addr().map(|a| a.to_string()).unwrap_or_default(),
        };
        let target = ctx.target().map(|a| telemetry::socket_addr_text(&a));
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host()).unwrap_or("");
        let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let secrets = [ctx.listener.as_ref().map(|l| &l.filters), ctx.route.as_ref().map(|r| &r.filters)];
        let path = redact_query(path, secrets.iter().flatten().flat_map(|c| c.secret_query_params()));
        let error = ctx.error.or_else(|| e.map(upstream_error_kind));
        let time = telemetry::now_rfc3339();
        self.shared.access_log.write(&AccessLine {
            time: &time,
            request_id: &ctx.filter.request_id,
            trace_id: ctx.trace.trace_id(),
            client: &client,
            listener: &self.listener,
            method: req.method.as_str(),
            host,
            path: &path,
            route: &ctx.filter.route,
            consumer: ctx.filter.caller(),
            upstream: ctx.pool.as_ref().map(|p| &*p.spec.name),
            upstream_target: target.as_deref(),
            status,
            bytes: session.as_downstream().body_bytes_sent(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            upstream_duration_ms: ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            error,
        });
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// The path with the values of secret query parameters replaced by `[redacted]`.
fn redact_query<'a, 's>(path: &'a str, secrets: impl Iterator<Item = &'s String>) -> std::borrow::Cow<'a, str> {
    let Some((base, query)) = path.split_once('?') else { return path.into() };
    let secrets: Vec<&String> = secrets.collect();
    let is_secret = |pair: &str| secrets.iter().any(|s| pair.split('=').next() == Some(s.as_str()));
    if secrets.is_empty() || !query.split('&').any(is_secret) {
        return path.into();
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret(pair) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", redacted.join("&")).into()
}

/// Whether the request carries the canary's header or cookie (with its value, when one is set).
fn canary_selected(c: &crate::config::CanarySpec, req: &RequestHeader) -> bool {
    let wanted = |v: &[u8]| c.value.as_ref().is_none_or(|want| want.as_bytes() == v);
    let by_header = c.header.as_ref().is_some_and(|h| req.headers.get_all(h).iter().any(|v| wanted(v.as_bytes())));
    by_header || c.cookie.as_ref().is_some_and(|name| cookie(req, name).is_some_and(wanted))
}

fn pick_weighted(parts: &[(Arc<str>, u32)]) -> Arc<str> {
    let total: u32 = parts.iter().map(|(_, w)| *w).sum();
    let mut roll = fastrand::u32(0..total.max(1));
    for (name, w) in parts {
        if roll < *w {
            return name.clone();
        }
        roll -= w;
    }
    parts.last().map(|(n, _)| n.clone()).unwrap_or_else(|| Arc::from(""))
}

fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers.get_all(header::COOKIE).iter().find_map(|v| {
        v.as_bytes().split(|b| *b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted() {
        let secrets = ["access_token".to_string()];
        assert_eq!(redact_query("/a?x=1&access_token=abc", secrets.iter()), "/a?x=1&access_token=[redacted]");
        assert_eq!(redact_query("/a?x=1", secrets.iter()), "/a?x=1");
        assert_eq!(redact_query("/a?access_token_x=1", secrets.iter()), "/a?access_token_x=1");
    }

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }

    #[test]
    fn weighted_pick_respects_weights() {
        let parts: Vec<(Arc<str>, u32)> = vec![("a".into(), 0), ("b".into(), 5)];
        for _ in 0..100 {
            assert_eq!(&*pick_weighted(&parts), "b");
        }
    }
}
