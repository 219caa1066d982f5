//! Everything that picks: the route for a request, the pool for a route (a filter's choice,
//! the canary, the split), and the key a consistent-hash pool balances on.

use super::errors::Answer;
use super::Ctx;
use crate::config::{Action, Balance, CanarySpec, HashKey, RouteSpec};
use crate::routing::{RequestView, RouteMatch, Router};
use http::header;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use portico_filters::Reject;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

// === routes ===

/// The request's routing host (`crate::canonical::request_host`: lower case, no trailing dot,
/// no port; the absolute-form authority first, then `Host`). `canon.rs` has refused the request
/// already when there is none to be had, so an error here only means "no host". An IPv6
/// literal routes without its brackets, as it always has.
pub fn host(req: &RequestHeader) -> Option<Cow<'_, str>> {
    crate::canonical::request_host(req).ok().flatten().map(routing_form)
}

/// A canonical host as routes match it: an IPv6 literal without its brackets.
pub fn routing_form(host: Cow<'_, str>) -> Cow<'_, str> {
    match host {
        Cow::Borrowed(h) => Cow::Borrowed(h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h)),
        Cow::Owned(h) if h.starts_with('[') => Cow::Owned(h.trim_start_matches('[').trim_end_matches(']').into()),
        owned => owned,
    }
}

/// The route `listener`'s table gives the request, or the answer when none does (404, or 405
/// with the methods the path allows). `host` is the request's routing host, as
/// [`super::canon::canonicalize`] returned it (or [`host`] gives it).
pub fn route(
    router: &Router,
    listener: &str,
    req: &RequestHeader,
    host: Option<&str>,
) -> Result<Arc<RouteSpec>, Reject> {
    let view = RequestView {
        method: &req.method,
        host: host.unwrap_or(""),
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &req.headers,
    };
    match router.listener(listener).map(|r| r.find(&view)) {
        Some(RouteMatch::Found(route)) => Ok(route.clone()),
        Some(RouteMatch::MethodNotAllowed(allow)) => Err(Answer::MethodNotAllowed { allow: &allow }.into()),
        _ => Err(Answer::NotFound.into()),
    }
}

/// The redirect of a plain listener that only sends clients to HTTPS on `port`.
pub fn https_redirect(req: &RequestHeader, port: u16) -> Reject {
    let host = host(req);
    let host = host.as_deref().unwrap_or("localhost");
    let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = if port == 443 { format!("https://{host}{path}") } else { format!("https://{host}:{port}{path}") };
    Answer::HttpsRequired { location: &location }.into()
}

// === pools ===

/// The pool's name: a filter's choice (listener's chain first), else the canary when the
/// request asks for it, else the route's upstream (weighted when split).
pub fn pool_name(session: &Session, ctx: &mut Ctx, route: &RouteSpec) -> pingora::Result<Arc<str>> {
    let chains = ctx.chains();
    if let Some(name) = chains.iter().find_map(|c| c.upstream_select(session, &mut ctx.filter)) {
        return Ok(name);
    }
    if let Some(c) = route.canary.as_ref().filter(|c| canary_selected(c, session.req_header())) {
        return Ok(c.upstream.clone());
    }
    match &route.action {
        Action::Upstream(name) => Ok(name.clone()),
        Action::Split(parts) => Ok(pick_weighted(parts)),
        Action::Respond(_) | Action::Aggregate(_) => {
            Error::e_explain(ErrorType::InternalError, "a route that answers itself reached upstream selection")
        }
    }
}

/// Whether the request carries the canary's header or cookie (with its value, when one is set).
fn canary_selected(c: &CanarySpec, req: &RequestHeader) -> bool {
    let wanted = |v: &[u8]| c.value.as_ref().is_none_or(|want| want.as_bytes() == v);
    let by_header = c.header.as_ref().is_some_and(|h| req.headers.get_all(h).iter().any(|v| wanted(v.as_bytes())));
    by_header || c.cookie.as_ref().is_some_and(|name| cookie(req, name).is_some_and(wanted))
}

/// One of `parts`, each as often as its weight says.
fn pick_weighted(parts: &[(Arc<str>, u32)]) -> Arc<str> {
    let total: u32 = parts.iter().map(|(_, w)| *w).sum();
    let mut roll = fastrand::u32(0..total.max(1));
    for (name, w) in parts {
        if roll < *w {
            return name.clone();
        }
        roll -= w;
    }
    parts.last().map(|(n, _)| n.clone()).unwrap_or_else(|| Arc::from(""))
}

// === targets ===

/// The bytes a consistent-hash pool keys on (empty for other pools, or when the request lacks
/// the key); a client IP is written into `ip_buf` so nothing is allocated.
pub fn hash_key<'a>(
    pool: &crate::upstream::Pool,
    req: &'a RequestHeader,
    client_ip: Option<IpAddr>,
    ip_buf: &'a mut [u8; 16],
) -> &'a [u8] {
    if pool.spec.balance != Balance::ConsistentHash {
        return b"";
    }
    match &pool.spec.hash_key {
        HashKey::Header(h) => req.headers.get(h).map(|v| v.as_bytes()).unwrap_or(b""),
        HashKey::Cookie(name) => cookie(req, name).unwrap_or(b""),
        HashKey::Path => req.uri.path().as_bytes(),
        HashKey::ClientIp => match client_ip {
            Some(IpAddr::V4(v4)) => {
                ip_buf[..4].copy_from_slice(&v4.octets());
                &ip_buf[..4]
            }
            Some(IpAddr::V6(v6)) => {
                *ip_buf = v6.octets();
                &ip_buf[..]
            }
            None => b"",
        },
    }
}

/// Bounds the peer's connect, read and write timeouts by what is left of the route's timeout.
pub fn bound_timeouts(peer: &mut HttpPeer, remaining: Option<std::time::Duration>) {
    if let Some(limit) = remaining {
        let o = &mut peer.options;
        for t in [&mut o.connection_timeout, &mut o.read_timeout, &mut o.write_timeout] {
            *t = Some(t.map_or(limit, |t| t.min(limit)));
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (the canary and hash keys'
/// one parser; filters parse credentials with their own).
fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers.get_all(header::COOKIE).iter().find_map(|v| {
        v.as_bytes().split(|b| *b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_hosts_drop_port_case_and_trailing_dot() {
        let host_of = |h: &str| {
            let mut req = RequestHeader::build("GET", b"/", None).expect("a request");
            req.insert_header(header::HOST, h).expect("a header");
            host(&req).map(Cow::into_owned)
        };
        assert_eq!(host_of("example.com:8080").as_deref(), Some("example.com"));
        assert_eq!(host_of("example.com").as_deref(), Some("example.com"));
        assert_eq!(host_of("API.Example.com.").as_deref(), Some("api.example.com"));
        assert_eq!(host_of("[::1]:80").as_deref(), Some("::1"));
    }

    #[test]
    fn weighted_pick_respects_weights() {
        let parts: Vec<(Arc<str>, u32)> = vec![("a".into(), 0), ("b".into(), 5)];
        for _ in 0..100 {
            assert_eq!(&*pick_weighted(&parts), "b");
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("a request");
        req.insert_header(header::COOKIE, "a=1; canary=yes;b=2").expect("a header");
        assert_eq!(cookie(&req, "canary"), Some(&b"yes"[..]));
        assert_eq!(cookie(&req, "b"), Some(&b"2"[..]));
        assert_eq!(cookie(&req, "c"), None);
    }
}
