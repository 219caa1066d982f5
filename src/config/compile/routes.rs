//! `routes`: what a matched request does (upstream, split, static response), and the route's
//! mirror, canary, rewrite, retry policy, limits and filters.

use super::matcher::matcher;
use super::{chain, header_name};
use crate::config::defaults;
use crate::config::file::{CanaryFile, MirrorFile, RespondFile, RetryFile, RetryOnFile, RewriteFile, RouteFile};
use crate::config::model::{Action, CanarySpec, MatchSpec, MirrorSpec, RespondSpec, RetrySpec, Rewrite, RouteSpec};
use crate::config::Errors;
use http::{HeaderName, HeaderValue};
use portico_filters::grpc_web::Code;
use portico_filters::BuildContext;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The names routes may refer to.
pub(super) struct Known<'a> {
    /// Every listener name in the file.
    pub listeners: &'a HashSet<String>,
    /// Every upstream name in the file.
    pub upstreams: &'a [String],
    /// Whether the file has a `cache_store`, which `cache:` on a route needs.
    pub cache_store: bool,
}

impl Known<'_> {
    /// An error at `at` unless an upstream is called `name`; whether there is one.
    pub(super) fn check_upstream(&self, name: &str, at: String, errors: &mut Errors<'_>) -> bool {
        let found = self.upstreams.iter().any(|n| n == name);
        if !found {
            let known = if self.upstreams.is_empty() { "none defined".to_string() } else { self.upstreams.join(", ") };
            errors.at(at, format!("no upstream named \"{name}\" (known: {known})"));
        }
        found
    }
}

/// Every route that has a valid action, in file order.
pub(super) fn routes(
    list: Vec<RouteFile>,
    known: &Known<'_>,
    cx: &BuildContext<'_>,
    errors: &mut Errors<'_>,
) -> Vec<Arc<RouteSpec>> {
    let mut names = HashSet::new();
    let mut routes = Vec::new();
    for (i, r) in list.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        if !names.insert(r.name.clone()) {
            errors.at(format!("{at}.name"), format!("duplicate route name \"{}\"", r.name));
        }
        if let Some(route) = route(r, i, &at, known, cx, errors) {
            routes.push(Arc::new(route));
        }
    }
    routes
}

fn route(
    mut r: RouteFile,
    index: usize,
    at: &str,
    known: &Known<'_>,
    cx: &BuildContext<'_>,
    errors: &mut Errors<'_>,
) -> Option<RouteSpec> {
    if let Some(ls) = &r.listeners {
        for (j, l) in ls.iter().enumerate() {
            if !known.listeners.contains(l) {
                let names: Vec<_> = known.listeners.iter().cloned().collect();
                errors.at(
                    format!("{at}.listeners[{j}]"),
                    format!("no listener named \"{l}\" (known: {})", names.join(", ")),
                );
            }
        }
    }
    let matcher = matcher(std::mem::take(&mut r.matcher), &format!("{at}.match"), errors);
    super::aggregate::stray_merge(&r, at, errors);
    let action = action(&mut r, &matcher, at, known, errors);
    let mirror = r.mirror.map(|m| mirror(m, at, known, errors));
    if r.max_in_flight == Some(0) {
        errors.at(format!("{at}.max_in_flight"), "must be at least 1");
    }
    let canary = r.canary.map(|c| canary(c, at, known, errors));
    let websocket = r.websocket.map(|w| super::websocket::websocket(w, &format!("{at}.websocket"), errors));
    let cache = r.cache.map(|c| super::cache::policy(c, &r.name, &format!("{at}.cache"), known.cache_store, errors));
    if cache.is_some() && matches!(action, Some(Action::Respond(_) | Action::Aggregate(_))) {
        errors.at(
            format!("{at}.cache"),
            "`cache` is for routes that proxy (`upstream` or `split`), not `respond` or `aggregate`",
        );
    }
    let rewrite = r.rewrite.map(|rw| rewrite(rw, &format!("{at}.rewrite"), errors));
    let retry = r.retry.map(|rt| retry(rt, &format!("{at}.retry"), errors));
    let filters = chain(r.filters, &format!("{at}.filters"), &format!("route {}", r.name), cx, errors);
    let action = action?;
    Some(RouteSpec {
        name: r.name.as_str().into(),
        listeners: r.listeners,
        matcher,
        priority: r.priority.unwrap_or(defaults::PRIORITY),
        index,
        action,
        rewrite,
        retry,
        timeout: r.timeout_ms.map(Duration::from_millis),
        filters,
        max_in_flight: r.max_in_flight,
        mirror,
        canary,
        websocket,
        cache: cache.flatten(),
    })
}

/// Exactly one of `upstream`, `split`, `respond`, `aggregate`.
fn action(
    r: &mut RouteFile,
    matcher: &MatchSpec,
    at: &str,
    known: &Known<'_>,
    errors: &mut Errors<'_>,
) -> Option<Action> {
    let actions = [r.upstream.is_some(), r.split.is_some(), r.respond.is_some(), r.aggregate.is_some()];
    match actions.iter().filter(|set| **set).count() {
        0 => {
            errors.at(at, "a route needs one of `upstream`, `split`, `respond`, `aggregate`");
            None
        }
        1 => {
            if let Some(u) = &r.upstream {
                known.check_upstream(u, format!("{at}.upstream"), errors);
                Some(Action::Upstream(u.as_str().into()))
            } else if let Some(split) = &r.split {
                let mut total = 0;
                for (j, s) in split.iter().enumerate() {
                    known.check_upstream(&s.upstream, format!("{at}.split[{j}].upstream"), errors);
                    total += s.weight;
                }
                if total == 0 {
                    errors.at(format!("{at}.split"), "weights must add up to more than 0");
                }
                Some(Action::Split(split.iter().map(|s| (Arc::from(s.upstream.as_str()), s.weight)).collect()))
            } else if let Some(resp) = r.respond.take() {
                respond(resp, &format!("{at}.respond"), errors).map(Action::Respond)
            } else {
                let parts = r.aggregate.take().unwrap_or_default();
                super::aggregate::aggregate(parts, r, matcher, at, known, errors)
                    .map(|a| Action::Aggregate(Arc::new(a)))
            }
        }
        _ => {
            errors.at(at, "`upstream`, `split`, `respond` and `aggregate` exclude each other");
            None
        }
    }
}

fn mirror(m: MirrorFile, at: &str, known: &Known<'_>, errors: &mut Errors<'_>) -> MirrorSpec {
    known.check_upstream(&m.upstream, format!("{at}.mirror.upstream"), errors);
    let percent = m.percent.unwrap_or(defaults::MIRROR_PERCENT);
    if !(0.0..=100.0).contains(&percent) {
        errors.at(format!("{at}.mirror.percent"), "a percentage is between 0 and 100");
    }
    let max_in_flight = m.max_in_flight.unwrap_or(defaults::MIRROR_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        errors.at(format!("{at}.mirror.max_in_flight"), "must be at least 1 (to mirror nothing, remove `mirror`)");
    }
    MirrorSpec {
        upstream: m.upstream.as_str().into(),
        percent,
        max_body_bytes: m.max_body_bytes.unwrap_or(defaults::MIRROR_MAX_BODY_BYTES),
        max_in_flight,
    }
}

fn canary(c: CanaryFile, at: &str, known: &Known<'_>, errors: &mut Errors<'_>) -> CanarySpec {
    known.check_upstream(&c.upstream, format!("{at}.canary.upstream"), errors);
    if c.header.is_none() && c.cookie.is_none() {
        errors.at(format!("{at}.canary"), "name a `header` or a `cookie` that selects the canary");
    }
    let header = c.header.as_deref().and_then(|h| header_name(h, format!("{at}.canary.header"), errors));
    CanarySpec { upstream: c.upstream.as_str().into(), header, cookie: c.cookie, value: c.value }
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
    let status = r.status.unwrap_or(defaults::RESPOND_STATUS);
    if !(100..=599).contains(&status) {
        errors.at(format!("{at}.status"), "a status is between 100 and 599");
        return None;
    }
    Some(RespondSpec {
        status,
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
        attempts: r.attempts.unwrap_or(defaults::RETRY_ATTEMPTS),
        budget_percent: r.budget_percent.unwrap_or(defaults::RETRY_BUDGET_PERCENT),
        non_idempotent: r.non_idempotent.unwrap_or(defaults::RETRY_NON_IDEMPOTENT),
        ..Default::default()
    };
    let on = if r.on.is_empty() {
        defaults::RETRY_ON.iter().map(|k| RetryOnFile::Kind(k.to_string())).collect()
    } else {
        r.on
    };
    for (i, cond) in on.into_iter().enumerate() {
        match cond {
            RetryOnFile::Status(s) if (500..=599).contains(&s) || s == 429 => spec.on_status.push(s),
            RetryOnFile::Kind(k) if k == "connect_error" => spec.on_connect_error = true,
            RetryOnFile::Kind(k) if k == "timeout" => spec.on_timeout = true,
            RetryOnFile::Kind(k) if k.parse::<u16>().is_ok_and(|s| (500..=599).contains(&s)) => {
                spec.on_status.push(k.parse().unwrap_or(502))
            }
            RetryOnFile::Kind(k) if Code::from_name(&k).is_some_and(|c| c != Code::Ok) => {
                spec.on_grpc.extend(Code::from_name(&k))
            }
            other => errors.at(
                format!("{at}.on[{i}]"),
                format!(
                    "{other:?} is not one of connect_error, timeout, a 5xx/429 status, or a gRPC status name \
                     (unavailable, resource_exhausted, ...)"
                ),
            ),
        }
    }
    spec
}
