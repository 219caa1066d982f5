//! Route matching, compiled once per config.
//!
//! Routes are ranked (priority, then longer path, then exact before prefix, then file order) and
//! indexed per listener by host (exact, `*.` suffix, any) and by the first path segment, so a
//! request only checks the few routes that could match: at 1,000 routes a match stays well under
//! a microsecond (see `benches/routing.rs`).

use crate::config::{HostPattern, MatchSpec, PathPattern, RouteSpec};
use http::{HeaderMap, HeaderName, Method};
use std::collections::HashMap;
use std::sync::Arc;

/// The parts of a request that routing looks at.
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Host without port; any case.
    pub host: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Raw query string, if any.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// The outcome of matching.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    /// This route takes the request.
    Found(&'a Arc<RouteSpec>),
    /// Routes match the path but not the method: the `Allow` header value.
    MethodNotAllowed(String),
    /// Nothing matches.
    NotFound,
}

/// A path-segment trie of route indexes: a route whose path rule fixes its segments
/// (`/api/v1` for `path: /api/v1` or `path_exact: /api/v1`) sits at the node of its last
/// segment; a request walks its own segments and only the routes on that walk can match.
#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Ranked indexes of routes whose path ends at this node.
    here: Vec<u32>,
}

/// Candidate route indexes for one host rule, ranked.
#[derive(Debug, Default)]
struct Bucket {
    root: Node,
    /// Routes with no fixed path (any path, regex): checked for every request.
    generic: Vec<u32>,
}

impl Bucket {
    fn insert(&mut self, idx: u32, path: Option<&str>) {
        match path {
            Some(p) => {
                let mut node = &mut self.root;
                for seg in segments(p) {
                    node = node.children.entry(seg.into()).or_default();
                }
                node.here.push(idx);
            }
            None => self.generic.push(idx),
        }
    }
}

/// The routes of one listener.
#[derive(Debug, Default)]
pub struct ListenerRouter {
    routes: Vec<Arc<RouteSpec>>,
    exact_hosts: HashMap<Box<str>, Bucket>,
    suffix_hosts: Vec<(Box<str>, Bucket)>,
    any_host: Bucket,
}

/// Lists merged per request; more than this falls back to a scan of all routes.
const MAX_LISTS: usize = 16;

impl ListenerRouter {
    /// Ranks and indexes `routes`.
    pub fn new(mut routes: Vec<Arc<RouteSpec>>) -> Self {
        routes.sort_by(|a, b| rank(b).cmp(&rank(a)).then(a.index.cmp(&b.index)));
        let mut router = ListenerRouter::default();
        for (i, r) in routes.iter().enumerate() {
            let idx = i as u32;
            let segment = indexed_path(&r.matcher.path);
            if r.matcher.hosts.is_empty() {
                router.any_host.insert(idx, segment);
            }
            for h in &r.matcher.hosts {
                match h {
                    HostPattern::Exact(host) => {
                        router.exact_hosts.entry(host.as_str().into()).or_default().insert(idx, segment)
                    }
                    HostPattern::Suffix(suffix) => {
                        let pos = router.suffix_hosts.iter().position(|(s, _)| **s == **suffix);
                        let pos = pos.unwrap_or_else(|| {
                            router.suffix_hosts.push((suffix.as_str().into(), Bucket::default()));
                            router.suffix_hosts.len() - 1
                        });
                        router.suffix_hosts[pos].1.insert(idx, segment);
                    }
                }
            }
        }
        router.routes = routes;
        router
    }

    /// Finds the best route for a request.
    pub fn find(&self, req: &RequestView<'_>) -> RouteMatch<'_> {
        let lowered;
        let host = if req.host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = req.host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            req.host
        };
        let segment = req.path;

        let mut lists: [&[u32]; MAX_LISTS] = [&[]; MAX_LISTS];
        let mut n = 0;
        let mut overflow = false;
        if let Some(b) = self.exact_hosts.get(host) {
            overflow |= push_lists(b, segment, &mut lists, &mut n);
        }
        for (suffix, b) in &self.suffix_hosts {
            if host.len() > suffix.len() && host.ends_with(&**suffix) {
                overflow |= push_lists(b, segment, &mut lists, &mut n);
            }
        }
        overflow |= push_lists(&self.any_host, segment, &mut lists, &mut n);

        let mut allow: Vec<&Method> = Vec::new();
        if overflow {
            for r in &self.routes {
                if host_matches(&r.matcher, host) {
                    if let Some(found) = self.check(r, req, &mut allow) {
                        return RouteMatch::Found(found);
                    }
                }
            }
        } else {
            // k-way merge of ranked lists: the first full match is the best one.
            let mut pos = [0usize; MAX_LISTS];
            loop {
                let mut best: Option<(usize, u32)> = None;
                for (li, list) in lists[..n].iter().enumerate() {
                    if let Some(&idx) = list.get(pos[li]) {
                        if best.is_none_or(|(_, b)| idx < b) {
                            best = Some((li, idx));
                        }
                    }
                }
                let Some((li, idx)) = best else { break };
                pos[li] += 1;
                if let Some(found) = self.check(&self.routes[idx as usize], req, &mut allow) {
                    return RouteMatch::Found(found);
                }
            }
        }
        if allow.is_empty() {
            RouteMatch::NotFound
        } else {
            let mut names: Vec<&str> = allow.iter().map(|m| m.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            RouteMatch::MethodNotAllowed(names.join(", "))
        }
    }

    fn check<'r>(
        &self,
        route: &'r Arc<RouteSpec>,
        req: &RequestView<'_>,
        allow: &mut Vec<&'r Method>,
    ) -> Option<&'r Arc<RouteSpec>> {
        let m = &route.matcher;
        if !path_matches(&m.path, req.path) || !headers_match(m, req.headers) || !query_matches(m, req.query) {
            return None;
        }
        match &m.methods {
            Some(methods) if !methods.iter().any(|x| x == req.method) => {
                allow.extend(methods.iter());
                None
            }
            _ => Some(route),
        }
    }
}

/// Routers for every listener of a config.
#[derive(Debug, Default)]
pub struct Router {
    by_listener: HashMap<Arc<str>, ListenerRouter>,
}

impl Router {
    /// Builds one indexed router per listener from the config's routes.
    pub fn new(listeners: &[Arc<str>], routes: &[Arc<RouteSpec>]) -> Self {
        let by_listener = listeners
            .iter()
            .map(|l| {
                let mine = routes
                    .iter()
                    .filter(|r| r.listeners.as_ref().is_none_or(|ls| ls.iter().any(|x| **x == **l)))
                    .cloned()
                    .collect();
                (l.clone(), ListenerRouter::new(mine))
            })
            .collect();
        Router { by_listener }
    }

    /// The router of one listener.
    pub fn listener(&self, name: &str) -> Option<&ListenerRouter> {
        self.by_listener.get(name)
    }
}

/// Adds a bucket's candidate lists for `path` (the routes on its trie walk, then the generic
/// ones); `true` when they did not fit.
fn push_lists<'a>(b: &'a Bucket, path: &str, lists: &mut [&'a [u32]; MAX_LISTS], n: &mut usize) -> bool {
    let mut push = |l: &'a [u32]| {
        if l.is_empty() {
            return true;
        }
        if *n == MAX_LISTS {
            return false;
        }
        lists[*n] = l;
        *n += 1;
        true
    };
    let mut node = &b.root;
    for seg in segments(path) {
        match node.children.get(seg) {
            Some(child) => {
                node = child;
                if !push(&node.here) {
                    return true;
                }
            }
            None => break,
        }
    }
    !push(&b.generic)
}

fn rank(r: &RouteSpec) -> (i32, usize, u8) {
    let (len, kind) = match &r.matcher.path {
        PathPattern::Exact(p) => (p.len(), 3),
        PathPattern::Prefix(p) => (p.len(), 2),
        PathPattern::Regex(_) => (0, 1),
        PathPattern::Any => (0, 0),
    };
    (r.priority, len, kind)
}

/// The path a route's rule fixes, when it fixes one.
fn indexed_path(p: &PathPattern) -> Option<&str> {
    match p {
        PathPattern::Prefix(p) | PathPattern::Exact(p) => Some(p),
        PathPattern::Regex(_) | PathPattern::Any => None,
    }
}

/// The segments of a path: `/a/b` gives `a`, `b`; `/` gives one empty segment.
fn segments(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

fn host_matches(m: &MatchSpec, host: &str) -> bool {
    m.hosts.is_empty()
        || m.hosts.iter().any(|h| match h {
            HostPattern::Exact(e) => e == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        })
}

fn path_matches(p: &PathPattern, path: &str) -> bool {
    match p {
        PathPattern::Any => true,
        PathPattern::Exact(e) => e == path,
        PathPattern::Prefix(pre) => {
            path.starts_with(pre.as_str()) && (path.len() == pre.len() || path.as_bytes()[pre.len()] == b'/')
        }
        PathPattern::Regex(re) => re.is_match(path),
    }
}

fn headers_match(m: &MatchSpec, headers: &HeaderMap) -> bool {
    m.headers.iter().all(|(name, want)| header_matches(name, want, headers))
}

fn header_matches(name: &HeaderName, want: &str, headers: &HeaderMap) -> bool {
    headers.get_all(name).iter().any(|v| want == "*" || v.as_bytes() == want.as_bytes())
}

fn query_matches(m: &MatchSpec, query: Option<&str>) -> bool {
    m.query.iter().all(|(name, want)| query_param_matches(name, want, query))
}

fn query_param_matches(name: &str, want: &str, query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k == name && (want == "*" || v == want)
    })
}

// === explaining a match ===

/// One rule of a route's match that a request fails; `/explain` says why a route did not
/// take a request with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// None of the route's hosts.
    Host,
    /// The path rule.
    Path,
    /// This header is missing or has another value.
    Header(HeaderName),
    /// This query parameter is missing or has another value.
    Query(String),
    /// The route takes other methods (the request would get 405 if nothing else matched).
    Method,
}

impl ListenerRouter {
    /// The listener's routes in precedence order, the order [`ListenerRouter::find`] tries them
    /// in: what `GET /routes` lists.
    pub fn routes(&self) -> &[Arc<RouteSpec>] {
        &self.routes
    }
}

/// The rules of `route` that `req` fails, in the order routing checks them; empty when the
/// route would take the request. Built from the same predicates as [`ListenerRouter::find`], so
/// an explanation cannot disagree with routing.
pub fn misses(route: &RouteSpec, req: &RequestView<'_>) -> Vec<Miss> {
    let m = &route.matcher;
    let mut out = Vec::new();
    if !host_matches(m, &req.host.to_ascii_lowercase()) {
        out.push(Miss::Host);
    }
    if !path_matches(&m.path, req.path) {
        out.push(Miss::Path);
    }
    out.extend(
        m.headers.iter().filter(|(n, w)| !header_matches(n, w, req.headers)).map(|(n, _)| Miss::Header(n.clone())),
    );
    out.extend(
        m.query.iter().filter(|(n, w)| !query_param_matches(n, w, req.query)).map(|(n, _)| Miss::Query(n.clone())),
    );
    if m.methods.as_ref().is_some_and(|ms| !ms.iter().any(|x| x == req.method)) {
        out.push(Miss::Method);
    }
    out
}

#[cfg(test)]
mod tests;
