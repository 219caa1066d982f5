//! Purges: what `POST /cache/purge` asks for, and which stored entries that selects.
//!
//! ```json
//! {"host": "api.example.com", "path": "/products/1"}   one URL: every variant, every query
//! {"path": "/products/1?lang=en"}                      one URL with its query, on any host
//! {"prefix": "/products/", "host": "api.example.com"}  every URL under a path (host optional)
//! {"route": "catalog"}                                 everything one route stored
//! ```
//!
//! Entries are selected by where they came from ([`EntryTag`], recorded when they are stored),
//! not by their key, so a purge works whatever a route's `key:` and `vary:` hold.

use serde::Deserialize;
use std::sync::Arc;

/// Where a stored entry came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EntryTag {
    /// The route that stored it.
    pub route: Arc<str>,
    /// The request's host, lowercase, without a port.
    pub host: Box<str>,
    /// The request's path, without the query.
    pub path: Box<str>,
    /// The request's query, without the `?` (empty when none).
    pub query: Box<str>,
}

/// A purge's host as the store compares it: the routing host, as [`super::key::host`] recorded
/// it (lower case, no port, no trailing dot); a value that is no host name is compared as typed,
/// in lower case, and so matches nothing.
fn normal_host(host: &str) -> String {
    crate::canonical::canonical_host(host.as_bytes()).map_or_else(|_| host.to_ascii_lowercase(), |h| h.into_owned())
}

/// What one purge removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeRequest {
    /// One URL (`path`, with or without a query), on one host or any.
    Url {
        /// The host, normalized; `None` for any.
        host: Option<String>,
        /// The path.
        path: String,
        /// The query when the request named one; `None` for any.
        query: Option<String>,
    },
    /// Every path that starts with `prefix`, on one host or any.
    Prefix {
        /// The host, normalized; `None` for any.
        host: Option<String>,
        /// The path prefix.
        prefix: String,
    },
    /// Everything one route stored.
    Route(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    host: Option<String>,
    path: Option<String>,
    prefix: Option<String>,
    route: Option<String>,
}

impl PurgeRequest {
    /// Reads a JSON purge body; the error says what is wrong, for a 400.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let b: Body = serde_json::from_slice(body).map_err(|e| format!("expected {USAGE}: {e}"))?;
        let host = b.host.as_deref().map(normal_host);
        match (b.path, b.prefix, b.route) {
            (Some(p), None, None) if p.starts_with('/') => {
                let (path, query) = match p.split_once('?') {
                    Some((path, query)) => (path.to_string(), Some(query.to_string())),
                    None => (p, None),
                };
                Ok(PurgeRequest::Url { host, path, query })
            }
            (None, Some(prefix), None) if prefix.starts_with('/') => Ok(PurgeRequest::Prefix { host, prefix }),
            (None, None, Some(route)) if host.is_none() && !route.is_empty() => Ok(PurgeRequest::Route(route)),
            (Some(_), None, None) | (None, Some(_), None) => Err("a path or prefix starts with /".into()),
            (None, None, Some(_)) => Err("`route` takes no `host`, and names a route".into()),
            _ => Err(format!("expected exactly one of `path`, `prefix`, `route`: {USAGE}")),
        }
    }

    /// Whether the entry `tag` describes is one this purge removes.
    pub fn matches(&self, tag: &EntryTag) -> bool {
        let host_ok = |host: &Option<String>| host.as_deref().is_none_or(|h| *tag.host == *h);
        match self {
            PurgeRequest::Url { host, path, query } => {
                host_ok(host) && *tag.path == **path && query.as_deref().is_none_or(|q| *tag.query == *q)
            }
            PurgeRequest::Prefix { host, prefix } => host_ok(host) && tag.path.starts_with(prefix.as_str()),
            PurgeRequest::Route(route) => *tag.route == **route,
        }
    }
}

const USAGE: &str =
    r#"{"host": "...", "path": "/x"}, {"prefix": "/x/", "host": "..."} (host optional) or {"route": "name"}"#;
