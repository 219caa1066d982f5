//! The file format: serde structs that mirror the YAML one to one.
//!
//! Everything here is `deny_unknown_fields`, so a misspelt key is an error that names it. These
//! types never leave `config/`: [`super::compile`] turns them into runtime types. They hold what
//! the file says and nothing more: a key with a default is an `Option` here, and the default
//! is applied from [`super::defaults`].

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub admin: Option<AdminFile>,
    #[serde(default)]
    pub access_log: Option<AccessLogFile>,
    #[serde(default)]
    pub listeners: Vec<ListenerFile>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub consumers: Vec<ConsumerFile>,
    #[serde(default)]
    pub rate_limit_store: Option<RateLimitStoreFile>,
    #[serde(default)]
    pub tracing: Option<super::tracing::TracingFile>,
    #[serde(default)]
    pub log: Option<super::log::LogFile>,
    #[serde(default)]
    pub cache_store: Option<super::compile::cache::CacheStoreFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub threads: Option<usize>,
    #[serde(alias = "grace_period_seconds")]
    pub grace_period_s: Option<u64>,
    #[serde(alias = "graceful_shutdown_timeout_seconds")]
    pub graceful_shutdown_timeout_s: Option<u64>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    pub work_stealing: Option<bool>,
    pub upstream_keepalive_pool_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: String,
    // Checked with `listen` in super::admin.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub metrics_public: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    #[serde(default)]
    pub path: Option<String>,
    /// Parsed so that a format other than `json` is refused; with one format there is
    /// nothing to read yet.
    #[allow(dead_code)]
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// The one access-log format so far; the key exists so that others can be added.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: String,
    pub listen: String,
    #[serde(default)]
    pub role: Option<RoleFile>,
    #[serde(default)]
    pub tls: Option<ListenerTlsFile>,
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub filters: Vec<FilterItem>,
    #[serde(default)]
    pub redirect_https: Option<RedirectFile>,
    #[serde(default)]
    pub read_buffer_bytes: Option<usize>,
    #[serde(default)]
    pub keepalive_timeout_s: Option<u64>,
    #[serde(default)]
    pub forward_client_cert: Option<String>,
    #[serde(default)]
    pub limits: Option<ListenerLimitsFile>,
    pub path_normalization: Option<PathNormalizationFile>,
}

/// `listeners[].limits`: every key optional, defaults in `defaults.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerLimitsFile {
    pub header_timeout_s: Option<u64>,
    pub body_timeout_s: Option<u64>,
    pub write_timeout_s: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub ipv6_prefix: Option<u8>,
}

/// `path_normalization: strict` (canonical paths, the default) or `off` (paths as sent).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PathNormalizationFile {
    Strict,
    Off,
}

/// `redirect_https: true` (to port 443) or `redirect_https: {port: 8443}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RedirectFile {
    On(bool),
    Port(RedirectPortFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectPortFile {
    pub port: u16,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoleFile {
    Edge,
    Internal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsFile {
    pub certs: Vec<CertFile>,
    #[serde(default)]
    pub client_ca: Option<String>,
    #[serde(default)]
    pub require_client_cert: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub sni: Vec<String>,
}

/// `{filter_name: config}`: one key, its value the filter's own config.
#[derive(Debug, Deserialize, Clone)]
#[serde(transparent)]
pub struct FilterItem(pub serde_yaml::Mapping);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    #[serde(default)]
    pub targets: Vec<TargetFile>,
    #[serde(default)]
    pub discovery: Option<DiscoveryFile>,
    #[serde(default)]
    pub balance: Option<BalanceFile>,
    #[serde(default)]
    pub hash_key: Option<String>,
    #[serde(default)]
    pub health_check: Option<HealthCheckFile>,
    #[serde(default)]
    pub outlier: Option<OutlierFile>,
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerFile>,
    #[serde(default)]
    pub timeouts: TimeoutsFile,
    #[serde(default)]
    pub tls: Option<UpstreamTlsFile>,
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub max_streams: Option<usize>,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TargetFile {
    Address(String),
    Weighted(WeightedTargetFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTargetFile {
    pub address: String,
    #[serde(default)]
    pub weight: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryFile {
    pub dns: DnsDiscoveryFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsDiscoveryFile {
    pub name: String,
    pub port: u16,
    #[serde(default)]
    pub refresh_s: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BalanceFile {
    RoundRobin,
    Random,
    ConsistentHash,
    LeastLoaded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    #[serde(default)]
    pub http: Option<HttpCheckFile>,
    #[serde(default)]
    pub tcp: Option<TcpCheckFile>,
    #[serde(default)]
    pub grpc: Option<GrpcCheckFile>,
    #[serde(default)]
    pub interval_ms: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub healthy_after: Option<usize>,
    #[serde(default)]
    pub unhealthy_after: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckFile {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheckFile {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcCheckFile {
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierFile {
    pub consecutive_failures: u32,
    pub eject_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerFile {
    pub failure_ratio: f64,
    pub min_requests: u32,
    pub open_s: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsFile {
    pub connect_ms: Option<u64>,
    pub read_ms: Option<u64>,
    pub write_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsFile {
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub matcher: MatchFile,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub split: Option<Vec<SplitFile>>,
    #[serde(default)]
    pub mirror: Option<MirrorFile>,
    #[serde(default)]
    pub rewrite: Option<RewriteFile>,
    #[serde(default)]
    pub retry: Option<RetryFile>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub cache: Option<super::compile::cache::CacheFile>,
    #[serde(default)]
    pub respond: Option<RespondFile>,
    /// Parts called concurrently and composed into one JSON answer (`config/compile/aggregate.rs`).
    #[serde(default)]
    pub aggregate: Option<Vec<AggregatePartFile>>,
    #[serde(default)]
    pub aggregate_merge: Option<bool>,
    #[serde(default)]
    pub filters: Vec<FilterItem>,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    #[serde(default)]
    pub canary: Option<CanaryFile>,
    #[serde(default)]
    pub websocket: Option<WebSocketFile>,
}

/// One part of an aggregate route: `{name, upstream, path, method, body, required, timeout_ms}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatePartFile {
    pub name: String,
    pub upstream: String,
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Requests carrying a header or cookie (with a value, or any) go to the canary upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryFile {
    pub upstream: String,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    #[serde(default)]
    pub host: Option<OneOrMany>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub path_exact: Option<String>,
    #[serde(default)]
    pub path_regex: Option<String>,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

/// `host: a.example` or `host: [a.example, "*.example"]`: the filters crate's own type, so the
/// file format has one spelling of "one value or a list".
pub use portico_filters::registry::OneOrMany;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    pub upstream: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    pub upstream: String,
    #[serde(default)]
    pub percent: Option<f64>,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteFile {
    #[serde(default)]
    pub strip_prefix: Option<String>,
    #[serde(default)]
    pub add_prefix: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub on: Vec<RetryOnFile>,
    #[serde(default)]
    pub budget_percent: Option<f64>,
    #[serde(default)]
    pub non_idempotent: Option<bool>,
}

/// `connect_error`, `timeout`, or a status code.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RetryOnFile {
    Status(u16),
    Kind(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondFile {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerFile {
    pub name: String,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub basic: Option<BasicFile>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicFile {
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStoreFile {
    pub redis: String,
}

/// `routes[].websocket`: upgraded connections on the route are tunnels with an idle timeout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketFile {
    #[serde(default)]
    pub idle_timeout_s: Option<u64>,
}
