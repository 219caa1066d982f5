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
