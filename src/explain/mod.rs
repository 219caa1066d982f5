//! Why a request goes where it goes: the routing table in precedence order (`GET /routes`,
//! `portico routes`) and, for one request, the listener and route it gets (or why none), the
//! filters it passes, how the upstream and target are chosen, retries and timeouts
//! (`GET /explain`, `portico explain`).
//!
//! Everything here reads the compiled [`Config`] and the [`Router`] the proxy itself routes
//! with: the chosen route comes from [`crate::routing::ListenerRouter::find`], and the reasons a route did not
//! match from [`crate::routing::misses`], which is built from the same predicates. The report is
//! one serializable value ([`Explanation`]); the admin API sends it as JSON and the CLI renders
//! it as text ([`text`]), so both tell the same story.

pub mod pool;
pub mod table;
#[cfg(test)]
mod tests;
pub mod text;

mod cache;
mod candidates;
mod plan;
mod probe;
mod types;

pub use probe::Probe;
pub use types::*;

use crate::config::{Action, Config, ListenerSpec, RouteSpec};
use crate::routing::{RequestView, RouteMatch, Router};
use candidates::{candidate, nearest, shown_header};
use std::sync::Arc;
use table::{filter_items, ListenerTable, Owner, RouteEntry};

/// Routes listed in full when saying which ranked above the chosen one; more are counted.
const MAX_LISTED: usize = 20;

/// Explains `probe` against a compiled config and its router.
pub fn explain(config: &Config, router: &Router, probe: &Probe) -> Explanation {
    let host = probe.host();
    let mut out = Explanation {
        request: RequestSummary {
            method: probe.method.to_string(),
            url: probe.uri.to_string(),
            host: host.clone(),
            path: probe.uri.path().to_string(),
            query: probe.uri.query().map(str::to_string),
            headers: probe.headers.iter().map(|(k, v)| (k.to_string(), shown_header(k, v))).collect(),
        },
        listener: None,
        result: Outcome { kind: "no_listener", status: None, message: String::new() },
        route: None,
        tried_first: Vec::new(),
        tried_first_more: 0,
        nearest: Vec::new(),
        filters: Vec::new(),
        upstream: None,
        retry: None,
        timeout_ms: None,
        max_in_flight: None,
        cache: None,
    };
    let (listener, because) = match pick_listener(config, probe) {
        Ok(found) => found,
        Err(message) => {
            out.result.message = message;
            return out;
        }
    };
    out.listener = Some(ListenerChoice {
        name: listener.name.to_string(),
        listen: listener.listen.clone(),
        role: table::role(listener),
        chosen_because: because,
    });
    if let Some(port) = listener.redirect_https {
        let target = if port == 443 { host.clone() } else { format!("{host}:{port}") };
        let path = probe.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        out.result = Outcome {
            kind: "redirect",
            status: Some(308),
            message: format!("listener {} redirects every request to https://{target}{path}", listener.name),
        };
        return out;
    }
    let Some(lr) = router.listener(&listener.name) else {
        out.result.message = format!("listener {} has no routing table", listener.name);
        return out;
    };
    let view = RequestView {
        method: &probe.method,
        host: &host,
        path: probe.uri.path(),
        query: probe.uri.query(),
        headers: &probe.headers,
    };
    match lr.find(&view) {
        RouteMatch::Found(route) => {
            let rank = lr.routes().iter().position(|r| Arc::ptr_eq(r, route)).unwrap_or(0);
            let above: Vec<Candidate> =
                lr.routes()[..rank].iter().enumerate().map(|(i, r)| candidate(r, i + 1, &view)).collect();
            out.tried_first_more = above.len().saturating_sub(MAX_LISTED);
            out.tried_first = above.into_iter().take(MAX_LISTED).collect();
            routed(config, listener, route, rank + 1, probe, &mut out);
        }
        RouteMatch::MethodNotAllowed(allow) => {
            out.result = Outcome {
                kind: "method_not_allowed",
                status: Some(405),
                message: format!(
                    "routes match the path but not {}; Allow: {allow} (answered before any filter runs)",
                    probe.method
                ),
            };
            out.nearest = nearest(lr, &view);
        }
        RouteMatch::NotFound => {
            out.result = Outcome {
                kind: "not_found",
                status: Some(404),
                message: "no route matches (answered before any filter runs)".into(),
            };
            out.nearest = nearest(lr, &view);
        }
    }
    out
}

/// Fills in what happens once `route` takes the request.
fn routed(
    config: &Config,
    listener: &ListenerSpec,
    route: &Arc<RouteSpec>,
    rank: usize,
    probe: &Probe,
    out: &mut Explanation,
) {
    out.route = Some(RouteEntry::of(config, route, rank));
    for (owner, from) in [
        (Owner::Listener(&listener.name), format!("listener {}", listener.name)),
        (Owner::Route(&route.name), format!("route {}", route.name)),
    ] {
        out.filters.extend(filter_items(config, owner).into_iter().map(|(name, config)| FilterStep {
            name,
            from: from.clone(),
            config,
        }));
    }
    let pass = if out.filters.is_empty() { "" } else { ", once its filters let it through" };
    let names: Vec<&str> = match &route.action {
        Action::Respond(r) => {
            out.result = Outcome {
                kind: "respond",
                status: Some(r.status),
                message: format!("route {} answers {} itself{pass}", route.name, r.status),
            };
            return;
        }
        Action::Aggregate(a) => {
            out.max_in_flight = route.max_in_flight;
            out.timeout_ms = route.timeout.map(|t| t.as_millis() as u64);
            let vars = crate::compose::template::Vars::of(&route.matcher.path, probe.uri.path(), probe.uri.query());
            let parts: Vec<String> = a
                .parts
                .iter()
                .map(|p| {
                    let required = if p.required { "required" } else { "optional" };
                    let path = p.path.render(&vars, crate::compose::template::Escape::Path);
                    format!("{} ({} {path} via {}, {required})", p.name, p.method, p.upstream)
                })
                .collect();
            let how = if a.merge { "their fields merged into one JSON object" } else { "one JSON object by part name" };
            out.result = Outcome {
                kind: "aggregate",
                status: None,
                message: format!("route {} calls {} at once and answers {how}{pass}", route.name, parts.join(", ")),
            };
            return;
        }
        Action::Upstream(u) => vec![u],
        Action::Split(parts) => parts.iter().map(|(u, _)| &**u).collect(),
    };
    out.max_in_flight = route.max_in_flight;
    out.timeout_ms = route.timeout.map(|t| t.as_millis() as u64);
    out.cache = Some(cache::plan(route.cache.as_deref(), &probe.method));
    out.retry = route.retry.as_ref().map(|r| plan::retry_plan(r, &probe.method));
    let plan = plan::upstream_plan(config, route, &names, probe);
    out.result = Outcome {
        kind: "proxy",
        status: None,
        message: match &plan.goes_to {
            Some(u) => format!("proxied to upstream {u} as {} {}{pass}", plan.sent_as.method, plan.sent_as.path),
            None => {
                format!("proxied to one of {} as {} {}{pass}", names.join(", "), plan.sent_as.method, plan.sent_as.path)
            }
        },
    };
    out.upstream = Some(plan);
}
/// Which listener the request arrives on, and why that one.
fn pick_listener<'a>(config: &'a Config, probe: &Probe) -> Result<(&'a ListenerSpec, String), String> {
    let names = || config.listeners.iter().map(|l| l.name.to_string()).collect::<Vec<_>>().join(", ");
    if let Some(name) = &probe.listener {
        return match config.listeners.iter().find(|l| *l.name == **name) {
            Some(l) => Ok((l, "named in the request".into())),
            None => Err(format!("no listener named \"{name}\" (known: {})", names())),
        };
    }
    let first = config.listeners.first().ok_or_else(|| "the config has no listener".to_string())?;
    let default_port = match probe.uri.scheme_str() {
        Some("https") => Some(443),
        Some(_) => Some(80),
        None => None,
    };
    let Some(port) = probe.uri.port_u16().or(default_port) else {
        return Ok((first, "the first listener (the URL names no port)".into()));
    };
    let on_port =
        config.listeners.iter().find(|l| l.listen.rsplit(':').next().and_then(|p| p.parse().ok()) == Some(port));
    Ok(match on_port {
        Some(l) if probe.uri.port_u16().is_some() => (l, format!("it listens on the URL's port, {port}")),
        Some(l) => (l, format!("it listens on port {port}, the URL's default")),
        None => (first, format!("no listener is on port {port}: shown for the first listener")),
    })
}
// === the CLI ===

/// `portico explain -c FILE [-X METHOD] [-H 'K: V']... URL`: the explanation as text, or what is
/// wrong with the request as typed.
pub fn explain_cli(config: &Config, method: &str, url: &str, headers: &[String]) -> String {
    match Probe::parse(method, url, headers, None) {
        Ok(probe) => text::explanation(&explain(config, &router(config), &probe)),
        Err(e) => format!("portico explain: {e}\n"),
    }
}

/// `portico routes -c FILE`: every listener's routing table as text.
pub fn routes_cli(config: &Config) -> String {
    text::tables(&table::tables(config, &router(config)))
}

/// The routing table for every listener, as JSON (`GET /routes`).
pub fn routes_json(config: &Config, router: &Router) -> Vec<ListenerTable> {
    table::tables(config, router)
}

fn router(config: &Config) -> Router {
    let names: Vec<Arc<str>> = config.listeners.iter().map(|l| l.name.clone()).collect();
    Router::new(&names, &config.routes)
}
