//! The routing table (`GET /routes`, `portico routes`): every listener's routes in precedence
//! order, each built from the compiled config type it describes. Field names are the JSON API;
//! the text renderer reads the same structs.

use crate::config::{Action, CanarySpec, Config, HostPattern, ListenerSpec, MatchSpec, PathPattern, Role, RouteSpec};
use serde::Serialize;
use std::collections::BTreeMap;

/// One listener and its routes, in precedence order.
#[derive(Debug, Serialize)]
pub struct ListenerTable {
    /// Listener name.
    pub name: String,
    /// Bound address.
    pub listen: String,
    /// `edge` or `internal`.
    pub role: &'static str,
    /// Whether it terminates TLS.
    pub tls: bool,
    /// Set when every request is redirected to HTTPS on this port instead of routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_https: Option<u16>,
    /// The listener's own filters, by name, run before every route's.
    pub filters: Vec<String>,
    /// Routes in the order routing tries them.
    pub routes: Vec<RouteEntry>,
}

/// One route as routing sees it.
#[derive(Debug, Serialize)]
pub struct RouteEntry {
    /// 1-based precedence on its listener: lower is tried first.
    pub rank: usize,
    /// Route name.
    pub name: String,
    /// Configured priority (higher first; ties: longer path, exact before prefix, file order).
    pub priority: i32,
    /// What a request must match.
    #[serde(rename = "match")]
    pub matcher: MatchSummary,
    /// What the route does with a request.
    pub action: ActionSummary,
    /// The route's own filters, by name.
    pub filters: Vec<String>,
}

/// A route's match rules.
#[derive(Debug, Serialize)]
pub struct MatchSummary {
    /// Host patterns; empty: any host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The path rule.
    pub path: PathSummary,
    /// Methods; absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Required headers (`*`: present with any value).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Required query parameters (`*`: present with any value).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
}

/// A path rule: `kind` is `any`, `prefix`, `exact` or `regex`.
#[derive(Debug, Serialize)]
pub struct PathSummary {
    /// How the path is compared.
    pub kind: &'static str,
    /// The path or regex (absent for `any`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a route does: exactly one of `upstream`, `split`, `respond`, `aggregate` is set.
#[derive(Debug, Serialize)]
pub struct ActionSummary {
    /// Proxy to this upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Proxy to one of these, by weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<SplitPart>>,
    /// Answer with this static response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respond: Option<RespondSummary>,
    /// Requests carrying a marker go to another upstream first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySummary>,
    /// A copy of requests goes to a shadow upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSummary>,
    /// Answer with these parts, called at once and composed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateSummary>,
}

/// An aggregate route's parts, as configured.
#[derive(Debug, Serialize)]
pub struct AggregateSummary {
    /// `aggregate_merge`: top-level fields merged instead of one field per part.
    pub merge: bool,
    /// The parts, in answer order.
    pub parts: Vec<PartSummary>,
}

/// One part of an aggregate route.
#[derive(Debug, Serialize)]
pub struct PartSummary {
    /// Its field in the answer.
    pub name: String,
    /// The pool it goes through.
    pub upstream: String,
    /// Method sent.
    pub method: String,
    /// Path template as written (`/users/{id}`).
    pub path: String,
    /// Whether it sends a body.
    pub body: bool,
    /// Whether its failure fails the answer.
    pub required: bool,
    /// Its own bound, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl AggregateSummary {
    /// The summary of `a`.
    pub fn of(a: &crate::config::AggregateSpec) -> Self {
        let parts = a
            .parts
            .iter()
            .map(|p| PartSummary {
                name: p.name.to_string(),
                upstream: p.upstream.to_string(),
                method: p.method.to_string(),
                path: p.path.as_str().to_string(),
                body: p.body.is_some(),
                required: p.required,
                timeout_ms: p.timeout.map(|t| t.as_millis() as u64),
            })
            .collect();
        AggregateSummary { merge: a.merge, parts }
    }
}

/// One part of a traffic split.
#[derive(Debug, Serialize)]
pub struct SplitPart {
    /// Upstream name.
    pub upstream: String,
    /// Configured weight.
    pub weight: u32,
    /// Its share of requests, in percent.
    pub percent: f64,
}

/// A static response.
#[derive(Debug, Serialize)]
pub struct RespondSummary {
    /// Status code.
    pub status: u16,
    /// Body size in bytes.
    pub body_bytes: usize,
    /// Its content type, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A header- or cookie-selected canary.
#[derive(Debug, Serialize)]
pub struct CanarySummary {
    /// The canary upstream.
    pub upstream: String,
    /// The selecting header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The selecting cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// The value it must have; absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A shadow copy.
#[derive(Debug, Serialize)]
pub struct MirrorSummary {
    /// The shadow upstream.
    pub upstream: String,
    /// Share of requests copied.
    pub percent: f64,
}

/// Every listener's routing table, for `GET /routes` and `portico routes`.
pub fn tables(config: &Config, router: &crate::routing::Router) -> Vec<ListenerTable> {
    config
        .listeners
        .iter()
        .map(|l| ListenerTable {
            name: l.name.to_string(),
            listen: l.listen.clone(),
            role: role(l),
            tls: l.tls.is_some(),
            redirect_https: l.redirect_https,
            filters: filter_items(config, Owner::Listener(&l.name)).into_iter().map(|(n, _)| n).collect(),
            routes: router
                .listener(&l.name)
                .map(|r| r.routes())
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, r)| RouteEntry::of(config, r, i + 1))
                .collect(),
        })
        .collect()
}

/// `edge` or `internal`.
pub fn role(l: &ListenerSpec) -> &'static str {
    match l.role {
        Role::Edge => "edge",
        Role::Internal => "internal",
    }
}

impl RouteEntry {
    /// The entry for `route` at precedence `rank`.
    pub fn of(config: &Config, route: &RouteSpec, rank: usize) -> Self {
        RouteEntry {
            rank,
            name: route.name.to_string(),
            priority: route.priority,
            matcher: MatchSummary::of(&route.matcher),
            action: ActionSummary::of(route),
            filters: filter_items(config, Owner::Route(&route.name)).into_iter().map(|(n, _)| n).collect(),
        }
    }
}

impl MatchSummary {
    fn of(m: &MatchSpec) -> Self {
        MatchSummary {
            hosts: m.hosts.iter().map(host_pattern).collect(),
            path: match &m.path {
                PathPattern::Any => PathSummary { kind: "any", value: None },
                PathPattern::Prefix(p) => PathSummary { kind: "prefix", value: Some(p.clone()) },
                PathPattern::Exact(p) => PathSummary { kind: "exact", value: Some(p.clone()) },
                PathPattern::Regex(r) => PathSummary { kind: "regex", value: Some(r.as_str().to_string()) },
            },
            methods: m.methods.as_ref().map(|ms| ms.iter().map(|x| x.to_string()).collect()),
            headers: m.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            query: m.query.iter().cloned().collect(),
        }
    }
}

/// `api.example.com` or `*.example.com`.
pub fn host_pattern(h: &HostPattern) -> String {
    match h {
        HostPattern::Exact(e) => e.clone(),
        HostPattern::Suffix(s) => format!("*{s}"),
    }
}

impl ActionSummary {
    fn of(r: &RouteSpec) -> Self {
        let mut a =
            ActionSummary { upstream: None, split: None, respond: None, canary: None, mirror: None, aggregate: None };
        match &r.action {
            Action::Upstream(u) => a.upstream = Some(u.to_string()),
            Action::Split(parts) => a.split = Some(split_parts(parts)),
            Action::Aggregate(agg) => a.aggregate = Some(AggregateSummary::of(agg)),
            Action::Respond(resp) => {
                a.respond = Some(RespondSummary {
                    status: resp.status,
                    body_bytes: resp.body.len(),
                    content_type: resp
                        .headers
                        .iter()
                        .find(|(k, _)| k == http::header::CONTENT_TYPE)
                        .and_then(|(_, v)| v.to_str().ok())
                        .map(str::to_string),
                })
            }
        }
        a.canary = r.canary.as_ref().map(CanarySummary::of);
        a.mirror = r.mirror.as_ref().map(|m| MirrorSummary { upstream: m.upstream.to_string(), percent: m.percent });
        a
    }
}

/// The parts of a split with their shares.
pub fn split_parts(parts: &[(std::sync::Arc<str>, u32)]) -> Vec<SplitPart> {
    let total: u32 = parts.iter().map(|(_, w)| *w).sum();
    parts
        .iter()
        .map(|(u, w)| SplitPart {
            upstream: u.to_string(),
            weight: *w,
            percent: if total == 0 { 0.0 } else { (f64::from(*w) * 1000.0 / f64::from(total)).round() / 10.0 },
        })
        .collect()
}

impl CanarySummary {
    fn of(c: &CanarySpec) -> Self {
        CanarySummary {
            upstream: c.upstream.to_string(),
            header: c.header.as_ref().map(|h| h.to_string()),
            cookie: c.cookie.clone(),
            value: c.value.clone(),
        }
    }
}

/// Whose filters.
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    /// A listener's, by name.
    Listener(&'a str),
    /// A route's, by name.
    Route(&'a str),
}

/// The filters of a listener or route as configured, in order: each its name and its config
/// as written, with secrets masked (the same masking as `GET /config`). Read from the effective
/// config because built filters do not keep their config.
pub fn filter_items(config: &Config, owner: Owner<'_>) -> Vec<(String, serde_json::Value)> {
    let (section, name) = match owner {
        Owner::Listener(n) => ("listeners", n),
        Owner::Route(n) => ("routes", n),
    };
    let entry =
        config.effective[section].as_array().and_then(|items| items.iter().find(|e| e["name"].as_str() == Some(name)));
    let Some(filters) = entry.and_then(|e| e["filters"].as_array()) else { return Vec::new() };
    filters.iter().filter_map(|f| f.as_object()?.iter().next().map(|(k, v)| (k.clone(), v.clone()))).collect()
}
