//! The first thing `request_filter` does (issue 12): one reading of the request for everything
//! after it. The checks are `crate::canonical`'s, applied in the order its "Wiring" section gives:
//! framing and header limits, the routing host, the canonical path (unless the listener says
//! `path_normalization: off`), then, on edge listeners, the identity headers a client could forge.
//!
//! Afterwards `req.uri` holds the canonical path (routing, filters, ACLs, `rewrite` and the
//! upstream all read it), and a request that had no `Host` carries the absolute-form authority
//! in one, so the upstream gets the host the client asked for, not one Pingora rebuilds from
//! the target.

use super::errors::Answer;
use crate::canonical::path::strip_absolute_form;
use crate::canonical::{canonical_target_bytes, check_framing, request_host, strip_forgeable, HeaderLimits};
use crate::config::{ListenerSpec, PathNormalization, Role};
use http::{header, HeaderName, HeaderValue};
use pingora::http::authority::raw_target_authority;
use pingora::proxy::Session;
use std::borrow::Cow;

/// Checks and rewrites the request in place; the refusal to answer when it cannot go on.
/// `identity` are the config's declared identity headers (`Runtime::identity_headers`).
///
/// Returns the routing host ([`super::select::routing_form`]; `None`: the request has none),
/// read here once for routing instead of once more there.
pub fn canonicalize(
    session: &mut Session,
    listener: Option<&ListenerSpec>,
    identity: &[HeaderName],
) -> Result<Option<Box<str>>, Answer<'static>> {
    // 1. Framing and header limits, on the raw HTTP/1 header block too (a `Content-Length`
    //    Pingora removed beside `Transfer-Encoding`, bare LF line ends).
    let limits = listener.map_or_else(HeaderLimits::default, |l| HeaderLimits {
        max_headers: l.limits.max_headers,
        max_header_bytes: l.limits.max_header_bytes,
    });
    let raw = session.as_downstream().as_http1().map(|h| h.get_headers_raw_bytes());
    check_framing(session.req_header(), raw.as_deref(), &limits).map_err(Answer::BadFraming)?;

    // 2. The routing host; an absolute-form request without `Host` gets its authority as `Host`.
    let req = session.req_header_mut();
    let host = request_host(req).map_err(Answer::BadHost)?.map(|h| Box::<str>::from(&*super::select::routing_form(h)));
    if !req.headers.contains_key(header::HOST) {
        let authority = match req.uri.authority() {
            Some(a) => Some(a.as_str().as_bytes().to_vec()),
            None => raw_target_authority(req.raw_path()).authority().map(<[u8]>::to_vec),
        };
        if let Some(v) = authority.and_then(|a| HeaderValue::from_bytes(&a).ok()) {
            req.insert_header(header::HOST, v).map_err(|_| Answer::Internal)?;
        }
    }

    // 3. The canonical path, written back so every later reader sees it.
    if listener.is_none_or(|l| l.path_normalization == PathNormalization::Strict) {
        let raw = req.raw_path();
        let target = strip_absolute_form(raw);
        let absolute = target.len() != raw.len();
        match canonical_target_bytes(target).map_err(Answer::BadPath)? {
            Cow::Owned(new) => req.set_raw_path(&new).map_err(|_| Answer::Internal)?,
            Cow::Borrowed(same) if absolute => {
                let same = same.to_vec();
                req.set_raw_path(&same).map_err(|_| Answer::Internal)?
            }
            Cow::Borrowed(_) => {}
        }
    }

    // 4. Edge listeners: no identity header from the client reaches a filter or the upstream.
    if listener.is_none_or(|l| l.role == Role::Edge) {
        strip_forgeable(req, identity);
    }
    Ok(host)
}
