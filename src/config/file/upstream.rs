//! `upstreams.NAME`: targets, discovery, balancing, health checks, outlier ejection, breaker,
//! timeouts and TLS.

use serde::Deserialize;

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
