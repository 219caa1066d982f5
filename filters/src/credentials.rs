//! Helpers shared by the authentication filters (`api_key`, `basic_auth`, `jwt`): digests of
//! secrets, a bounded cache of verified credentials, and reading credentials from the query
//! string and cookies.

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::RwLock;

/// SHA-256 of a secret: the key of every lookup table and cache here, so no table holds a
/// secret itself and lookups take the same path whatever the secret is.
pub(crate) fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Compares two secrets in time that depends on their lengths only.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

const SHARDS: usize = 16;

/// A bounded map from the digest of a credential to what verifying it found, so a slow check
/// (bcrypt, a signature) runs once per credential rather than once per request.
///
/// It is split into shards, each behind its own lock that is held only for one lookup or insert
/// (never across an `.await`); a full shard is cleared, which is cheap and keeps memory bounded
/// without bookkeeping on the hot path.
pub(crate) struct VerifiedCache<V> {
    shards: Vec<RwLock<HashMap<[u8; 32], V>>>,
    per_shard: usize,
}

impl<V: Clone> VerifiedCache<V> {
    /// A cache holding about `capacity` entries in all.
    pub(crate) fn new(capacity: usize) -> Self {
        VerifiedCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8; 32]) -> &RwLock<HashMap<[u8; 32], V>> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The value stored for `key`, if any.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<V> {
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        shard.get(key).cloned()
    }

    /// Stores `value` for `key`, first clearing the shard if it is full.
    pub(crate) fn insert(&self, key: [u8; 32], value: V) {
        let mut shard = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.clear();
        }
        shard.insert(key, value);
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &[u8; 32]) {
        let mut shard = self.shard(key).write().unwrap_or_else(|e| e.into_inner());
        shard.remove(key);
    }

    /// How many entries are stored (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().map(|s| s.len()).unwrap_or(0)).sum()
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as it is. `+` stays `+`: credentials are
/// never meant to contain spaces, and keys and tokens often contain `+`. The core decodes query
/// parameter names with it too, so the access log's redaction reads a name exactly as the filter
/// that takes the credential from it does.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The first value of query parameter `name` (percent-decoded) in `query` (the part after `?`).
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    raw_query_param(query, name).map(percent_decode)
}

/// The first value of the query parameter whose percent-decoded name is `name`, as the client
/// wrote it (still percent-encoded): for readers that decode it their own way, such as a form
/// value where `+` is a space. `query` is the part after `?`.
pub fn raw_query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then_some(v)
    })
}

/// `query` without any `name` parameter, keeping the others in order; `None` when nothing is
/// left.
pub(crate) fn query_without(query: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && percent_decode(k) != name
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// `path_and_query` with the query parameter `name` removed; `None` when it had none.
pub(crate) fn uri_without_param(path_and_query: &str, name: &str) -> Option<String> {
    let (path, query) = path_and_query.split_once('?')?;
    query_param(query, name)?;
    Some(match query_without(query, name) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    })
}

/// The value of cookie `name` in one `Cookie` header value.
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn cache_is_bounded() {
        let cache = VerifiedCache::new(32);
        for i in 0..1000u32 {
            cache.insert(digest(&i.to_be_bytes()), i);
        }
        assert!(cache.len() <= 32, "{} entries", cache.len());
        let k = digest(b"x");
        cache.insert(k, 7);
        assert_eq!(cache.get(&k), Some(7));
        cache.remove(&k);
        assert_eq!(cache.get(&k), None);
    }

    #[test]
    fn query_helpers() {
        assert_eq!(query_param("a=1&api_key=s%2Fx&b=2", "api_key").as_deref(), Some("s/x"));
        assert_eq!(query_param("a=1", "api_key"), None);
        assert_eq!(query_param("flag&k=v", "flag").as_deref(), Some(""));
        assert_eq!(query_without("a=1&api_key=s&b=2", "api_key").as_deref(), Some("a=1&b=2"));
        assert_eq!(query_without("api_key=s", "api_key"), None);
        assert_eq!(uri_without_param("/p?a=1&api_key=s", "api_key").as_deref(), Some("/p?a=1"));
        assert_eq!(uri_without_param("/p?api_key=s&api_key=t", "api_key").as_deref(), Some("/p"));
        assert_eq!(uri_without_param("/p?a=1", "api_key"), None);
        assert_eq!(uri_without_param("/p", "api_key"), None);
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a+b"), "a+b");
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie("a=1; token=abc.def; b=2", "token"), Some("abc.def"));
        assert_eq!(cookie("a=1;token=\"q\"", "token"), Some("q"));
        assert_eq!(cookie("a=1", "token"), None);
    }
}
