//! Cache keys: the route's `key:` parts of a request, hashed into the primary key; `vary` and
//! the origin's `Vary` go into the variance ([`super::policy::variance`]).
//!
//! The route's name comes first, so two routes never share an entry; each part is written with
//! a one-byte label and a separator, so `path=/a` + `query=b` cannot collide with `path=/a?b`.
//! `GET` and `HEAD` share the key: a `HEAD` is answered from the cached `GET`.
//!
//! The key's hash is set directly ([`CacheKey::set_primary_bin_override`]); its primary bytes
//! hold where the request went instead (route, host, path and query, [`tag`]), which the store
//! records with an entry for purges: a lookup builds two small buffers and nothing else.

use super::purge::EntryTag;
use crate::config::{CachePolicy, KeyPart};
use http::header;
use pingora::cache::key::hash_key;
use pingora::cache::CacheKey;
use pingora::http::RequestHeader;
use std::borrow::Cow;

/// The request's host as the key and purges see it: the routing host
/// ([`crate::canonical::request_host`]: lower case, no port, no trailing dot), so every
/// spelling routing treats as one host is one cache entry and one purge target. Empty when the
/// request has none.
pub fn host(req: &RequestHeader) -> Cow<'_, str> {
    crate::canonical::request_host(req).ok().flatten().unwrap_or(Cow::Borrowed(""))
}

/// The key of `req` on the route of `policy`; `consumer` is who an earlier filter found.
pub fn build(policy: &CachePolicy, req: &RequestHeader, consumer: Option<&str>) -> CacheKey {
    let host = host(req);
    let mut hashed = Vec::with_capacity(128);
    hashed.extend_from_slice(policy.route.as_bytes());
    fn push(hashed: &mut Vec<u8>, label: u8, value: &[u8]) {
        hashed.push(0);
        hashed.push(label);
        hashed.extend_from_slice(value);
    }
    for part in &policy.key {
        match part {
            KeyPart::Host => {
                push(&mut hashed, b'h', host.as_bytes());
                // The port is keyed though not part of the purge target: the origin sees it and
                // may answer with it (absolute links), and a port left out of the key is a known
                // lever for poisoning a shared cache.
                if let Some(port) = crate::canonical::request_port(req) {
                    hashed.push(b':');
                    hashed.extend_from_slice(&port.to_be_bytes());
                }
            }
            KeyPart::Path => push(&mut hashed, b'p', req.uri.path().as_bytes()),
            KeyPart::Query => push(&mut hashed, b'q', req.uri.query().unwrap_or("").as_bytes()),
            KeyPart::Header(name) => push(&mut hashed, b'H', req.headers.get(name).map_or(&b""[..], |v| v.as_bytes())),
            KeyPart::Cookie(name) => push(&mut hashed, b'c', cookie(req, name).unwrap_or("").as_bytes()),
            KeyPart::Consumer => push(&mut hashed, b'u', consumer.unwrap_or("").as_bytes()),
        }
    }
    let path_and_query = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut origin = Vec::with_capacity(policy.route.len() + path_and_query.len() + 32);
    origin.extend_from_slice(policy.route.as_bytes());
    origin.push(0);
    origin.extend_from_slice(host.as_bytes());
    origin.push(0);
    origin.extend_from_slice(path_and_query.as_bytes());
    let mut key = CacheKey::new(origin, "");
    key.set_primary_bin_override(hash_key(&hashed));
    key
}

/// Where the request of `key` went, from the primary bytes [`build`] put there.
pub fn tag(key: &CacheKey) -> EntryTag {
    let mut fields = key.primary_key().splitn(3, |b| *b == 0);
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (route, host, path_and_query) = (next(), next(), next());
    let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
    EntryTag { route: route.into(), host: host.into(), path: path.into(), query: query.into() }
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
