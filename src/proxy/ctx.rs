//! The per-request context Pingora threads through every phase, grouped by who writes it (as
//! Sozu's `HttpContext` is): each group is filled by one phase and only read by the later ones.

use super::errors::{Answer, ErrorKind, UpstreamErrorKind};
use super::guards::{Attempt, InFlight};
use crate::config::{ListenerSpec, RouteSpec};
use crate::state::{RouteRuntime, Runtime};
use crate::telemetry::otlp::{Incoming, RequestSpan};
use crate::telemetry::{self, Metrics};
use crate::upstream::limit::Slot;
use crate::upstream::Pool;
use http::{HeaderName, HeaderValue};
use pingora::proxy::Session;
use portico_filters::FilterChain;
use portico_filters::{Reject, RequestCtx};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request id's field, looked up once per request.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything Portico tracks for one request.
pub struct Ctx {
    /// Who is asking, on which config: written by `early_request_filter`.
    pub request: Request,
    /// What filters see and annotate (consumer, identity, their state).
    pub filter: RequestCtx,
    /// The route and what it holds: written by `request_filter`.
    pub routing: Routing,
    /// The pool and the attempts at its targets: written by `upstream_peer` and the retry hooks.
    pub upstream: Upstream,
    /// How the request ended: written by the response and failure phases.
    pub outcome: Outcome,
}

/// Written once, when the request arrives.
pub struct Request {
    /// The config this request runs on, taken when it arrived.
    pub runtime: Option<Arc<Runtime>>,
    /// The listener it came in on.
    pub listener: Option<Arc<ListenerSpec>>,
    /// When the request arrived.
    pub started: Instant,
    /// The request id as a header value, made once for the upstream request and the response.
    pub id_header: Option<http::HeaderValue>,
    /// The request's trace context and, when sampled, its spans: started here, added to by
    /// the later phases (route, refusals, attempts), finished in `logging`.
    pub span: Option<RequestSpan>,
    /// The verified client certificate's identity, on mTLS listeners.
    pub client_cert: Option<crate::tls::ClientIdentity>,
    /// This request's place in the in-flight gauge.
    pub in_flight: Option<InFlight>,
    /// Whether it is a gRPC call (`content-type: application/grpc*`): Portico's own answers
    /// are then gRPC statuses (`grpc.rs`).
    pub grpc: bool,
}

/// Written when the route is found.
#[derive(Default)]
pub struct Routing {
    /// The matched route.
    pub route: Option<Arc<RouteSpec>>,
    /// This request's place under the route's `max_in_flight`.
    pub slot: Option<Slot>,
    /// Request body kept for a mirror copy (`None` once too large).
    pub mirror_body: Option<Vec<u8>>,
    /// The request header as it last went upstream, for the mirror's copy.
    pub mirror_header: Option<Box<pingora::http::RequestHeader>>,
    /// The route's cache policy, once the cache phase has seen a route that caches.
    pub cache: Option<Arc<crate::config::CachePolicy>>,
}

/// Written per upstream attempt.
#[derive(Default)]
pub struct Upstream {
    /// The pool chosen last.
    pub pool: Option<Arc<Pool>>,
    /// This request's place under the first chosen pool's `max_in_flight` (kept across retries).
    pub pool_slot: Option<Slot>,
    /// Targets tried so far (retries go elsewhere).
    pub tried: Vec<SocketAddr>,
    /// Retries made so far.
    pub retries: u32,
    /// The whole upstream exchange must end by then (route `timeout_ms`).
    pub deadline: Option<Instant>,
    /// The attempt under way, until its outcome is recorded.
    pub attempt: Option<Attempt>,
    /// When the current attempt started.
    pub started: Option<Instant>,
    /// Set when a response status asked for a retry.
    pub retry_status: Option<u16>,
    /// How the previous attempt failed: the next attempt's retry reason on its span.
    pub last_failure: Option<&'static str>,
    /// This attempt's turn to get an HTTP/2 stream to its target, until it has one or could
    /// not connect (`multiplex.rs`).
    pub h2_turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Written as the request ends.
#[derive(Default)]
pub struct Outcome {
    /// Time until the upstream's response header arrived.
    pub upstream_time: Option<Duration>,
    /// A refusal from a phase that can only fail with an error (request body, upstream
    /// selection), for `fail_to_proxy` to send.
    pub reject: Option<Reject>,
    /// What went wrong, for the access log.
    pub error: Option<ErrorKind>,
    /// The upgraded connection, from the upstream's 101 until the request's `logging`.
    pub tunnel: Option<super::websocket::Tunnel>,
    /// An aggregate route's parts (name, upstream, target, outcome, duration), for the access log.
    pub parts: Option<serde_json::Value>,
    /// What the cache did (`x-cache-status`), on a route that caches.
    pub cache_status: Option<crate::cache::CacheStatus>,
    /// A gRPC call's `grpc-status`, from the response header, its trailers or Portico's answer.
    pub grpc_status: Option<portico_filters::grpc_web::Code>,
}

/// The filter chains a request runs through: the listener's, then the route's. Holds the specs
/// (not the chains) so a phase can walk it while filters write to [`Ctx::filter`].
pub struct Chains {
    listener: Option<Arc<ListenerSpec>>,
    route: Option<Arc<RouteSpec>>,
}

impl Chains {
    /// Request order: the listener's chain, then the route's.
    pub fn iter(&self) -> impl Iterator<Item = &FilterChain> {
        self.listener.iter().map(|l| &l.filters).chain(self.route.iter().map(|r| &r.filters))
    }

    /// Response order: the route's chain, then the listener's (each runs its filters in reverse).
    pub fn rev(&self) -> impl Iterator<Item = &FilterChain> {
        self.route.iter().map(|r| &r.filters).chain(self.listener.iter().map(|l| &l.filters))
    }
}

impl Ctx {
    /// A fresh context.
    pub fn new(listener: Arc<str>) -> Self {
        Ctx {
            request: Request {
                runtime: None,
                listener: None,
                started: Instant::now(),
                id_header: None,
                span: None,
                client_cert: None,
                in_flight: None,
                grpc: false,
            },
            filter: RequestCtx { listener, ..Default::default() },
            routing: Routing::default(),
            upstream: Upstream::default(),
            outcome: Outcome::default(),
        }
    }

    /// Who is asking: the request id (kept from a `trusted` peer, made here otherwise), the
    /// trace context (continued with a new span id, or started), the client's address, and the
    /// identity of a verified client certificate.
    pub fn identify(&mut self, session: &Session, trusted: bool) {
        // Request id: kept from a trusted peer, made here otherwise.
        let req = session.req_header();
        self.filter.request_id = match req.headers.get(X_REQUEST_ID) {
            Some(v) if trusted && telemetry::valid_request_id(v.as_bytes()) => {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
            _ => telemetry::new_request_id(),
        };
        self.request.id_header = HeaderValue::from_str(&self.filter.request_id).ok();
        self.filter.client_ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        // Trace context: continued with a new span id, or started; recorded when sampled.
        let tracer = self.request.runtime.as_ref().and_then(|r| r.tracer.as_ref());
        let tls = self.request.listener.as_ref().is_some_and(|l| l.tls.is_some());
        let incoming = Incoming {
            listener: &self.filter.listener,
            client: self.filter.client_ip,
            tls,
            request_id: &self.filter.request_id,
        };
        self.request.span = Some(RequestSpan::start(tracer, req, &incoming));
        // Identity from a verified client certificate (recorded at the end of the handshake).
        let identity = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<crate::tls::ClientIdentity>());
        if let Some(id) = identity {
            self.filter.identity = id.primary().map(str::to_string);
            self.request.client_cert = Some(id.clone());
        }
    }

    /// The request span, from the first phase on.
    pub fn span(&mut self) -> Option<&mut RequestSpan> {
        self.request.span.as_mut()
    }

    /// The listener's filter chain, then the route's (once one is matched): every chain walk
    /// goes through this.
    pub fn chains(&self) -> Chains {
        Chains { listener: self.request.listener.clone(), route: self.routing.route.clone() }
    }

    /// The matched route's runtime state (metrics, retry budget, in-flight limit).
    pub fn route_runtime(&self) -> Option<&RouteRuntime> {
        let route = self.routing.route.as_ref()?;
        self.request.runtime.as_ref()?.routes.get(route.index)
    }

    /// The upstream target chosen last.
    pub fn target(&self) -> Option<SocketAddr> {
        self.upstream.tried.last().copied()
    }

    /// Gives back every counter and slot the request holds. They would go back anyway when
    /// Pingora drops the context, but that is after the downstream is flushed and finished; the
    /// `logging` phase calls this so a client holding its response finds the slot free.
    pub fn release(&mut self) {
        self.request.in_flight = None;
        self.routing.slot = None;
        self.upstream.pool_slot = None;
        self.upstream.attempt = None;
    }
}

impl Outcome {
    /// Keeps `answer` for `fail_to_proxy` to send, and gives the error that ends the phase.
    pub fn refuse(&mut self, answer: Answer<'_>) -> Box<pingora::Error> {
        self.reject = Some(answer.into());
        answer.error()
    }
}

impl Upstream {
    /// Records how the attempt under way went (passive health, breaker, error count), once.
    pub fn finish_attempt(&mut self, metrics: &Metrics, success: bool, kind: UpstreamErrorKind) {
        if let Some(attempt) = self.attempt.take() {
            attempt.finish(metrics, success, kind);
        }
    }
}
