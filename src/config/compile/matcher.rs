//! `routes[].match`: host, path, methods, headers and query a request must have.

use super::header_name;
use crate::config::file::{MatchFile, OneOrMany};
use crate::config::model::{HostPattern, MatchSpec, PathPattern};
use crate::config::Errors;
use http::Method;

/// Every rule of one `match`; a bad rule is an error and matches anything meanwhile.
pub(super) fn matcher(m: MatchFile, at: &str, errors: &mut Errors<'_>) -> MatchSpec {
    let hosts = m
        .host
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => HostPattern::Suffix(suffix.to_string()),
                _ => HostPattern::Exact(h),
            }
        })
        .collect();
    let path = match (m.path, m.path_exact, m.path_regex) {
        (None, None, None) => PathPattern::Any,
        (Some(p), None, None) => {
            if !p.starts_with('/') {
                errors.at(format!("{at}.path"), "a path starts with /");
            }
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                PathPattern::Any
            } else {
                PathPattern::Prefix(p.to_string())
            }
        }
        (None, Some(p), None) => {
            if !p.starts_with('/') {
                errors.at(format!("{at}.path_exact"), "a path starts with /");
            }
            PathPattern::Exact(p)
        }
        (None, None, Some(r)) => match regex::Regex::new(&r) {
            Ok(re) => PathPattern::Regex(re),
            Err(e) => {
                errors.at(format!("{at}.path_regex"), format!("invalid regex: {e}"));
                PathPattern::Any
            }
        },
        _ => {
            errors.at(at.to_string(), "use one of `path`, `path_exact`, `path_regex`");
            PathPattern::Any
        }
    };
    let methods = m.methods.map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(i, s)| match Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    errors.at(format!("{at}.methods[{i}]"), format!("\"{s}\" is not an HTTP method"));
                    None
                }
            })
            .collect()
    });
    let headers = m
        .headers
        .into_iter()
        .filter_map(|(k, v)| header_name(&k, format!("{at}.headers.{k}"), errors).map(|h| (h, v)))
        .collect();
    MatchSpec { hosts, path, methods, headers, query: m.query.into_iter().collect() }
}
