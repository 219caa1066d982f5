//! Validation: file structs in, runtime types out, every error collected with its YAML path.

use super::file::*;
use super::model::*;
use super::Errors;
use crate::chain::FilterChain;
use http::{HeaderName, HeaderValue, Method};
use portico_filters::{registry, BuildContext, Consumer};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn compile(
    file: FileConfig,
    path: &Path,
    base_dir: &Path,
    effective: serde_json::Value,
    errors: &mut Errors<'_>,
) -> Config {
    let server = server_settings(file.server);
    let (admin, admin_access) = super::admin::compile(file.admin, errors);
    let access_log = match file.access_log {
        None => AccessLogTarget::Stdout,
        Some(a) => match a.path.as_str() {
            "stdout" | "-" => AccessLogTarget::Stdout,
            "stderr" => AccessLogTarget::Stderr,
            "off" | "" => AccessLogTarget::Off,
            p => AccessLogTarget::File(resolve(base_dir, p)),
        },
    };

    let consumers = consumers(file.consumers, errors);
    let redis_url = file.rate_limit_store.as_ref().map(|s| s.redis.as_str());
    let cx = BuildContext { consumers: &consumers, base_dir, redis_url, place: "" };

    let mut listener_names = HashSet::new();
    let mut listeners = Vec::new();
    for (i, l) in file.listeners.into_iter().enumerate() {
        let at = format!("listeners[{i}]");
        if !listener_names.insert(l.name.clone()) {
            errors.at(format!("{at}.name"), format!("duplicate listener name \"{}\"", l.name));
        }
        if socket_addr(&l.listen, &format!("{at}.listen"), errors).is_none() {
            continue;
        }
        let tls = l.tls.map(|t| listener_tls(t, base_dir, &format!("{at}.tls"), errors));
        let redirect_https = match l.redirect_https {
            None | Some(RedirectFile::On(false)) => None,
            Some(RedirectFile::On(true)) => Some(443),
            Some(RedirectFile::Port(p)) => Some(p.port),
        };
        if redirect_https.is_some() && tls.is_some() {
            errors.at(format!("{at}.redirect_https"), "a TLS listener cannot redirect to HTTPS");
        }
        let forward_client_cert =
            l.forward_client_cert.as_deref().and_then(|h| match HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.at(format!("{at}.forward_client_cert"), format!("\"{h}\" is not a header name"));
                    None
                }
            });
        listeners.push(Arc::new(ListenerSpec {
            name: l.name.as_str().into(),
            listen: l.listen,
            role: match l.role {
                RoleFile::Edge => Role::Edge,
                RoleFile::Internal => Role::Internal,
            },
            tls,
            http2: l.http2,
            filters: chain(l.filters, &format!("{at}.filters"), &format!("listener {}", l.name), &cx, errors),
            redirect_https,
            forward_client_cert,
            read_buffer_bytes: l.read_buffer_bytes,
            keepalive_timeout: match l.keepalive_timeout_s {
                None => Some(Duration::from_secs(60)),
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
            },
        }));
    }
    if listeners.is_empty() && errors.list.is_empty() {
        errors.at("listeners", "at least one listener is needed");
    }

    let upstream_names: Vec<String> = file.upstreams.keys().cloned().collect();
    let upstreams = file
        .upstreams
        .into_iter()
        .filter_map(|(name, u)| upstream(name, u, base_dir, errors))
        .map(Arc::new)
        .collect::<Vec<_>>();

    let known_upstreams = || {
        if upstream_names.is_empty() {
            "none defined".to_string()
        } else {
            upstream_names.join(", ")
        }
    };
    let check_upstream = |name: &str, at: String, errors: &mut Errors<'_>| {
        if !upstream_names.iter().any(|n| n == name) {
            errors.at(at, format!("no upstream named \"{name}\" (known: {})", known_upstreams()));
        }
    };

    let mut route_names = HashSet::new();
    let mut routes = Vec::new();
    for (i, r) in file.routes.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        if !route_names.insert(r.name.clone()) {
            errors.at(format!("{at}.name"), format!("duplicate route name \"{}\"", r.name));
        }
        if let Some(ls) = &r.listeners {
            for (j, l) in ls.iter().enumerate() {
                if !listener_names.contains(l) {
                    let known: Vec<_> = listener_names.iter().cloned().collect();
                    errors.at(
                        format!("{at}.listeners[{j}]"),
                        format!("no listener named \"{l}\" (known: {})", known.join(", ")),
                    );
                }
            }
        }
        let matcher = matcher(r.matcher, &format!("{at}.match"), errors);
        let actions = [r.upstream.is_some(), r.split.is_some(), r.respond.is_some(), r.aggregate.is_some()];
        let action = match actions.iter().filter(|set| **set).count() {
            0 => {
                errors.at(at.clone(), "a route needs one of `upstream`, `split`, `respond`");
                None
            }
            1 => {
                if let Some(u) = &r.upstream {
                    check_upstream(u, format!("{at}.upstream"), errors);
                    Some(Action::Upstream(u.as_str().into()))
                } else if let Some(split) = &r.split {
                    let mut total = 0;
                    for (j, s) in split.iter().enumerate() {
                        check_upstream(&s.upstream, format!("{at}.split[{j}].upstream"), errors);
                        total += s.weight;
                    }
                    if total == 0 {
                        errors.at(format!("{at}.split"), "weights must add up to more than 0");
                    }
                    Some(Action::Split(split.iter().map(|s| (Arc::from(s.upstream.as_str()), s.weight)).collect()))
                } else if let Some(resp) = r.respond {
                    respond(resp, &format!("{at}.respond"), errors).map(Action::Respond)
                } else {
                    errors.at(format!("{at}.aggregate"), "`aggregate` is not supported by this version of Portico");
                    None
                }
            }
            _ => {
                errors.at(at.clone(), "`upstream`, `split`, `respond` and `aggregate` exclude each other");
                None
            }
        };
        let mirror = r.mirror.map(|m| {
            check_upstream(&m.upstream, format!("{at}.mirror.upstream"), errors);
            if !(0.0..=100.0).contains(&m.percent) {
                errors.at(format!("{at}.mirror.percent"), "a percentage is between 0 and 100");
            }
            MirrorSpec { upstream: m.upstream.as_str().into(), percent: m.percent, max_body_bytes: m.max_body_bytes }
        });
        if r.max_in_flight == Some(0) {
            errors.at(format!("{at}.max_in_flight"), "must be at least 1");
        }
        let canary = r.canary.map(|c| {
            check_upstream(&c.upstream, format!("{at}.canary.upstream"), errors);
            if c.header.is_none() && c.cookie.is_none() {
                errors.at(format!("{at}.canary"), "name a `header` or a `cookie` that selects the canary");
            }
            let header = c.header.as_deref().and_then(|h| match HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.at(format!("{at}.canary.header"), format!("\"{h}\" is not a header name"));
                    None
                }
            });
            CanarySpec { upstream: c.upstream.as_str().into(), header, cookie: c.cookie, value: c.value }
        });
        if r.cache.is_some() {
            errors.at(format!("{at}.cache"), "`cache` is not supported by this version of Portico");
        }
        let rewrite = r.rewrite.map(|rw| rewrite(rw, &format!("{at}.rewrite"), errors));
        let retry = r.retry.map(|rt| retry(rt, &format!("{at}.retry"), errors));
        let filters = chain(r.filters, &format!("{at}.filters"), &format!("route {}", r.name), &cx, errors);
        if let Some(action) = action {
            routes.push(Arc::new(RouteSpec {
                name: r.name.as_str().into(),
                listeners: r.listeners,
                matcher,
                priority: r.priority,
                index: i,
                action,
                rewrite,
                retry,
                timeout: r.timeout_ms.map(Duration::from_millis),
                filters,
                max_in_flight: r.max_in_flight,
                mirror,
                canary,
            }));
        }
    }

    if let Some(store) = &file.rate_limit_store {
        if !store.redis.starts_with("redis://") {
            errors.at("rate_limit_store.redis", "expected a redis://host:port URL");
        }
    }

    Config {
        source_path: path.to_path_buf(),
        server,
        admin,
        admin_access,
        access_log,
        listeners,
        upstreams,
        routes,
        consumers,
        effective,
    }
}

fn server_settings(s: ServerFile) -> ServerSettings {
    ServerSettings {
        threads: s.threads.unwrap_or(2).max(1),
        grace_period_s: s.grace_period_s.unwrap_or(5),
        graceful_shutdown_timeout_s: s.graceful_shutdown_timeout_s.unwrap_or(5),
        pid_file: s.pid_file.unwrap_or_else(|| "/tmp/portico.pid".into()),
        upgrade_sock: s.upgrade_sock.unwrap_or_else(|| "/tmp/portico_upgrade.sock".into()),
        work_stealing: s.work_stealing.unwrap_or(false),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size.unwrap_or(128),
    }
}

/// A relative path is relative to the config file's folder; when nothing is there but the path
/// exists relative to the working directory (`conf/certs/site.crt` run from the project root),
/// that one is taken.
fn resolve(base_dir: &Path, p: &str) -> PathBuf {
    portico_filters::registry::resolve_path(base_dir, p)
}

fn socket_addr(s: &str, at: &str, errors: &mut Errors<'_>) -> Option<SocketAddr> {
    match s.to_socket_addrs().map(|mut it| it.next()) {
        Ok(Some(a)) => Some(a),
        _ => {
            errors.at(at, format!("\"{s}\" is not a host:port address"));
            None
        }
    }
}

fn existing_file(base_dir: &Path, p: &str, at: &str, errors: &mut Errors<'_>) -> PathBuf {
    let path = resolve(base_dir, p);
    if !path.is_file() {
        errors.at(at, format!("file {} does not exist", path.display()));
    }
    path
}

fn listener_tls(t: ListenerTlsFile, base_dir: &Path, at: &str, errors: &mut Errors<'_>) -> ListenerTls {
    if t.certs.is_empty() {
        errors.at(format!("{at}.certs"), "at least one certificate is needed");
    }
    let certs = t
        .certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pair = CertPair {
                cert: existing_file(base_dir, &c.cert, &format!("{at}.certs[{i}].cert"), errors),
                key: existing_file(base_dir, &c.key, &format!("{at}.certs[{i}].key"), errors),
                sni: c.sni.iter().map(|n| n.to_ascii_lowercase()).collect(),
            };
            if pair.cert.is_file() && pair.key.is_file() {
                if let Err(e) = crate::tls::load_pair(&pair.cert, &pair.key) {
                    errors.at(format!("{at}.certs[{i}]"), e);
                }
            }
            pair
        })
        .collect();
    let client_ca = t.client_ca.as_deref().map(|c| existing_file(base_dir, c, &format!("{at}.client_ca"), errors));
    if let Some(ca) = client_ca.as_deref().filter(|p| p.is_file()) {
        if let Err(e) = crate::tls::load_chain(ca) {
            errors.at(format!("{at}.client_ca"), e);
        }
    }
    if t.require_client_cert == Some(true) && client_ca.is_none() {
        errors.at(format!("{at}.require_client_cert"), "needs `client_ca`");
    }
    let require_client_cert = t.require_client_cert.unwrap_or(client_ca.is_some());
    ListenerTls { certs, client_ca, require_client_cert }
}

fn consumers(list: Vec<ConsumerFile>, errors: &mut Errors<'_>) -> Vec<Arc<Consumer>> {
    let mut names = HashSet::new();
    list.into_iter()
        .enumerate()
        .map(|(i, c)| {
            if !names.insert(c.name.clone()) {
                errors.at(format!("consumers[{i}].name"), format!("duplicate consumer name \"{}\"", c.name));
            }
            Arc::new(Consumer {
                name: c.name,
                api_keys: c.api_keys,
                basic: c.basic.map(|b| portico_filters::context::BasicCredentials {
                    username: b.username,
                    password_hash: b.password_hash,
                }),
                groups: c.groups,
            })
        })
        .collect()
}

fn chain(items: Vec<FilterItem>, at: &str, owner: &str, cx: &BuildContext<'_>, errors: &mut Errors<'_>) -> FilterChain {
    let mut filters = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let item_at = format!("{at}[{i}]");
        let place = format!("{owner} filters[{i}]");
        let cx = &BuildContext { place: &place, ..*cx };
        if item.0.len() != 1 {
            errors.at(item_at, "a filter is one `name: {config}` entry");
            continue;
        }
        let Some((name, config)) = item.0.into_iter().next() else {
            continue;
        };
        let Some(name) = name.as_str().map(str::to_string) else {
            errors.at(item_at, "a filter's name must be a string");
            continue;
        };
        match registry::build(&name, config, cx) {
            Ok(f) => filters.push(f),
            Err(e) if e.path.is_empty() => errors.at(format!("{item_at}.{name}"), e.message),
            Err(e) => errors.at(format!("{item_at}.{name}.{}", e.path), e.message),
        }
    }
    FilterChain::new(filters)
}

fn upstream(name: String, u: UpstreamFile, base_dir: &Path, errors: &mut Errors<'_>) -> Option<UpstreamSpec> {
    let at = format!("upstreams.{name}");
    let mut targets = Vec::new();
    for (i, t) in u.targets.iter().enumerate() {
        let (addr, weight) = match t {
            TargetFile::Address(a) => (a.as_str(), 1),
            TargetFile::Weighted(w) => (w.address.as_str(), w.weight),
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
        refresh: Duration::from_secs(d.dns.refresh_s.max(1)),
    });
    if u.targets.is_empty() && dns.is_none() {
        errors.at(at.clone(), "an upstream needs `targets` or `discovery`");
    }
    let balance = match u.balance {
        BalanceFile::RoundRobin => Balance::RoundRobin,
        BalanceFile::Random => Balance::Random,
        BalanceFile::ConsistentHash => Balance::ConsistentHash,
        BalanceFile::LeastLoaded => Balance::LeastLoaded,
    };
    let hash_key = match u.hash_key.as_deref() {
        None => HashKey::ClientIp,
        Some("client_ip") => HashKey::ClientIp,
        Some("path") => HashKey::Path,
        Some(k) => match k.split_once(':') {
            Some(("header", h)) => match HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => HashKey::Header(h),
                Err(_) => {
                    errors.at(format!("{at}.hash_key"), format!("\"{h}\" is not a header name"));
                    HashKey::ClientIp
                }
            },
            Some(("cookie", c)) if !c.is_empty() => HashKey::Cookie(c.to_string()),
            _ => {
                errors.at(
                    format!("{at}.hash_key"),
                    format!("\"{k}\" is not one of header:NAME, cookie:NAME, client_ip, path"),
                );
                HashKey::ClientIp
            }
        },
    };
    let health = u.health_check.map(|h| {
        let kind = match (h.http, h.tcp) {
            (Some(http), None) => HealthKind::Http {
                path: http.path,
                expect_status: http.expect_status,
                host: http.host.unwrap_or_else(|| name.clone()),
            },
            (None, Some(_)) => HealthKind::Tcp,
            _ => {
                errors.at(format!("{at}.health_check"), "set exactly one of `http` or `tcp`");
                HealthKind::Tcp
            }
        };
        HealthSpec {
            kind,
            interval: Duration::from_millis(h.interval_ms.max(10)),
            timeout: Duration::from_millis(h.timeout_ms.max(1)),
            healthy_after: h.healthy_after.max(1),
            unhealthy_after: h.unhealthy_after.max(1),
        }
    });
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
    if u.max_in_flight == Some(0) {
        errors.at(format!("{at}.max_in_flight"), "must be at least 1");
    }
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let timeouts = Timeouts {
        connect: ms(u.timeouts.connect_ms),
        read: ms(u.timeouts.read_ms),
        write: ms(u.timeouts.write_ms),
        idle: ms(u.timeouts.idle_ms),
    };
    let tls = u.tls.map(|t| {
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
            verify: t.verify,
        };
        let readable = [&spec.ca, &spec.cert, &spec.key].iter().all(|p| p.as_ref().is_none_or(|p| p.is_file()));
        if readable {
            if let Err(e) = crate::tls::UpstreamTlsMaterial::load(&spec) {
                errors.at(format!("{at}.tls"), e);
            }
        }
        spec
    });
    Some(UpstreamSpec {
        name: name.as_str().into(),
        targets,
        dns,
        balance,
        hash_key,
        health,
        timeouts,
        tls,
        http2: u.http2,
        outlier,
        breaker,
        max_in_flight: u.max_in_flight,
    })
}

fn matcher(m: MatchFile, at: &str, errors: &mut Errors<'_>) -> MatchSpec {
    let hosts = m
        .host
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => HostPattern::Suffix(suffix.to_string()),
                _ => HostPattern::Exact(h),
            }
        })
        .collect();
    let path = match (m.path, m.path_exact, m.path_regex) {
        (None, None, None) => PathPattern::Any,
        (Some(p), None, None) => {
            if !p.starts_with('/') {
                errors.at(format!("{at}.path"), "a path starts with /");
            }
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                PathPattern::Any
            } else {
                PathPattern::Prefix(p.to_string())
            }
        }
        (None, Some(p), None) => {
            if !p.starts_with('/') {
                errors.at(format!("{at}.path_exact"), "a path starts with /");
            }
            PathPattern::Exact(p)
        }
        (None, None, Some(r)) => match regex::Regex::new(&r) {
            Ok(re) => PathPattern::Regex(re),
            Err(e) => {
                errors.at(format!("{at}.path_regex"), format!("invalid regex: {e}"));
                PathPattern::Any
            }
        },
        _ => {
            errors.at(at.to_string(), "use one of `path`, `path_exact`, `path_regex`");
            PathPattern::Any
        }
    };
    let methods = m.methods.map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(i, s)| match Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    errors.at(format!("{at}.methods[{i}]"), format!("\"{s}\" is not an HTTP method"));
                    None
                }
            })
            .collect()
    });
    let headers = m
        .headers
        .into_iter()
        .filter_map(|(k, v)| match HeaderName::from_bytes(k.as_bytes()) {
            Ok(h) => Some((h, v)),
            Err(_) => {
                errors.at(format!("{at}.headers.{k}"), "invalid header name");
                None
            }
        })
        .collect();
    MatchSpec { hosts, path, methods, headers, query: m.query.into_iter().collect() }
}

fn header_pairs(map: BTreeMap<String, String>, at: &str, errors: &mut Errors<'_>) -> Vec<(HeaderName, HeaderValue)> {
    map.into_iter()
        .filter_map(|(k, v)| match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            (Ok(k), Ok(v)) => Some((k, v)),
            _ => {
                errors.at(format!("{at}.{k}"), "invalid header");
                None
            }
        })
        .collect()
}

fn respond(r: RespondFile, at: &str, errors: &mut Errors<'_>) -> Option<RespondSpec> {
    if !(100..=599).contains(&r.status) {
        errors.at(format!("{at}.status"), "a status is between 100 and 599");
        return None;
    }
    Some(RespondSpec {
        status: r.status,
        body: bytes::Bytes::from(r.body),
        headers: header_pairs(r.headers, &format!("{at}.headers"), errors),
    })
}

fn rewrite(r: RewriteFile, at: &str, errors: &mut Errors<'_>) -> Rewrite {
    for (key, v) in [("strip_prefix", &r.strip_prefix), ("add_prefix", &r.add_prefix)] {
        if v.as_deref().is_some_and(|p| !p.starts_with('/')) {
            errors.at(format!("{at}.{key}"), "a path prefix starts with /");
        }
    }
    let host = r.host.as_deref().and_then(|h| match HeaderValue::from_str(h) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.at(format!("{at}.host"), "invalid host");
            None
        }
    });
    Rewrite {
        strip_prefix: r.strip_prefix.map(|p| p.trim_end_matches('/').to_string()),
        add_prefix: r.add_prefix.map(|p| p.trim_end_matches('/').to_string()),
        host,
    }
}

fn retry(r: RetryFile, at: &str, errors: &mut Errors<'_>) -> RetrySpec {
    let mut spec = RetrySpec {
        attempts: r.attempts,
        budget_percent: r.budget_percent,
        non_idempotent: r.non_idempotent,
        ..Default::default()
    };
    let on = if r.on.is_empty() { vec![RetryOnFile::Kind("connect_error".into())] } else { r.on };
    for (i, cond) in on.into_iter().enumerate() {
        match cond {
            RetryOnFile::Status(s) if (500..=599).contains(&s) || s == 429 => spec.on_status.push(s),
            RetryOnFile::Kind(k) if k == "connect_error" => spec.on_connect_error = true,
            RetryOnFile::Kind(k) if k == "timeout" => spec.on_timeout = true,
            RetryOnFile::Kind(k) if k.parse::<u16>().is_ok_and(|s| (500..=599).contains(&s)) => {
                spec.on_status.push(k.parse().unwrap_or(502))
            }
            other => errors.at(
                format!("{at}.on[{i}]"),
                format!("{other:?} is not one of connect_error, timeout, or a 5xx/429 status"),
            ),
        }
    }
    spec
}
