//! The per-request context Pingora threads through every phase.

use crate::config::{ListenerSpec, RouteSpec};
use crate::state::Runtime;
use crate::telemetry::TraceContext;
use crate::upstream::Pool;
use portico_filters::{Reject, RequestCtx};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything Portico tracks for one request.
pub struct Ctx {
    /// The config this request runs on, taken when it arrived.
    pub runtime: Option<Arc<Runtime>>,
    /// The listener it came in on.
    pub listener: Option<Arc<ListenerSpec>>,
    /// What filters see.
    pub filter: RequestCtx,
    /// The matched route.
    pub route: Option<Arc<RouteSpec>>,
    /// The request id as a header value, made once for the upstream request and the response.
    pub request_id_header: Option<http::HeaderValue>,
    /// Trace context for the upstream request.
    pub trace: TraceContext,
    /// When the request arrived.
    pub started: Instant,
    /// Whether this request was counted in flight.
    pub in_flight: bool,
    /// The chosen pool.
    pub pool: Option<Arc<Pool>>,
    /// Targets tried so far (retries go elsewhere).
    pub tried: Vec<SocketAddr>,
    /// Retries made so far.
    pub retries: u32,
    /// When the current upstream attempt started.
    pub upstream_started: Option<Instant>,
    /// Time until the upstream's response header arrived.
    pub upstream_time: Option<Duration>,
    /// A refusal from a phase that can only fail with an error (request body).
    pub reject: Option<Reject>,
    /// The error code of a response Portico made itself, for the access log.
    pub error: Option<&'static str>,
    /// The verified client certificate's identity, on mTLS listeners.
    pub client_cert: Option<crate::tls::ClientIdentity>,
    /// The upstream attempt under way, until its outcome is recorded.
    pub attempt: Option<Attempt>,
    /// The whole upstream exchange must end by then (route `timeout_ms`).
    pub deadline: Option<Instant>,
    /// Set when a response status asked for a retry.
    pub retry_status: Option<u16>,
    /// This request counts against its route's `max_in_flight`.
    pub counted_route: bool,
    /// This request counts against this pool's `max_in_flight`.
    pub counted_pool: Option<Arc<Pool>>,
    /// Request body kept for a mirror copy (`None` once too large).
    pub mirror_body: Option<Vec<u8>>,
}

/// One try at an upstream target.
pub struct Attempt {
    /// The target.
    pub addr: SocketAddr,
    /// Its counters.
    pub state: Arc<crate::upstream::targets::TargetState>,
    /// What the pool's breaker said.
    pub admission: crate::upstream::breaker::Admission,
}

impl Ctx {
    /// A fresh context.
    pub fn new(listener: Arc<str>) -> Self {
        Ctx {
            runtime: None,
            listener: None,
            filter: RequestCtx { listener, ..Default::default() },
            route: None,
            request_id_header: None,
            trace: TraceContext::default(),
            started: Instant::now(),
            in_flight: false,
            pool: None,
            tried: Vec::new(),
            retries: 0,
            upstream_started: None,
            upstream_time: None,
            reject: None,
            error: None,
            client_cert: None,
            attempt: None,
            deadline: None,
            retry_status: None,
            counted_route: false,
            counted_pool: None,
            mirror_body: None,
        }
    }

    /// The upstream target chosen last.
    pub fn target(&self) -> Option<SocketAddr> {
        self.tried.last().copied()
    }
}
