//! One part's call: through the route-independent machinery every proxied request uses (the
//! pool's `max_in_flight`, its breaker, a healthy and not ejected target, the peer with the
//! upstream's timeouts and TLS), over Pingora's own HTTP connector, and recorded the same way
//! (passive health, breaker, `portico_upstream_errors_total`).

use crate::proxy::errors::UpstreamErrorKind;
use crate::proxy::guards::Attempt;
use crate::proxy::select;
use crate::telemetry::Metrics;
use crate::upstream::breaker::Admission;
use crate::upstream::window::now_ms;
use crate::upstream::{build_peer, Pool};
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Informational (1xx) heads skipped before the real response, at most.
const MAX_INFORMATIONAL: usize = 4;

/// What a part answered, when it answered 2xx.
#[derive(Debug)]
pub struct Answered {
    /// The status.
    pub status: u16,
    /// Whether the body is to be embedded as JSON (its type says JSON, or says nothing, and it
    /// parses); otherwise it is embedded as a string.
    pub json: bool,
    /// The whole body.
    pub body: Bytes,
}

/// Why a part is `null` in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Its `timeout_ms`, or what was left of the route's, ran out (or an upstream timeout).
    Timeout,
    /// No connection could be made.
    Connect,
    /// It answered outside 2xx.
    Status(u16),
    /// Its body was over the per-part bound.
    TooLarge,
    /// The pool's breaker is open.
    CircuitOpen,
    /// The pool has no healthy target.
    NoHealthyUpstream,
    /// The pool's `max_in_flight` is reached.
    Overloaded,
    /// The exchange failed otherwise (connection reset, bad response).
    Error,
}

impl Failure {
    /// The `outcome` label of `portico_aggregate_parts_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect_error",
            Failure::Status(_) => "status",
            Failure::TooLarge => "too_large",
            Failure::CircuitOpen => "circuit_open",
            Failure::NoHealthyUpstream => "no_healthy_upstream",
            Failure::Overloaded => "upstream_overloaded",
            Failure::Error => "error",
        }
    }
}

/// What `x-portico-failed-parts` says: the label, or the status itself.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "{s}"),
            other => f.write_str(other.label()),
        }
    }
}

/// How one part went.
#[derive(Debug)]
pub struct Outcome {
    /// The answer, or why there is none.
    pub result: Result<Answered, Failure>,
    /// The target it went to, when one was picked.
    pub target: Option<SocketAddr>,
    /// When the call started.
    pub started: Instant,
    /// From the start of the call to its end.
    pub elapsed: Duration,
}

impl Outcome {
    /// The status the part answered with, 2xx or not.
    pub fn status(&self) -> Option<u16> {
        match &self.result {
            Ok(a) => Some(a.status),
            Err(Failure::Status(s)) => Some(*s),
            Err(_) => None,
        }
    }
}

/// What a part sends.
pub struct Call<'a> {
    /// The pool.
    pub pool: &'a Arc<Pool>,
    /// The request header, ready to go.
    pub header: RequestHeader,
    /// The body, when the part has one.
    pub body: Option<Bytes>,
    /// The whole call must end within this.
    pub budget: Duration,
    /// The client's address, for pools balanced by `client_ip`.
    pub client_ip: Option<IpAddr>,
    /// The body bound.
    pub max_bytes: usize,
    /// `server.upstream_keepalive_pool_size`.
    pub keepalive_pool_size: usize,
}

/// Calls one part: slot, breaker, target, peer, exchange, then the attempt recorded.
pub async fn call(c: Call<'_>, metrics: &Metrics) -> Outcome {
    let started = Instant::now();
    let done = |result, target| Outcome { result, target, started, elapsed: started.elapsed() };
    let pool = c.pool;
    let now = now_ms();
    // 1. The pool's concurrency limit, then its breaker.
    let _slot = match pool.limit.as_ref().map(|l| l.try_take()) {
        Some(None) => return done(Err(Failure::Overloaded), None),
        Some(slot) => slot,
        None => None,
    };
    let admission = pool.breaker.as_ref().map_or(Admission::Allowed, |b| b.admit(now));
    if admission == Admission::Rejected {
        return done(Err(Failure::CircuitOpen), None);
    }
    // 2. A healthy target that outlier detection has not ejected.
    let mut ip_buf = [0u8; 16];
    let key = select::hash_key(pool, &c.header, c.client_ip, &mut ip_buf);
    let Some(backend) = pool.select_admitted(key, &[], now, admission) else {
        return done(Err(Failure::NoHealthyUpstream), None);
    };
    // 3. The peer: the upstream's timeouts and TLS, bounded by the part's budget.
    let mut peer = build_peer(pool, &backend);
    select::bound_timeouts(&mut peer, Some(c.budget));
    let target = backend.as_inet().copied();
    let attempt = target.map(|addr| Attempt::start(pool.clone(), addr, admission));
    // 4. The exchange, bounded as a whole.
    let result = match tokio::time::timeout(
        c.budget,
        exchange(crate::upstream::side_connector(c.keepalive_pool_size), &peer, c.header, c.body, c.max_bytes),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout),
    };
    // 5. Recorded as a proxied attempt is: a 5xx or a failed exchange counts against the target.
    let (success, kind) = match &result {
        Ok(_) | Err(Failure::TooLarge) => (true, UpstreamErrorKind::Status),
        Err(Failure::Status(s)) => (*s < 500, UpstreamErrorKind::Status),
        Err(Failure::Timeout) => (false, UpstreamErrorKind::Timeout),
        Err(Failure::Connect) => (false, UpstreamErrorKind::Connect),
        Err(_) => (false, UpstreamErrorKind::Other),
    };
    if let Some(a) = attempt {
        a.finish(metrics, success, kind);
    }
    done(result, target)
}

fn failure(e: &pingora::Error) -> Failure {
    match UpstreamErrorKind::of(e) {
        UpstreamErrorKind::Timeout => Failure::Timeout,
        UpstreamErrorKind::Connect => Failure::Connect,
        _ => Failure::Error,
    }
}

/// Sends the request and reads the whole response, up to `max_bytes` of body; the connection
/// goes back to the pool when the response was read to its end.
async fn exchange(
    connector: &Connector,
    peer: &HttpPeer,
    header: RequestHeader,
    body: Option<Bytes>,
    max_bytes: usize,
) -> Result<Answered, Failure> {
    let fail = |e: Box<pingora::Error>| failure(&e);
    let (mut session, _reused) = connector.get_http_session(peer).await.map_err(fail)?;
    session.write_request_header(Box::new(header)).await.map_err(fail)?;
    if let Some(body) = body {
        session.write_request_body(body, true).await.map_err(fail)?;
    }
    session.finish_request_body().await.map_err(fail)?;
    let mut status = 0;
    let mut json = true;
    for _ in 0..=MAX_INFORMATIONAL {
        session.read_response_header().await.map_err(fail)?;
        let Some(resp) = session.response_header() else { return Err(Failure::Error) };
        status = resp.status.as_u16();
        if status >= 200 {
            let ct = resp.headers.get(http::header::CONTENT_TYPE).map(|v| v.as_bytes().to_ascii_lowercase());
            json = ct.is_none_or(|ct| ct.windows(4).any(|w| w == b"json"));
            break;
        }
    }
    if status < 200 {
        return Err(Failure::Error);
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_response_body().await.map_err(fail)? {
        if buf.len() + chunk.len() > max_bytes {
            session.shutdown().await;
            return Err(Failure::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    if session.response_done() {
        connector.release_http_session(session, peer, peer.options.idle_timeout).await;
    }
    if !(200..300).contains(&status) {
        return Err(Failure::Status(status));
    }
    let body = buf.freeze();
    let json = json && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    Ok(Answered { status, json, body })
}
