//! How one upstream pool picks and reaches a target, as `/explain` reports it.

use crate::config::{Balance, HashKey, HealthKind, UpstreamSpec};
use serde::Serialize;
use std::time::Duration;

/// How one upstream pool picks and reaches a target.
#[derive(Debug, Serialize)]
pub struct PoolPlan {
    /// Upstream name.
    pub name: String,
    /// `round_robin`, `random`, `consistent_hash` or `least_loaded`.
    pub balance: &'static str,
    /// For consistent hashing: what the key is and its value for this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<HashKeyPlan>,
    /// Static targets.
    pub targets: Vec<TargetPlan>,
    /// DNS discovery, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    /// Active health check, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    /// Outlier ejection, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier: Option<String>,
    /// Circuit breaker, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<String>,
    /// Requests in flight at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Timeouts in milliseconds; absent: Pingora's default.
    pub timeouts: TimeoutsPlan,
    /// `HTTP/1.1` or `HTTP/2`, and TLS when used.
    pub protocol: String,
}

/// A consistent-hash key.
#[derive(Debug, Serialize)]
pub struct HashKeyPlan {
    /// `header:NAME`, `cookie:NAME`, `client_ip` or `path`.
    pub rule: String,
    /// Its value in this request (absent: not in the request, or known only at run time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One target.
#[derive(Debug, Serialize)]
pub struct TargetPlan {
    /// `ip:port`.
    pub address: String,
    /// Relative share.
    pub weight: usize,
    /// Whether it passes its health checks now (the admin API knows; the CLI does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Whether outlier detection keeps it out now (the admin API knows; the CLI does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ejected: Option<bool>,
}

/// Upstream timeouts in milliseconds.
#[derive(Debug, Serialize)]
pub struct TimeoutsPlan {
    /// TCP (and TLS) connect.
    pub connect_ms: Option<u64>,
    /// Each read.
    pub read_ms: Option<u64>,
    /// Each write.
    pub write_ms: Option<u64>,
    /// Idle pooled connection lifetime.
    pub idle_ms: Option<u64>,
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

impl PoolPlan {
    /// The plan for `u`; `req` supplies the hash key's value.
    pub fn of(u: &UpstreamSpec, req: &super::Probe) -> Self {
        let hash_key = (u.balance == Balance::ConsistentHash).then(|| match &u.hash_key {
            HashKey::Header(h) => HashKeyPlan {
                rule: format!("header:{h}"),
                value: req.headers.get(h).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            },
            HashKey::Cookie(c) => HashKeyPlan { rule: format!("cookie:{c}"), value: req.cookie(c) },
            HashKey::ClientIp => HashKeyPlan { rule: "client_ip".into(), value: None },
            HashKey::Path => HashKeyPlan { rule: "path".into(), value: Some(req.uri.path().to_string()) },
        });
        let health_check = u.health.as_ref().map(|h| {
            let what = match &h.kind {
                HealthKind::Http { path, expect_status, host } => {
                    format!("GET {path} (Host {host}) must answer {expect_status}")
                }
                HealthKind::Tcp => "a TCP connect must succeed".to_string(),
                HealthKind::Grpc { service } => format!("grpc.health.v1.Health/Check {service:?} must answer SERVING"),
            };
            let n = |count: usize, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
            format!(
                "{what}, every {} ms, timeout {} ms; down after {}, up after {}",
                h.interval.as_millis(),
                h.timeout.as_millis(),
                n(h.unhealthy_after, "failure", "failures in a row"),
                n(h.healthy_after, "success", "successes in a row")
            )
        });
        PoolPlan {
            name: u.name.to_string(),
            balance: match u.balance {
                Balance::RoundRobin => "round_robin",
                Balance::Random => "random",
                Balance::ConsistentHash => "consistent_hash",
                Balance::LeastLoaded => "least_loaded",
            },
            hash_key,
            targets: u
                .targets
                .iter()
                .map(|t| TargetPlan { address: t.addr.to_string(), weight: t.weight, healthy: None, ejected: None })
                .collect(),
            discovery: u
                .dns
                .as_ref()
                .map(|d| format!("DNS {} port {}, every {} s", d.name, d.port, d.refresh.as_secs())),
            health_check,
            outlier: u.outlier.as_ref().map(|o| {
                format!("after {} failures in a row, out for {} s", o.consecutive_failures, o.eject_ms / 1000)
            }),
            circuit_breaker: u.breaker.as_ref().map(|b| {
                format!(
                    "opens at {}% failures over 10 s (at least {} requests), for {} s",
                    b.failure_ratio * 100.0,
                    b.min_requests,
                    b.open_ms / 1000
                )
            }),
            max_in_flight: u.max_in_flight,
            timeouts: TimeoutsPlan {
                connect_ms: ms(u.timeouts.connect),
                read_ms: ms(u.timeouts.read),
                write_ms: ms(u.timeouts.write),
                idle_ms: ms(u.timeouts.idle),
            },
            protocol: format!(
                "{}{}",
                if u.http2 { "HTTP/2" } else { "HTTP/1.1" },
                match &u.tls {
                    None => String::new(),
                    Some(t) => format!(
                        " over TLS (SNI {}{}{})",
                        if t.sni.is_empty() { "none" } else { &t.sni },
                        if t.verify { "" } else { ", not verified" },
                        if t.cert.is_some() { ", client certificate" } else { "" }
                    ),
                }
            ),
        }
    }
}
