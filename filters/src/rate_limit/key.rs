//! What requests count together: the `key` setting, and the key it gives each request, built on
//! the stack.

use crate::{RequestCtx, RequestHeader};
use http::HeaderName;
use serde::{Deserialize, Deserializer};
use std::fmt::{self, Write};
use std::net::IpAddr;

/// Longest key kept; longer keys are cut.
pub(super) const KEY_MAX: usize = 256;

/// What requests are counted together: the `key` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// `client_ip`: the downstream client's address.
    ClientIp,
    /// `consumer`: the authenticated consumer's name, else the verified identity; anonymous
    /// requests fall back to the client's address.
    Consumer,
    /// `route`: the matched route, one budget shared by every caller.
    Route,
    /// `header:NAME`: the value of a request header; requests without it fall back to the
    /// client's address.
    Header(HeaderName),
}

impl std::str::FromStr for KeyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client_ip" => Ok(KeyKind::ClientIp),
            "consumer" => Ok(KeyKind::Consumer),
            "route" => Ok(KeyKind::Route),
            _ => match s.strip_prefix("header:") {
                Some(name) => HeaderName::from_bytes(name.as_bytes())
                    .map(KeyKind::Header)
                    .map_err(|_| format!("\"{name}\" is not a header name")),
                None => Err(format!("unknown key \"{s}\": expected client_ip, consumer, route or header:NAME")),
            },
        }
    }
}

impl<'de> Deserialize<'de> for KeyKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::ClientIp => f.write_str("client_ip"),
            KeyKind::Consumer => f.write_str("consumer"),
            KeyKind::Route => f.write_str("route"),
            KeyKind::Header(name) => write!(f, "header:{name}"),
        }
    }
}

impl KeyKind {
    /// Writes the request's key (`ip:..`, `c:..`, `r:..`, `h:..`) into `out`; a client address
    /// is an IPv4 address, or the IPv6 network of `v6_prefix` bits it belongs to.
    pub(super) fn write_key(&self, out: &mut KeyBuf, request: &RequestHeader, ctx: &RequestCtx, v6_prefix: u8) {
        // Writing to a KeyBuf cannot fail: it cuts what does not fit.
        let _ = match self {
            KeyKind::Route => write!(out, "r:{}", ctx.route),
            KeyKind::Consumer => match ctx.caller() {
                Some(name) => write!(out, "c:{name}"),
                None => write_ip(out, ctx.client_ip, v6_prefix),
            },
            KeyKind::Header(name) => match request.headers.get(name).and_then(|v| v.to_str().ok()) {
                Some(value) => write!(out, "h:{value}"),
                None => write_ip(out, ctx.client_ip, v6_prefix),
            },
            KeyKind::ClientIp => write_ip(out, ctx.client_ip, v6_prefix),
        };
    }
}

/// The default `ipv6_prefix`: one IPv6 client is usually a /64 (a home or a cloud VM gets a
/// whole /64 and may send from any of its 2^64 addresses), so keying by /128 would hand each
/// client an unbounded number of budgets. The core's `max_connections_per_ip` counts by the
/// same default.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The address one client counts as: an IPv4 address (also IPv4-mapped IPv6) as itself, an IPv6
/// address as its network of `v6_prefix` bits (the host bits zeroed; 128 or more: the address).
/// One rule for every per-client budget: `rate_limit`'s keys and the listener's
/// `max_connections_per_ip`, so an IPv6 client cannot walk around either by changing addresses
/// inside its /64.
pub fn client_network(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6_prefix >= 128 => ip,
            None => {
                let mask = u128::MAX.checked_shl(128 - u32::from(v6_prefix)).unwrap_or(0);
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
        v4 => v4,
    }
}

/// Writes `ip:ADDRESS` for a client address: IPv4 (and IPv4-mapped IPv6) per address, IPv6 as
/// its network of `v6_prefix` bits (`ip:2001:db8:1:2::/64`; a prefix of 128 or more writes the
/// bare address); `ip:unknown` when there is none.
pub(crate) fn write_ip(out: &mut impl Write, ip: Option<IpAddr>, v6_prefix: u8) -> fmt::Result {
    match ip.map(|ip| client_network(ip, v6_prefix)) {
        Some(IpAddr::V4(v4)) => write!(out, "ip:{v4}"),
        Some(v6) if v6_prefix >= 128 => write!(out, "ip:{v6}"),
        Some(net) => write!(out, "ip:{net}/{v6_prefix}"),
        None => out.write_str("ip:unknown"),
    }
}

/// A key built on the stack: up to [`KEY_MAX`] bytes, cut at a character boundary.
pub(crate) struct KeyBuf {
    bytes: [u8; KEY_MAX],
    len: usize,
}

impl KeyBuf {
    pub(crate) fn new() -> Self {
        KeyBuf { bytes: [0; KEY_MAX], len: 0 }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this never falls back.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut n = s.len().min(KEY_MAX - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
