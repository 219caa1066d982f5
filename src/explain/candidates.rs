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

/// The routes closest to taking a request nothing took: those whose path matches first, then
/// those whose path rule shares the longest start with the request's path (`/user/7` is near
/// `/users`), then fewest other failed rules, then precedence.
pub(super) fn nearest(lr: &ListenerRouter, req: &RequestView<'_>) -> Vec<Candidate> {
    // (path missed, longest shared start first, other misses, precedence)
    type Nearness = (bool, std::cmp::Reverse<usize>, usize, usize);
    let mut all: Vec<(usize, Nearness)> = lr
        .routes()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let m = misses(r, req);
            let path_missed = m.contains(&Miss::Path);
            let shared = if path_missed { shared_start(&r.matcher.path, req.path) } else { 0 };
            let others = m.iter().filter(|x| **x != Miss::Path).count();
            (i, (path_missed, std::cmp::Reverse(shared), others, i))
        })
        .collect();
    all.sort_by_key(|(_, key)| *key);
    all.into_iter().take(NEAREST).map(|(i, _)| candidate(&lr.routes()[i], i + 1, req)).collect()
}

/// How many leading bytes a path rule's literal start shares with `path`.
fn shared_start(p: &PathPattern, path: &str) -> usize {
    let literal = match p {
        PathPattern::Prefix(s) | PathPattern::Exact(s) => s.as_str(),
        PathPattern::Regex(r) => r.as_str().trim_start_matches('^'),
        PathPattern::Any => "",
    };
    literal.bytes().zip(path.bytes()).take_while(|(a, b)| a == b).count()
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
