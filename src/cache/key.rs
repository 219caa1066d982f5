//! Cache keys: the route's `key:` parts of a request, hashed by pingora-cache into the primary
//! key; `vary` and the origin's `Vary` go into the variance ([`super::policy::variance`]).
//!
//! The route's name comes first, so two routes never share an entry; each part is written with
//! a one-byte label and a separator, so `path=/a` + `query=b` cannot collide with `path=/a?b`.
//! `GET` and `HEAD` share the key: a `HEAD` is answered from the cached `GET`.

use super::purge::EntryTag;
use crate::config::{CachePolicy, KeyPart};
use http::header;
use pingora::cache::CacheKey;
use pingora::http::RequestHeader;
use std::sync::Arc;

/// The request's host as the key and purges see it: the `Host` header, else the URI's.
pub fn host(req: &RequestHeader) -> &str {
    req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host()).unwrap_or("")
}

/// The key of `req` on the route of `policy`; `consumer` is who an earlier filter found.
/// The entry's origin (route, host, path, query) rides along for purges.
pub fn build(policy: &CachePolicy, req: &RequestHeader, consumer: Option<&str>) -> CacheKey {
    let mut primary = Vec::with_capacity(128);
    primary.extend_from_slice(policy.route.as_bytes());
    let mut push = |label: u8, value: &[u8]| {
        primary.push(0);
        primary.push(label);
        primary.extend_from_slice(value);
    };
    for part in &policy.key {
        match part {
            KeyPart::Host => push(b'h', host(req).to_ascii_lowercase().as_bytes()),
            KeyPart::Path => push(b'p', req.uri.path().as_bytes()),
            KeyPart::Query => push(b'q', req.uri.query().unwrap_or("").as_bytes()),
            KeyPart::Header(name) => {
                let value = req.headers.get(name).map_or(&b""[..], |v| v.as_bytes());
                push(b'H', value);
            }
            KeyPart::Cookie(name) => push(b'c', cookie(req, name).unwrap_or("").as_bytes()),
            KeyPart::Consumer => push(b'u', consumer.unwrap_or("").as_bytes()),
        }
    }
    let mut key = CacheKey::new(primary, "");
    let path_and_query = req.uri.path_and_query().map_or("/", |p| p.as_str());
    key.extensions.insert(Arc::new(EntryTag::new(policy.route.clone(), host(req), path_and_query)));
    key
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
