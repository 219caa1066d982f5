//! The routing host: one spelling of the `Host` a request is for.
//!
//! Host matching compares strings, so `API.example.com`, `api.example.com.` and
//! `api.example.com:8080` must all be `api.example.com`, or a route guarded by host can be missed
//! (and a catch-all one hit) by spelling the name differently. [`canonical_host`] lowercases, drops
//! one trailing dot (the DNS root: `a.example.` is `a.example`), strips the port, and refuses what
//! is no host name: characters outside letters, digits, `-`, `_` and `.`, empty labels
//! (`a..example`, `.example`), a port that is not a number up to 65535, an IPv6 literal that does
//! not parse (IPvFuture and zone ids included). IPv6 literals keep their brackets and are written
//! in the RFC 5952 form (`[0:0::1]:80` is `[::1]`).
//!
//! [`request_host`] picks the source, in the order RFC 9112 3.2.2 gives: the authority of an
//! absolute-form target (`GET http://a.example/ HTTP/1.1`) wins over `Host`, which "MUST be
//! ignored" then; HTTP/2's `:authority` is in the same place (Pingora puts it in the URI) and wins
//! the same way (RFC 9113 8.3.1). Pingora 0.9.1 already refuses a request whose `Host` differs
//! from that authority, or that has two `Host` fields, so on its listeners the rule only decides
//! the source; it matters for headers built elsewhere (tests, `portico explain`). An HTTP/1.1 or
//! HTTP/2 request with neither gets [`HostError::Missing`] (RFC 9112 3.2: 400), an HTTP/1.0 one has
//! no host (`None`: only routes without a host match apply), as has an empty `Host` (RFC 9110 7.2:
//! a target without authority).

use http::{header, Version};
use pingora::http::authority::raw_target_authority;
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::io::Write;
use std::net::Ipv6Addr;

/// Why no routing host could be found: a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// HTTP/1.1 (or HTTP/2) with neither `Host` nor an authority in the target.
    Missing,
    /// More than one `Host` field: which one routes is anyone's guess.
    Duplicate,
    /// A character that has no place in a host name, or an empty label.
    InvalidName,
    /// The port is not a number up to 65535.
    InvalidPort,
    /// A `[...]` literal that is not an IPv6 address.
    InvalidIpLiteral,
}

impl HostError {
    /// The `error` code of the 400 body.
    pub fn as_str(&self) -> &'static str {
        match self {
            HostError::Missing => "missing_host",
            _ => "invalid_host",
        }
    }

    /// The `message` of the 400 body.
    pub fn message(&self) -> &'static str {
        match self {
            HostError::Missing => "an HTTP/1.1 request needs a Host header",
            HostError::Duplicate => "more than one Host header",
            HostError::InvalidName => "the Host is not a valid host name",
            HostError::InvalidPort => "the Host has an invalid port",
            HostError::InvalidIpLiteral => "the Host has an invalid IPv6 literal",
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HostError {}

/// Whether `b` may appear in a host name label. `_` is not DNS-valid for host names but is common
/// in internal service names (and harmless to a string match).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Checks `:port` (or an empty `rest`): RFC 3986 allows an empty port, which means the default.
fn check_port(rest: &[u8]) -> Result<Option<u16>, HostError> {
    let Some(digits) = rest.strip_prefix(b":") else {
        return if rest.is_empty() { Ok(None) } else { Err(HostError::InvalidName) };
    };
    if digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HostError::InvalidPort);
    }
    let port = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    if port > 65535 {
        return Err(HostError::InvalidPort);
    }
    // `host:` (an empty port) names none.
    Ok(u16::try_from(port).ok().filter(|_| !digits.is_empty()))
}

/// The port a `host[:port]` (a `Host` value or a URI authority) names, checked as
/// [`canonical_host`] checks it; `None` when it names none or is no host.
pub fn port_of(raw: &[u8]) -> Option<u16> {
    let rest = if raw.first() == Some(&b'[') {
        &raw[raw.iter().position(|&b| b == b']')? + 1..]
    } else {
        &raw[raw.iter().rposition(|&b| b == b':').unwrap_or(raw.len())..]
    };
    check_port(rest).ok().flatten()
}

/// The routing form of a `host[:port]` (a `Host` value or a URI authority), borrowed when it needs
/// no rewriting beyond dropping the port and the trailing dot (which are a suffix).
pub fn canonical_host(raw: &[u8]) -> Result<Cow<'_, str>, HostError> {
    if raw.first() == Some(&b'[') {
        return canonical_ip_literal(raw);
    }
    let (name, rest) = match raw.iter().rposition(|&b| b == b':') {
        Some(colon) => raw.split_at(colon),
        None => (raw, &b""[..]),
    };
    check_port(rest)?;
    let name = name.strip_suffix(b".").unwrap_or(name);
    // One pass: every label non-empty and made of name bytes; note whether any is upper case.
    let (mut label_len, mut upper) = (0usize, false);
    for &b in name {
        if b == b'.' {
            if label_len == 0 {
                return Err(HostError::InvalidName);
            }
            label_len = 0;
        } else if is_name_byte(b) {
            upper |= b.is_ascii_uppercase();
            label_len += 1;
        } else {
            return Err(HostError::InvalidName);
        }
    }
    if label_len == 0 {
        return Err(HostError::InvalidName);
    }
    // Only ASCII is left.
    let name = std::str::from_utf8(name).map_err(|_| HostError::InvalidName)?;
    Ok(if upper { Cow::Owned(name.to_ascii_lowercase()) } else { Cow::Borrowed(name) })
}

/// `[v6]` or `[v6]:port`, written as RFC 5952 gives (what `Ipv6Addr` displays), in brackets.
fn canonical_ip_literal(raw: &[u8]) -> Result<Cow<'_, str>, HostError> {
    let close = raw.iter().position(|&b| b == b']').ok_or(HostError::InvalidIpLiteral)?;
    let (literal, rest) = raw.split_at(close + 1);
    check_port(rest)?;
    let inner = std::str::from_utf8(&literal[1..close]).map_err(|_| HostError::InvalidIpLiteral)?;
    let addr: Ipv6Addr = inner.parse().map_err(|_| HostError::InvalidIpLiteral)?;
    // The canonical text, formatted on the stack (at most 39 + 2 bytes) to compare without allocating.
    let mut buf = [0u8; 48];
    let mut w = &mut buf[..];
    write!(w, "[{addr}]").map_err(|_| HostError::InvalidIpLiteral)?;
    let len = 48 - w.len();
    if &buf[..len] == literal {
        std::str::from_utf8(literal).map(Cow::Borrowed).map_err(|_| HostError::InvalidIpLiteral)
    } else {
        Ok(Cow::Owned(format!("[{addr}]")))
    }
}

/// The routing host from a `Host` value and the target's authority, by the rules of the module
/// documentation. `None`: the request has no host (HTTP/1.0 without `Host`, or an empty `Host`).
pub fn routing_host<'a>(
    host: Option<&'a [u8]>,
    authority: Option<&'a [u8]>,
    version: Version,
) -> Result<Option<Cow<'a, str>>, HostError> {
    match (authority, host) {
        // RFC 9112 3.2.2: the target's authority wins; `Host` is ignored.
        (Some(a), _) => canonical_host(a).map(Some),
        (None, Some([])) => Ok(None),
        (None, Some(h)) => canonical_host(h).map(Some),
        (None, None) if version == Version::HTTP_10 || version == Version::HTTP_09 => Ok(None),
        (None, None) => Err(HostError::Missing),
    }
}

/// [`routing_host`] of a request as Pingora parsed it: its `Host` field (refused when there are
/// several) and the target's authority. Pingora keeps an HTTP/1 absolute-form target verbatim
/// and puts only its path in the URI, so the authority is read from `raw_path` with Pingora's
/// own splitter; HTTP/2's `:authority` is in the URI.
pub fn request_host(req: &RequestHeader) -> Result<Option<Cow<'_, str>>, HostError> {
    let s = HostSources::of(req)?;
    routing_host(s.host, s.authority, req.version)
}

/// The port the request's routing host comes with ([`port_of`] of the same source
/// [`request_host`] reads: the target's authority, else `Host`).
pub fn request_port(req: &RequestHeader) -> Option<u16> {
    let s = HostSources::of(req).ok()?;
    port_of(s.authority.or(s.host)?)
}

/// Where a request names its host: its `Host` field (refused when there are several) and its
/// target's authority.
struct HostSources<'a> {
    host: Option<&'a [u8]>,
    authority: Option<&'a [u8]>,
}

impl<'a> HostSources<'a> {
    fn of(req: &'a RequestHeader) -> Result<HostSources<'a>, HostError> {
        let mut hosts = req.headers.get_all(header::HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(HostError::Duplicate);
        }
        let authority = match req.uri.authority() {
            Some(a) => Some(a.as_str().as_bytes()),
            None => raw_target_authority(req.raw_path()).authority(),
        };
        Ok(HostSources { host: host.map(|h| h.as_bytes()), authority })
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
