//! RFC 9111 as a shared cache applies it, on pingora-cache's parts: whether a response may be
//! stored and for how long, what it varies on, and whether a stale entry may be served.
//!
//! pingora-cache's [`CacheControl`] and `filters` read the directives (`max-age`, `s-maxage`,
//! `no-store`, `no-cache`, `private`, `public`, `must-revalidate`, `Expires`, `Authorization`);
//! Portico adds what a gateway's shared cache needs beyond them:
//! - `ttl_s` applies, as nginx's `proxy_cache_valid` does, only to 200, 203, 301 and 302
//!   responses without freshness of their own;
//! - a response with `Set-Cookie` is not stored (one client's session would go to the next)
//!   unless `private="set-cookie"` or `no-cache="set-cookie"` says to store it without that
//!   header; `Vary: *` and `206` are never stored;
//! - a client's own `Cache-Control` (`no-cache`, `max-age=0`) does not bypass the cache, as in
//!   nginx: an origin change is made visible by a purge, not by any client asking;
//! - `stale_while_revalidate_s` and `stale_if_error_s` are the windows when the origin names
//!   none (`must-revalidate`, `proxy-revalidate` and `s-maxage` close them).

use crate::config::CachePolicy;
use http::{header, StatusCode};
use pingora::cache::cache_control::{CacheControl, Cacheable, InterpretCacheControl};
use pingora::cache::filters::{calculate_fresh_until, calculate_serve_stale_durations};
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheMeta, CacheMetaDefaults, NoCacheReason, RespCacheable, VarianceBuilder};
use pingora::http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

/// Why a response was not stored (the cache's log and trace name it).
const SET_COOKIE: NoCacheReason = NoCacheReason::Custom("set-cookie");
const VARY_STAR: NoCacheReason = NoCacheReason::Custom("vary-star");
const PARTIAL: NoCacheReason = NoCacheReason::Custom("partial-content");

/// Freshness from the response alone; the route's `ttl_s` is applied after.
fn no_default_ttl(_: StatusCode) -> Option<Duration> {
    None
}

/// Whether `resp` (to `req`) may be stored under `policy`, and its metadata when it may.
pub fn response_cacheable(policy: &CachePolicy, req: &RequestHeader, resp: &ResponseHeader) -> RespCacheable {
    if resp.status == StatusCode::PARTIAL_CONTENT {
        return RespCacheable::Uncacheable(PARTIAL);
    }
    if vary_names(resp).any(|name| name == "*") {
        return RespCacheable::Uncacheable(VARY_STAR);
    }
    let cc = CacheControl::from_resp_headers(resp);
    if resp.headers.contains_key(header::SET_COOKIE) && !cc.as_ref().is_some_and(strips_set_cookie) {
        return RespCacheable::Uncacheable(SET_COOKIE);
    }
    let authorized = req.headers.contains_key(header::AUTHORIZATION);
    let defaults =
        CacheMetaDefaults::new(no_default_ttl, secs(policy.stale_while_revalidate), secs(policy.stale_if_error));
    let now = SystemTime::now();
    let fresh_until = match calculate_fresh_until(now, cc.as_ref(), resp, authorized, &defaults) {
        Some(t) => t,
        None => {
            // Refused outright (no-store, private, Authorization without public/s-maxage)?
            let refused = (authorized && cc.as_ref().is_none_or(|c| !c.allow_caching_authorized_req()))
                || cc.as_ref().is_some_and(|c| c.is_cacheable() == Cacheable::No);
            let default_ttl = matches!(resp.status.as_u16(), 200 | 203 | 301 | 302);
            if refused || !default_ttl {
                return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
            }
            now + policy.ttl
        }
    };
    let (swr, sie) = calculate_serve_stale_durations(cc.as_ref(), &defaults);
    let mut header = resp.clone();
    if let Some(cc) = &cc {
        cc.strip_private_headers(&mut header);
    }
    RespCacheable::Cacheable(CacheMeta::new(fresh_until, now, swr, sie, header))
}

/// Whether `private="set-cookie"` or `no-cache="set-cookie"` asks to store the response
/// without its `Set-Cookie` (which `strip_private_headers` then removes).
fn strips_set_cookie(cc: &CacheControl) -> bool {
    let names = cc.private_field_names().into_iter().flatten().chain(cc.no_cache_field_names().into_iter().flatten());
    names.into_iter().any(|n| n.eq_ignore_ascii_case(b"set-cookie"))
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The names in a response's `Vary`, lowercase.
fn vary_names(resp: &ResponseHeader) -> impl Iterator<Item = String> + '_ {
    resp.headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// The variance of `req` against a stored response `meta`: the route's `vary` headers and the
/// origin's `Vary`, with the request's values. `None` when the entry varies on nothing.
pub fn variance(policy: &CachePolicy, meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
    let mut names: Vec<String> = policy.vary.iter().map(|h| h.as_str().to_string()).collect();
    for name in vary_names(meta.response_header()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let mut v = VarianceBuilder::new();
    for name in names {
        let value: Vec<u8> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .flat_map(|h| h.as_bytes().iter().copied().chain(std::iter::once(b',')))
            .collect();
        v.add_owned_name_value(name, value);
    }
    v.finalize()
}
