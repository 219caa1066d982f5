//! `upstreams`: named pools of targets, how they are balanced, checked and reached.

use super::{existing_file, header_name, socket_addr};
use crate::config::defaults;
use crate::config::file::{BalanceFile, HealthCheckFile, TargetFile, UpstreamFile, UpstreamTlsFile};
use crate::config::model::{
    Balance, BreakerSpec, DnsSpec, HashKey, HealthKind, HealthSpec, OutlierSpec, TargetSpec, Timeouts, UpstreamSpec,
    UpstreamTls,
};
use crate::config::Errors;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Every upstream, in name order.
pub(super) fn upstreams(
    map: BTreeMap<String, UpstreamFile>,
    base_dir: &Path,
    errors: &mut Errors<'_>,
) -> Vec<Arc<UpstreamSpec>> {
    map.into_iter().map(|(name, u)| Arc::new(upstream(name, u, base_dir, errors))).collect()
}

fn upstream(name: String, u: UpstreamFile, base_dir: &Path, errors: &mut Errors<'_>) -> UpstreamSpec {
    let at = format!("upstreams.{name}");
    let mut targets = Vec::new();
    for (i, t) in u.targets.iter().enumerate() {
        let (addr, weight) = match t {
            TargetFile::Address(a) => (a.as_str(), defaults::TARGET_WEIGHT),
            TargetFile::Weighted(w) => (w.address.as_str(), w.weight.unwrap_or(defaults::TARGET_WEIGHT)),
        };
        if weight == 0 {
            errors.at(format!("{at}.targets[{i}].weight"), "weight must be at least 1");
        }
        if let Some(addr) = socket_addr(addr, &format!("{at}.targets[{i}]"), errors) {
            targets.push(TargetSpec { addr, weight: weight.max(1) });
        }
    }
    let dns = u.discovery.map(|d| DnsSpec {
        name: d.dns.name,
        port: d.dns.port,
        refresh: Duration::from_secs(d.dns.refresh_s.unwrap_or(defaults::DNS_REFRESH_S).max(1)),
        timeout: Duration::from_millis(d.dns.timeout_ms.unwrap_or(defaults::DNS_TIMEOUT_MS).max(1)),
    });
    if u.targets.is_empty() && dns.is_none() {
        errors.at(at.clone(), "an upstream needs `targets` or `discovery`");
    }
    let balance = match u.balance {
        None => defaults::BALANCE,
        Some(BalanceFile::RoundRobin) => Balance::RoundRobin,
        Some(BalanceFile::Random) => Balance::Random,
        Some(BalanceFile::ConsistentHash) => Balance::ConsistentHash,
        Some(BalanceFile::LeastLoaded) => Balance::LeastLoaded,
    };
    let hash_key = hash_key(u.hash_key.as_deref(), &at, errors);
    let health = u.health_check.map(|h| health(h, &name, &at, errors));
    let outlier = u.outlier.map(|o| {
        if o.consecutive_failures == 0 {
            errors.at(format!("{at}.outlier.consecutive_failures"), "must be at least 1");
        }
        OutlierSpec { consecutive_failures: o.consecutive_failures.max(1), eject_ms: o.eject_s.max(1) * 1000 }
    });
    let breaker = u.circuit_breaker.map(|b| {
        if !(b.failure_ratio > 0.0 && b.failure_ratio <= 1.0) {
            errors.at(format!("{at}.circuit_breaker.failure_ratio"), "a ratio is above 0 and at most 1");
        }
        BreakerSpec {
            failure_ratio: b.failure_ratio,
            min_requests: b.min_requests.max(1),
            open_ms: b.open_s.max(1) * 1000,
        }
    });
    if u.max_streams == Some(0) {
        errors.at(format!("{at}.max_streams"), "must be at least 1");
    }
    if u.max_in_flight == Some(0) {
        errors.at(format!("{at}.max_in_flight"), "must be at least 1");
    }
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let or = |v: Option<u64>, default: u64| Some(Duration::from_millis(v.unwrap_or(default)));
    let timeouts = Timeouts {
        connect: or(u.timeouts.connect_ms, defaults::UPSTREAM_CONNECT_MS),
        read: or(u.timeouts.read_ms, defaults::UPSTREAM_READ_MS),
        write: or(u.timeouts.write_ms, defaults::UPSTREAM_WRITE_MS),
        idle: ms(u.timeouts.idle_ms),
    };
    let tls = u.tls.map(|t| tls(t, base_dir, &at, errors));
    UpstreamSpec {
        name: name.as_str().into(),
        targets,
        dns,
        balance,
        hash_key,
        health,
        timeouts,
        tls,
        http2: u.http2.unwrap_or(defaults::UPSTREAM_HTTP2),
        max_streams: u.max_streams.unwrap_or(defaults::UPSTREAM_MAX_STREAMS),
        outlier,
        breaker,
        max_in_flight: u.max_in_flight,
    }
}

/// `header:NAME`, `cookie:NAME`, `client_ip` or `path`.
fn hash_key(key: Option<&str>, at: &str, errors: &mut Errors<'_>) -> HashKey {
    match key {
        None => defaults::HASH_KEY,
        Some("client_ip") => HashKey::ClientIp,
        Some("path") => HashKey::Path,
        Some(k) => match k.split_once(':') {
            Some(("header", h)) => {
                header_name(h, format!("{at}.hash_key"), errors).map_or(HashKey::ClientIp, HashKey::Header)
            }
            Some(("cookie", c)) if !c.is_empty() => HashKey::Cookie(c.to_string()),
            _ => {
                errors.at(
                    format!("{at}.hash_key"),
                    format!("\"{k}\" is not one of header:NAME, cookie:NAME, client_ip, path"),
                );
                HashKey::ClientIp
            }
        },
    }
}

/// Active checks: exactly one of `http`, `tcp` or `grpc`.
fn health(h: HealthCheckFile, upstream: &str, at: &str, errors: &mut Errors<'_>) -> HealthSpec {
    let kind = match (h.http, h.tcp, h.grpc) {
        (Some(http), None, None) => HealthKind::Http {
            path: http.path.unwrap_or_else(|| defaults::HEALTH_HTTP_PATH.into()),
            expect_status: http.expect_status.unwrap_or(defaults::HEALTH_EXPECT_STATUS),
            host: http.host.unwrap_or_else(|| upstream.to_string()),
        },
        (None, Some(_), None) => HealthKind::Tcp,
        (None, None, Some(grpc)) => HealthKind::Grpc { service: grpc.service.unwrap_or_default() },
        _ => {
            errors.at(format!("{at}.health_check"), "set exactly one of `http`, `tcp` or `grpc`");
            HealthKind::Tcp
        }
    };
    HealthSpec {
        kind,
        interval: Duration::from_millis(h.interval_ms.unwrap_or(defaults::HEALTH_INTERVAL_MS).max(10)),
        timeout: Duration::from_millis(h.timeout_ms.unwrap_or(defaults::HEALTH_TIMEOUT_MS).max(1)),
        healthy_after: h.healthy_after.unwrap_or(defaults::HEALTHY_AFTER).max(1),
        unhealthy_after: h.unhealthy_after.unwrap_or(defaults::UNHEALTHY_AFTER).max(1),
    }
}

/// TLS to the targets: the files must exist and load together.
fn tls(t: UpstreamTlsFile, base_dir: &Path, at: &str, errors: &mut Errors<'_>) -> UpstreamTls {
    let file = |p: &Option<String>, key: &str, errors: &mut Errors<'_>| {
        p.as_deref().map(|p| existing_file(base_dir, p, &format!("{at}.tls.{key}"), errors))
    };
    let cert = file(&t.cert, "cert", errors);
    let key = file(&t.key, "key", errors);
    if cert.is_some() != key.is_some() {
        errors.at(format!("{at}.tls"), "`cert` and `key` go together");
    }
    let spec = UpstreamTls {
        sni: t.sni.clone().unwrap_or_default(),
        ca: file(&t.ca, "ca", errors),
        cert,
        key,
        verify: t.verify.unwrap_or(defaults::UPSTREAM_TLS_VERIFY),
    };
    let readable = [&spec.ca, &spec.cert, &spec.key].iter().all(|p| p.as_ref().is_none_or(|p| p.is_file()));
    if readable {
        if let Err(e) = crate::tls::UpstreamTlsMaterial::load(&spec) {
            errors.at(format!("{at}.tls"), e);
        }
    }
    spec
}
