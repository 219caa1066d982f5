//! `cache_store` (the one response cache of the process) and `routes[].cache` (a route's
//! policy): file structs, defaults, checks.
//!
//! ```yaml
//! cache_store: {max_size_mb: 256, max_object_mb: 8, lock_timeout_ms: 3000}
//! routes:
//!   - name: catalog
//!     cache: {ttl_s: 60, vary: [accept], key: [host, path, query], methods: [GET, HEAD],
//!             stale_while_revalidate_s: 30, stale_if_error_s: 300}
//! ```
//!
//! A route may ask for a cache only when the file has a `cache_store`; the error points at the
//! route's `cache:` line.

use super::header_name;
use crate::config::defaults;
use crate::config::model::{CachePolicy, CacheStoreSpec, KeyPart};
use crate::config::Errors;
use http::Method;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `cache_store:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheStoreFile {
    max_size_mb: Option<u64>,
    max_object_mb: Option<u64>,
    lock_timeout_ms: Option<u64>,
}

/// `routes[].cache:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    ttl_s: Option<u64>,
    #[serde(default)]
    vary: Vec<String>,
    key: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    stale_while_revalidate_s: Option<u64>,
    stale_if_error_s: Option<u64>,
}

const MB: u64 = 1024 * 1024;

/// The checked `cache_store`.
pub(super) fn store(file: Option<CacheStoreFile>, errors: &mut Errors<'_>) -> Option<CacheStoreSpec> {
    let f = file?;
    let size = f.max_size_mb.unwrap_or(defaults::CACHE_MAX_SIZE_MB);
    let object = f.max_object_mb.unwrap_or(defaults::CACHE_MAX_OBJECT_MB);
    let lock = f.lock_timeout_ms.unwrap_or(defaults::CACHE_LOCK_TIMEOUT_MS);
    if size == 0 || size > 1024 * 1024 {
        errors.at("cache_store.max_size_mb", "between 1 and 1048576 (1 TiB)");
    }
    if object == 0 || object > size {
        errors.at("cache_store.max_object_mb", "at least 1 and not more than max_size_mb");
    }
    if lock == 0 {
        errors.at("cache_store.lock_timeout_ms", "must be at least 1");
    }
    Some(CacheStoreSpec {
        max_size_bytes: (size.saturating_mul(MB)) as usize,
        max_object_bytes: (object.saturating_mul(MB)) as usize,
        lock_timeout: Duration::from_millis(lock.max(1)),
    })
}

/// A route's checked `cache:`; `has_store` says whether the file has a `cache_store`.
pub(super) fn policy(
    f: CacheFile,
    route: &str,
    at: &str,
    has_store: bool,
    errors: &mut Errors<'_>,
) -> Option<Arc<CachePolicy>> {
    if !has_store {
        errors.at(at, "a route's `cache` needs a top-level `cache_store` (e.g. `cache_store: {max_size_mb: 256}`)");
    }
    let vary =
        f.vary.iter().enumerate().filter_map(|(i, h)| header_name(h, format!("{at}.vary[{i}]"), errors)).collect();
    let key = match f.key {
        None => defaults::CACHE_KEY.to_vec(),
        Some(parts) => {
            if parts.is_empty() {
                errors.at(
                    format!("{at}.key"),
                    "name at least one part (host, path, query, header:NAME, cookie:NAME, consumer)",
                );
            }
            parts.iter().enumerate().filter_map(|(i, p)| key_part(p, &format!("{at}.key[{i}]"), errors)).collect()
        }
    };
    let methods = match f.methods {
        None => vec![Method::GET, Method::HEAD],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match m.to_ascii_uppercase().as_str() {
                "GET" => Some(Method::GET),
                "HEAD" => Some(Method::HEAD),
                _ => {
                    errors.at(format!("{at}.methods[{i}]"), format!("\"{m}\": only GET and HEAD are cached"));
                    None
                }
            })
            .collect(),
    };
    Some(Arc::new(CachePolicy {
        route: route.into(),
        ttl: Duration::from_secs(f.ttl_s.unwrap_or(defaults::CACHE_TTL_S)),
        vary,
        key,
        methods,
        stale_while_revalidate: Duration::from_secs(
            f.stale_while_revalidate_s.unwrap_or(defaults::CACHE_STALE_WHILE_REVALIDATE_S),
        ),
        stale_if_error: Duration::from_secs(f.stale_if_error_s.unwrap_or(defaults::CACHE_STALE_IF_ERROR_S)),
    }))
}

fn key_part(p: &str, at: &str, errors: &mut Errors<'_>) -> Option<KeyPart> {
    let part = match p {
        "host" => KeyPart::Host,
        "path" => KeyPart::Path,
        "query" => KeyPart::Query,
        "consumer" => KeyPart::Consumer,
        _ => match p.split_once(':') {
            Some(("header", name)) => KeyPart::Header(header_name(name, at, errors)?),
            Some(("cookie", name)) if !name.is_empty() => KeyPart::Cookie(name.to_string()),
            _ => {
                errors.at(at, format!("\"{p}\" is not one of host, path, query, header:NAME, cookie:NAME, consumer"));
                return None;
            }
        },
    };
    Some(part)
}

#[cfg(test)]
mod tests {
    use crate::config::{defaults as d, load_str, KeyPart};
    use http::Method;
    use std::path::Path;
    use std::time::Duration;

    const HEAD: &str =
        "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nupstreams: {u: {targets: [\"127.0.0.1:9\"]}}\n";

    fn errors(yaml: &str) -> String {
        match load_str(&format!("{HEAD}{yaml}"), Path::new("t.yaml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn what_a_cache_leaves_out_is_the_documented_default() {
        let c = load_str(
            &format!("{HEAD}cache_store: {{}}\nroutes: [{{name: r, upstream: u, cache: {{}}}}]\n"),
            Path::new("t.yaml"),
        )
        .expect("valid");
        let store = c.cache_store.expect("a store");
        assert_eq!(store.max_size_bytes, (d::CACHE_MAX_SIZE_MB << 20) as usize);
        assert_eq!(store.max_object_bytes, (d::CACHE_MAX_OBJECT_MB << 20) as usize);
        assert_eq!(store.lock_timeout, Duration::from_millis(d::CACHE_LOCK_TIMEOUT_MS));
        let p = c.routes[0].cache.as_ref().expect("a policy");
        assert_eq!((&*p.route, p.ttl), ("r", Duration::from_secs(d::CACHE_TTL_S)));
        assert_eq!((p.key.as_slice(), p.methods.as_slice()), (d::CACHE_KEY, &[Method::GET, Method::HEAD][..]));
        assert!(p.vary.is_empty() && p.stale_while_revalidate.is_zero() && p.stale_if_error.is_zero());
    }

    #[test]
    fn every_key_part_is_read() {
        let c = load_str(
            &format!("{HEAD}cache_store: {{}}\nroutes: [{{name: r, upstream: u, cache: {{key: [host, path, query, \"header:X-A\", \"cookie:sid\", consumer], vary: [Accept]}}}}]\n"),
            Path::new("t.yaml"),
        )
        .expect("valid");
        let p = c.routes[0].cache.as_ref().expect("a policy");
        let want = [
            KeyPart::Host,
            KeyPart::Path,
            KeyPart::Query,
            KeyPart::Header(http::HeaderName::from_static("x-a")),
            KeyPart::Cookie("sid".into()),
            KeyPart::Consumer,
        ];
        assert_eq!(p.key, want);
        assert_eq!(p.vary, [http::header::ACCEPT]);
    }

    #[test]
    fn mistakes_are_errors_with_their_place() {
        let cases = [
            ("routes: [{name: r, upstream: u, cache: {ttl_s: 5}}]", "t.yaml:3", "cache_store"),
            (
                "cache_store: {}\nroutes: [{name: r, upstream: u, cache: {key: [url]}}]",
                "routes[0].cache.key[0]",
                "\"url\"",
            ),
            (
                "cache_store: {}\nroutes: [{name: r, upstream: u, cache: {key: []}}]",
                "routes[0].cache.key",
                "at least one",
            ),
            (
                "cache_store: {}\nroutes: [{name: r, upstream: u, cache: {methods: [POST]}}]",
                "routes[0].cache.methods[0]",
                "GET and HEAD",
            ),
            (
                "cache_store: {}\nroutes: [{name: r, upstream: u, cache: {vary: [\"a b\"]}}]",
                "routes[0].cache.vary[0]",
                "header name",
            ),
            ("cache_store: {}\nroutes: [{name: r, upstream: u, cache: {ttl: 5}}]", "routes[0].cache", "ttl"),
            ("cache_store: {}\nroutes: [{name: r, respond: {}, cache: {}}]", "routes[0].cache", "respond"),
            ("cache_store: {max_size_mb: 0}", "cache_store.max_size_mb", "between 1"),
            ("cache_store: {max_size_mb: 4, max_object_mb: 8}", "cache_store.max_object_mb", "max_size_mb"),
            ("cache_store: {lock_timeout_ms: 0}", "cache_store.lock_timeout_ms", "at least 1"),
        ];
        for (yaml, at, says) in cases {
            let e = errors(yaml);
            assert!(e.contains(at) && e.contains(says), "{yaml}: {e}");
        }
    }
}
