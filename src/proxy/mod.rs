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
use crate::upstream::build_peer;
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue};
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

/// Adds what every response carries (request id), then runs the route's and the listener's
/// response filters, in reverse chain order.
pub(crate) fn decorate_response(resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    if let Ok(v) = HeaderValue::from_str(&ctx.filter.request_id) {
        resp.insert_header("x-request-id", v)?;
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
                Flow::Responded => return Ok(true),
            }
        }

        // 3. Static responses answer here.
        if let Action::Respond(r) = &route.action {
            respond::write(session, ctx, r.status, &r.headers, r.body.clone()).await?;
            return Ok(true);
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
        // 1. Which pool: a filter's choice, else the route's (weighted when split).
        let listener_chain = ctx.listener.as_ref().map(|l| l.filters.clone()).unwrap_or_default();
        let chosen = listener_chain
            .upstream_select(session, &mut ctx.filter)
            .or_else(|| route.filters.upstream_select(session, &mut ctx.filter));
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

        // 2. Which target: a healthy one, by the pool's algorithm; retries avoid tried ones.
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
        let selected = pool.select(key, &ctx.tried);
        ctx.pool = Some(pool.clone());
        let Some(backend) = selected else {
            ctx.reject =
                Some(Reject::new(503, "no_healthy_upstream", format!("upstream \"{name}\" has no healthy target")));
            return Error::e_explain(ErrorType::HTTPStatus(503), "no healthy target");
        };

        // 3. The peer: target plus the upstream's timeouts and TLS, bounded by the route's timeout.
        let mut peer = build_peer(&pool, &backend);
        if let Some(limit) = route.timeout {
            let o = &mut peer.options;
            for t in [&mut o.connection_timeout, &mut o.read_timeout, &mut o.write_timeout] {
                *t = Some(t.map_or(limit, |t| t.min(limit)));
            }
        }
        if let Some(addr) = backend.as_inet() {
            ctx.tried.push(*addr);
        }
        ctx.upstream_started = Some(Instant::now());
        Ok(peer)
    }

    fn fail_to_connect(&self, session: &mut Session, _peer: &HttpPeer, ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
        if let Some(pool) = &ctx.pool {
            self.shared.metrics.upstream_error(&pool.spec.name, upstream_error_kind(&e));
        }
        let retry = ctx.route.as_ref().and_then(|r| r.retry.as_ref());
        let allowed = retry.is_some_and(|r| {
            let kind_ok = match upstream_error_kind(&e) {
                "timeout" => r.on_timeout || r.on_connect_error,
                _ => r.on_connect_error,
            };
            kind_ok && ctx.retries < r.attempts && (r.non_idempotent || session.req_header().method.is_idempotent())
        });
        if allowed {
            ctx.retries += 1;
            e.set_retry(true);
        } else {
            e.set_retry(false);
        }
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
        if let Some(pool) = &ctx.pool {
            self.shared.metrics.upstream_error(&pool.spec.name, upstream_error_kind(&e));
        }
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
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
        Ok(())
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
        let elapsed = ctx.started.elapsed();
        let req = session.req_header();
        if let Some(runtime) = &ctx.runtime {
            let m = match &ctx.route {
                Some(r) => runtime.route_metrics.get(r.index).unwrap_or(&runtime.unrouted_metrics),
                None => &runtime.unrouted_metrics,
            };
            m.observe(&req.method, if status == 0 { 499 } else { status }, elapsed.as_secs_f64());
        }
        if !self.shared.access_log.enabled() {
            return;
        }
        let client = session.client_addr().map(|a| a.to_string()).unwrap_or_default();
        let target = ctx.target().map(|a| a.to_string());
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host()).unwrap_or("");
        let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let error = ctx.error.or_else(|| e.map(upstream_error_kind));
        let time = telemetry::now_rfc3339();
        self.shared.access_log.write(&AccessLine {
            time: &time,
            request_id: &ctx.filter.request_id,
            trace_id: &ctx.trace.trace_id,
            client: &client,
            listener: &self.listener,
            method: req.method.as_str(),
            host,
            path,
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
