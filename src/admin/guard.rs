//! Who may use the admin API.
//!
//! 1. `Host` must name the admin address (for a loopback address also `localhost`,
//!    `127.0.0.1` or `[::1]` with its port): a web page on another name that a DNS rebinding
//!    attack points at the admin address gets 403, so a browser on the machine cannot be turned
//!    against it.
//! 2. A write (anything but GET and HEAD) that a browser sends from another origin gets 403: a
//!    page elsewhere cannot make the browser reload the config behind the operator's back.
//! 3. With `admin.token` set, every endpoint but the open ones (`/healthz`, `/ready`, the
//!    dashboard page, and `/metrics` with `metrics_public`) needs `Authorization: Bearer TOKEN`,
//!    compared in constant time; without it the answer is 401 with `WWW-Authenticate`.

use crate::config::AdminAccess;
use http::{HeaderMap, Method, StatusCode};
use std::net::{IpAddr, SocketAddr};

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` names something other than the admin address.
    Host(String),
    /// A write from another origin.
    Origin(String),
    /// No token, or the wrong one.
    Token,
}

impl Refusal {
    /// The status, the `error` code and the message of the JSON answer.
    pub fn answer(&self, admin: Option<SocketAddr>) -> (StatusCode, &'static str, String) {
        let addr = admin.map_or_else(|| "?".to_string(), |a| a.to_string());
        match self {
            Refusal::Host(h) => (
                StatusCode::FORBIDDEN,
                "forbidden_host",
                format!("Host \"{h}\" is not this admin API's address ({addr}); use that address"),
            ),
            Refusal::Origin(o) => {
                (StatusCode::FORBIDDEN, "forbidden_origin", format!("a page from {o} may not change anything here"))
            }
            Refusal::Token => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs the admin token: send `Authorization: Bearer TOKEN`".to_string(),
            ),
        }
    }
}

/// Checks a request against the admin address and access settings; `open` endpoints need no
/// token.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    admin: Option<SocketAddr>,
    access: &AdminAccess,
    open: bool,
) -> Result<(), Refusal> {
    let text =
        |name: http::header::HeaderName| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let (Some(host), Some(admin)) = (text(http::header::HOST), admin) {
        if !host_allowed(&host, admin, access.name.as_deref(), 80) {
            return Err(Refusal::Host(host));
        }
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        if let (Some(origin), Some(admin)) = (text(http::header::ORIGIN), admin) {
            let same = match origin.split_once("://") {
                Some(("http", authority)) => host_allowed(authority, admin, access.name.as_deref(), 80),
                Some(("https", authority)) => host_allowed(authority, admin, access.name.as_deref(), 443),
                _ => false,
            };
            if !same {
                return Err(Refusal::Origin(origin));
            }
        }
    }
    match &access.token {
        Some(token) if !open => match bearer(headers) {
            Some(presented) if token.matches(presented) => Ok(()),
            _ => Err(Refusal::Token),
        },
        _ => Ok(()),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii())
}

/// Whether `authority` (`host[:port]`) names the admin address.
///
/// The port must be the admin port. An IP address must be the admin address, or a loopback
/// address when the admin address is loopback, or any address when it listens on all of them (a
/// rebinding attack needs a DNS name, never an IP literal). A name must be `localhost` (for a
/// loopback or wildcard admin address) or the name `admin.listen` was written with.
pub fn host_allowed(authority: &str, admin: SocketAddr, name: Option<&str>, default_port: u16) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, "")) => (ip, None),
            Some((ip, after)) => match after.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None => return false,
            },
            None => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => return false,
        },
    };
    if port != admin.port() {
        return false;
    }
    let ip = admin.ip();
    match host.parse::<IpAddr>() {
        Ok(asked) => ip.is_unspecified() || asked == ip || (ip.is_loopback() && asked.is_loopback()),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            (host == "localhost" && (ip.is_loopback() || ip.is_unspecified())) || name == Some(host.as_str())
        }
    }
}
