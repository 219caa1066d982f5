//! Upstream choice and retries for a request a route proxies.

use super::pool::PoolPlan;
use super::table;
use super::{Probe, RetryPlan, SentAs, UpstreamPlan};
use crate::config::{Action, Config, RouteSpec};
use http::Method;

pub(super) fn upstream_plan(config: &Config, route: &RouteSpec, names: &[&str], probe: &Probe) -> UpstreamPlan {
    let mut choice = Vec::new();
    let mut goes_to = None;
    let mut pools: Vec<&str> = Vec::new();
    if let Some(c) = &route.canary {
        let marker = match (&c.header, &c.cookie) {
            (Some(h), Some(k)) => format!("header {h} or cookie {k}"),
            (Some(h), None) => format!("header {h}"),
            (None, Some(k)) => format!("cookie {k}"),
            (None, None) => "nothing".into(),
        };
        let value = c.value.as_ref().map_or(" (any value)".to_string(), |v| format!(" = {v}"));
        let wanted = |v: &str| c.value.as_ref().is_none_or(|want| want == v);
        let by_header = c
            .header
            .as_ref()
            .is_some_and(|h| probe.headers.get_all(h).iter().any(|v| wanted(&String::from_utf8_lossy(v.as_bytes()))));
        let selected = by_header || c.cookie.as_ref().is_some_and(|k| probe.cookie(k).is_some_and(|v| wanted(&v)));
        choice.push(format!(
            "canary: {marker}{value} sends it to {}; this request {}",
            c.upstream,
            if selected { "carries it" } else { "does not" }
        ));
        pools.push(&c.upstream);
        if selected {
            goes_to = Some(c.upstream.to_string());
        }
    }
    match &route.action {
        Action::Split(parts) => {
            let shares: Vec<String> =
                table::split_parts(parts).iter().map(|p| format!("{} {}%", p.upstream, p.percent)).collect();
            choice.push(format!("split by weight: {}", shares.join(", ")));
        }
        _ => {
            choice.push(format!("upstream {}", names.join(", ")));
            goes_to = goes_to.or_else(|| names.first().map(|n| n.to_string()));
        }
    }
    for n in names {
        if !pools.contains(n) {
            pools.push(n);
        }
    }
    let path = match &route.rewrite {
        Some(rw) => rw.path(probe.uri.path()),
        None => probe.uri.path().to_string(),
    };
    let rewrite = route.rewrite.as_ref().and_then(|rw| {
        let mut parts = Vec::new();
        if let Some(p) = &rw.strip_prefix {
            parts.push(format!("strip_prefix {p}"));
        }
        if let Some(p) = &rw.add_prefix {
            parts.push(format!("add_prefix {p}"));
        }
        if let Some(h) = &rw.host {
            parts.push(format!("host {}", h.to_str().unwrap_or("?")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    });
    UpstreamPlan {
        choice,
        goes_to,
        pools: pools
            .iter()
            .filter_map(|n| config.upstreams.iter().find(|u| &*u.name == *n))
            .map(|u| PoolPlan::of(u, probe))
            .collect(),
        sent_as: SentAs {
            method: probe.method.to_string(),
            path: match probe.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            },
            host: route
                .rewrite
                .as_ref()
                .and_then(|rw| rw.host.as_ref())
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
            rewrite,
        },
        mirror: route.mirror.as_ref().map(|m| format!("{}% of requests copied to {}", m.percent, m.upstream)),
    }
}

pub(super) fn retry_plan(r: &crate::config::RetrySpec, method: &Method) -> RetryPlan {
    let mut on = Vec::new();
    if r.on_connect_error {
        on.push("connect_error".to_string());
    }
    if r.on_timeout {
        on.push("timeout".to_string());
    }
    on.extend(r.on_status.iter().map(u16::to_string));
    let this_request = if method.is_idempotent() {
        format!("{method} is idempotent, so it may be retried")
    } else if r.non_idempotent {
        format!("{method} is not idempotent, but `non_idempotent: true` lets it be retried")
    } else {
        format!("{method} is not idempotent, so it is never retried (`non_idempotent: true` would allow it)")
    };
    RetryPlan { attempts: r.attempts, on, budget_percent: r.budget_percent, this_request }
}
