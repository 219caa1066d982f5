//! The validated runtime config: what the proxy runs on. Built only by [`super::load`], so every
//! value here has been checked (addresses parse, upstreams named by routes exist, filters built)
//! and every default applied (the values are in [`super::defaults`]).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use portico_filters::{Consumer, FilterChain};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod aggregate;
mod cache;
mod listener;
mod websocket;
pub use aggregate::*;
pub use cache::*;
pub use listener::*;
pub use websocket::*;

/// One loaded config file.
#[derive(Debug)]
pub struct Config {
    /// The file it came from (reload reads it again).
    pub source_path: PathBuf,
    /// Process-wide settings; changes apply at the next start.
    pub server: ServerSettings,
    /// Where the admin API listens, if anywhere.
    pub admin: Option<SocketAddr>,
    /// Who may use the admin API (a reload may change it, unlike the address).
    pub admin_access: super::AdminAccess,
    /// Where access-log lines go.
    pub access_log: AccessLogTarget,
    /// The listeners, in file order.
    pub listeners: Vec<Arc<ListenerSpec>>,
    /// The upstream pools, by name order.
    pub upstreams: Vec<Arc<UpstreamSpec>>,
    /// The routes, in file order.
    pub routes: Vec<Arc<RouteSpec>>,
    /// Known consumers.
    pub consumers: Vec<Arc<Consumer>>,
    /// Span export, when the file has a `tracing:` section.
    pub tracing: Option<super::tracing::TracingSettings>,
    /// How Portico's own log is written.
    pub log: super::log::LogSettings,
    /// The shared response cache, when the file has a `cache_store:` section.
    pub cache_store: Option<CacheStoreSpec>,
    /// The effective config as JSON with secrets masked, for `GET /config`.
    pub effective: serde_json::Value,
}

/// Process settings handed to Pingora's `ServerConf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Worker threads per listener service.
    pub threads: usize,
    /// Seconds between SIGTERM and the start of draining.
    pub grace_period_s: u64,
    /// Seconds draining may take before the process exits anyway.
    pub graceful_shutdown_timeout_s: u64,
    /// The pid file.
    pub pid_file: String,
    /// The socket used to hand listeners to a new binary on `--upgrade`.
    pub upgrade_sock: String,
    /// The private directory the defaults of `pid_file` and `upgrade_sock` point into, created
    /// and checked at start; `None` when the file sets both.
    pub runtime_dir: Option<PathBuf>,
    /// Tokio work stealing across a service's threads. Off by default: each thread then runs
    /// its own single-threaded runtime and keeps the connections it accepted, as Envoy's and
    /// nginx's workers do; measured about 12 % less CPU per request (benches/RESULTS.md). On
    /// helps when a few long connections would otherwise load one thread much more than others.
    pub work_stealing: bool,
    /// Idle upstream connections kept for reuse.
    pub upstream_keepalive_pool_size: usize,
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Appended to a file.
    File(PathBuf),
    /// Not written.
    Off,
}

/// Whether clients on a listener are outsiders or trusted services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Outside clients: forwarded headers and request ids they send are replaced.
    Edge,
    /// Trusted peers: their `X-Forwarded-*` and `X-Request-Id` are kept and appended to.
    Internal,
}

/// How a pool picks among healthy targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// In turn, by weight.
    RoundRobin,
    /// At random, by weight.
    Random,
    /// By a request key on a hash ring, so one key sticks to one target.
    ConsistentHash,
    /// The less busy of two random targets (power of two choices over requests in flight).
    LeastLoaded,
}

/// Passive health: eject a target after consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierSpec {
    /// Failures in a row that eject a target.
    pub consecutive_failures: u32,
    /// How long an ejected target gets no traffic, in milliseconds.
    pub eject_ms: u64,
}

/// A circuit breaker for a whole upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpec {
    /// Failure share over the last 10 s that opens the breaker.
    pub failure_ratio: f64,
    /// Requests needed in the window before the ratio counts.
    pub min_requests: u32,
    /// How long the breaker stays open before probing, in milliseconds.
    pub open_ms: u64,
}

/// A shadow copy of requests.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSpec {
    /// The shadow upstream.
    pub upstream: Arc<str>,
    /// Share of requests copied.
    pub percent: f64,
    /// Bodies larger than this are not mirrored.
    pub max_body_bytes: usize,
    /// Copies in flight (across the process) above which this route's copies are dropped.
    pub max_in_flight: usize,
}

/// What consistent hashing keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A request header's value.
    Header(HeaderName),
    /// A cookie's value.
    Cookie(String),
    /// The client's IP address.
    ClientIp,
    /// The request path.
    Path,
}

/// One static target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// `ip:port` or `host:port` (resolved at load).
    pub addr: SocketAddr,
    /// Relative share of traffic.
    pub weight: usize,
}

/// Targets found through DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    /// The name to resolve (A/AAAA records).
    pub name: String,
    /// The port every resolved address gets.
    pub port: u16,
    /// How often to resolve again.
    pub refresh: Duration,
    /// How long one resolution may take before it counts as failed (the targets found last
    /// stay).
    pub timeout: Duration,
}

/// Active health checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// What a check does.
    pub kind: HealthKind,
    /// Time between checks of one target.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// Consecutive successes that mark a down target up.
    pub healthy_after: usize,
    /// Consecutive failures that mark an up target down.
    pub unhealthy_after: usize,
}

/// The kind of active check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthKind {
    /// `GET path` must answer `expect_status`.
    Http {
        /// Request path.
        path: String,
        /// Expected status.
        expect_status: u16,
        /// Host header to send.
        host: String,
    },
    /// A TCP connect must succeed.
    Tcp,
    /// `grpc.health.v1.Health/Check` for `service` must answer `SERVING`.
    Grpc {
        /// The service asked about (`""`: the server as a whole).
        service: String,
    },
}

/// Upstream timeouts; `None` leaves Pingora's default (the compiled config always sets connect,
/// read and write, from `config/defaults.rs` when the file does not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Option<Duration>,
    /// Each read from the upstream.
    pub read: Option<Duration>,
    /// Each write to the upstream.
    pub write: Option<Duration>,
    /// Idle pooled connection lifetime.
    pub idle: Option<Duration>,
}

/// TLS towards an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// SNI and the name the certificate must carry.
    pub sni: String,
    /// CA bundle to verify the upstream against (system roots when absent).
    pub ca: Option<PathBuf>,
    /// Client certificate for mTLS.
    pub cert: Option<PathBuf>,
    /// Client key for mTLS.
    pub key: Option<PathBuf>,
    /// Verify the certificate chain and hostname.
    pub verify: bool,
}

/// A named pool of targets.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    /// Unique name, referenced by routes.
    pub name: Arc<str>,
    /// Static targets.
    pub targets: Vec<TargetSpec>,
    /// DNS discovery instead of (or besides) static targets.
    pub dns: Option<DnsSpec>,
    /// Selection algorithm.
    pub balance: Balance,
    /// Key for consistent hashing.
    pub hash_key: HashKey,
    /// Active checks.
    pub health: Option<HealthSpec>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// TLS to the targets.
    pub tls: Option<UpstreamTls>,
    /// Speak HTTP/2 to the targets.
    pub http2: bool,
    /// HTTP/2 streams per upstream connection at most.
    pub max_streams: usize,
    /// Passive health checking.
    pub outlier: Option<OutlierSpec>,
    /// Circuit breaker.
    pub breaker: Option<BreakerSpec>,
    /// Requests in flight to this upstream at most; more get 503 at once.
    pub max_in_flight: Option<usize>,
}

/// How a request's host is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host (lowercase, no port).
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com` (stored with the dot).
    Suffix(String),
}

/// How a request's path is matched.
#[derive(Debug, Clone)]
pub enum PathPattern {
    /// Any path.
    Any,
    /// The path equals this, or continues it after a `/` (segment-aware prefix).
    Prefix(String),
    /// The path equals this.
    Exact(String),
    /// The regex matches the path.
    Regex(regex::Regex),
}

/// Everything a request must match.
#[derive(Debug, Clone)]
pub struct MatchSpec {
    /// Hosts; empty matches any host.
    pub hosts: Vec<HostPattern>,
    /// Path rule.
    pub path: PathPattern,
    /// Methods; `None` matches any.
    pub methods: Option<Vec<Method>>,
    /// Headers that must be present with these values (`*` means present).
    pub headers: Vec<(HeaderName, String)>,
    /// Query parameters that must be present with these values (`*` means present).
    pub query: Vec<(String, String)>,
}

/// A static response.
#[derive(Debug, Clone)]
pub struct RespondSpec {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
    /// Headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What a route does with a matched request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Proxy to this upstream.
    Upstream(Arc<str>),
    /// Proxy to one of these upstreams, by weight.
    Split(Vec<(Arc<str>, u32)>),
    /// Answer with a static response.
    Respond(RespondSpec),
    /// Call several upstreams concurrently and answer one JSON object (`src/compose/`).
    Aggregate(Arc<AggregateSpec>),
}

/// Path and host rewriting on the way upstream.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Removed from the front of the path when present.
    pub strip_prefix: Option<String>,
    /// Put in front of the (stripped) path.
    pub add_prefix: Option<String>,
    /// The `Host` header sent upstream.
    pub host: Option<HeaderValue>,
}

impl Rewrite {
    /// The path sent upstream for a request `path` (no query): `strip_prefix` removed when the
    /// path starts with it at a segment boundary, then `add_prefix` put in front.
    pub fn path(&self, path: &str) -> String {
        let stripped = match &self.strip_prefix {
            Some(p) if path.starts_with(p.as_str()) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/') => {
                &path[p.len()..]
            }
            _ => path,
        };
        let mut new_path = String::with_capacity(stripped.len() + 32);
        if let Some(add) = &self.add_prefix {
            new_path.push_str(add);
        }
        new_path.push_str(stripped);
        if !new_path.starts_with('/') {
            new_path.insert(0, '/');
        }
        new_path
    }
}

/// What failures a retry is allowed for.
#[derive(Debug, Clone, Default)]
pub struct RetrySpec {
    /// Extra attempts after the first.
    pub attempts: u32,
    /// Retry when the connection could not be made.
    pub on_connect_error: bool,
    /// Retry when the upstream timed out.
    pub on_timeout: bool,
    /// Retry on these response statuses.
    pub on_status: Vec<u16>,
    /// Retry a gRPC call whose Trailers-Only answer carries one of these `grpc-status` codes.
    pub on_grpc: Vec<portico_filters::grpc_web::Code>,
    /// Share of recent requests that may be retries.
    pub budget_percent: f64,
    /// Also retry methods that are not idempotent.
    pub non_idempotent: bool,
}

/// One route.
#[derive(Debug)]
pub struct RouteSpec {
    /// Unique name: metrics label and log field.
    pub name: Arc<str>,
    /// Listeners this route is on; `None` for all.
    pub listeners: Option<Vec<String>>,
    /// Match rules.
    pub matcher: MatchSpec,
    /// Higher wins.
    pub priority: i32,
    /// Position in the file, the last tie-breaker.
    pub index: usize,
    /// What to do.
    pub action: Action,
    /// Rewrite on the way upstream.
    pub rewrite: Option<Rewrite>,
    /// Retry policy.
    pub retry: Option<RetrySpec>,
    /// Bound on the whole upstream exchange.
    pub timeout: Option<Duration>,
    /// Route filters, after the listener's.
    pub filters: FilterChain,
    /// Requests in flight on this route at most; more get 503 at once.
    pub max_in_flight: Option<usize>,
    /// A shadow copy of requests.
    pub mirror: Option<MirrorSpec>,
    /// Header- or cookie-selected canary.
    pub canary: Option<CanarySpec>,
    /// Upgraded connections as first-class tunnels (`websocket:`), when set.
    pub websocket: Option<WebSocketSpec>,
    /// The shared response cache's policy for this route (`src/cache/`).
    pub cache: Option<Arc<CachePolicy>>,
}

impl RouteSpec {
    /// A route with just a match and an action (no filters, rewrite, retries or limits): for
    /// code that builds routes without a file, such as tests and benchmarks.
    pub fn new(name: &str, index: usize, matcher: MatchSpec, action: Action) -> Self {
        RouteSpec {
            name: name.into(),
            listeners: None,
            matcher,
            priority: 0,
            index,
            action,
            rewrite: None,
            retry: None,
            timeout: None,
            filters: FilterChain::default(),
            max_in_flight: None,
            mirror: None,
            canary: None,
            websocket: None,
            cache: None,
        }
    }
}

/// Sends requests that carry a marker to another upstream, ahead of the route's own choice.
#[derive(Debug, Clone)]
pub struct CanarySpec {
    /// The canary upstream.
    pub upstream: Arc<str>,
    /// Header that selects the canary.
    pub header: Option<HeaderName>,
    /// Cookie that selects the canary.
    pub cookie: Option<String>,
    /// The value the header or cookie must have; `None` for any.
    pub value: Option<String>,
}
