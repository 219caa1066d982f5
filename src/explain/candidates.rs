//! Routes that did not take a request, and why: each failed rule with what the route wants
//! and what the request has.

use super::table::host_pattern;
use super::{Candidate, MissReport};
use crate::config::{PathPattern, RouteSpec};
use crate::routing::{misses, ListenerRouter, Miss, RequestView};
use http::{HeaderName, HeaderValue};

/// Near candidates shown when nothing matched.
const NEAREST: usize = 3;

/// A route that did not take the request, with every rule it failed.
pub(super) fn candidate(route: &RouteSpec, rank: usize, req: &RequestView<'_>) -> Candidate {
    Candidate {
        route: route.name.to_string(),
        rank,
        failed: misses(route, req).iter().map(|m| report_miss(route, m, req)).collect(),
    }
}

/// The routes closest to taking a request nothing took: fewest failed rules first, a matching
/// path counting for more than a matching host, then precedence.
pub(super) fn nearest(lr: &ListenerRouter, req: &RequestView<'_>) -> Vec<Candidate> {
    let mut all: Vec<(usize, Vec<Miss>, usize)> =
        lr.routes().iter().enumerate().map(|(i, r)| (i, misses(r, req), i + 1)).collect();
    all.sort_by_key(|(_, m, rank)| {
        let weight: usize = m.iter().map(|x| if *x == Miss::Path { 3 } else { 2 }).sum();
        (weight, *rank)
    });
    all.into_iter().take(NEAREST).map(|(i, _, rank)| candidate(&lr.routes()[i], rank, req)).collect()
}

fn report_miss(route: &RouteSpec, miss: &Miss, req: &RequestView<'_>) -> MissReport {
    let m = &route.matcher;
    match miss {
        Miss::Host => MissReport {
            rule: "host",
            wants: m.hosts.iter().map(host_pattern).collect::<Vec<_>>().join(" or "),
            got: if req.host.is_empty() { "no host".into() } else { req.host.to_string() },
        },
        Miss::Path => MissReport {
            rule: "path",
            wants: match &m.path {
                PathPattern::Any => "any path".into(),
                PathPattern::Prefix(p) => format!("{p} or below"),
                PathPattern::Exact(p) => format!("exactly {p}"),
                PathPattern::Regex(r) => format!("to match {}", r.as_str()),
            },
            got: req.path.to_string(),
        },
        Miss::Header(name) => {
            let want = m.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("*");
            let got: Vec<String> = req.headers.get_all(name).iter().map(|v| shown_header(name, v)).collect();
            MissReport {
                rule: "header",
                wants: if want == "*" { format!("{name} present") } else { format!("{name}: {want}") },
                got: if got.is_empty() { format!("no {name}") } else { format!("{name}: {}", got.join(", ")) },
            }
        }
        Miss::Query(name) => {
            let want = m.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("*");
            let got: Vec<&str> = req
                .query
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.split_once('=').map_or((p == name).then_some(""), |(k, v)| (k == name).then_some(v)))
                .collect();
            MissReport {
                rule: "query",
                wants: if want == "*" { format!("?{name} present") } else { format!("?{name}={want}") },
                got: if got.is_empty() { format!("no ?{name}") } else { format!("?{name}={}", got.join(",")) },
            }
        }
        Miss::Method => MissReport {
            rule: "method",
            wants: m.methods.iter().flatten().map(|x| x.as_str()).collect::<Vec<_>>().join(", "),
            got: req.method.to_string(),
        },
    }
}

/// A header value for display: credentials are masked.
pub(super) fn shown_header(name: &HeaderName, value: &HeaderValue) -> String {
    if name == http::header::AUTHORIZATION || name == http::header::PROXY_AUTHORIZATION {
        let v = value.to_str().unwrap_or("");
        return match v.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} ***"),
            None => "***".into(),
        };
    }
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}
