//! Headers a client could forge to claim an identity, an address or a route it does not have.
//!
//! Upstreams behind a gateway trust what the gateway forwards: the client address in
//! `X-Real-IP`, the certificate in `X-Forwarded-Client-Cert`, the "real" URL in `X-Original-URL`,
//! the user that an auth proxy put in `X-Forwarded-User`. On an edge listener every one of them
//! comes from the client, so [`strip_forgeable`] removes them before any filter runs; what Portico
//! itself knows (the client address, the proto, the certificate, the JWT claims) it sets
//! afterwards. Internal listeners keep them: their peers are trusted.
//!
//! Portico's own `X-Forwarded-For`, `-Proto` and `-Host` are in the table too: they are replaced
//! on the edge anyway, and removing them first means no filter ever reads the client's value.

use http::HeaderName;
use pingora::http::RequestHeader;

/// One forgeable header and why it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgeable {
    /// The header name, lower case.
    pub name: &'static str,
    /// What an upstream trusts it for.
    pub reason: &'static str,
}

/// Shorthand for the table.
const fn f(name: &'static str, reason: &'static str) -> Forgeable {
    Forgeable { name, reason }
}

/// Every forgeable header, sorted by name (looked up by binary search; a test keeps it sorted).
pub static FORGEABLE: [Forgeable; 51] = TABLE;

/// For each first byte, a bit per name length (mod 64) found in the table: most of a request's
/// fields (`host`, `accept`, `user-agent`, ...) are ruled out by one load and a mask, without
/// the binary search. Built at compile time from [`TABLE`].
static PREFILTER: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < TABLE.len() {
        let name = TABLE[i].name.as_bytes();
        t[name[0] as usize] |= 1 << (name.len() % 64);
        i += 1;
    }
    t
};

/// The table behind [`FORGEABLE`] and [`PREFILTER`].
const TABLE: [Forgeable; 51] = [
    f("cf-connecting-ip", "Cloudflare's client address, trusted by apps that expect to sit behind it"),
    f("client-ip", "a client address header some frameworks read"),
    f("fastly-client-ip", "Fastly's client address"),
    f("forwarded", "RFC 7239 for=/proto=/host=: client address, scheme and host"),
    f("front-end-https", "Microsoft's 'on' that claims the client used TLS"),
    f("remote-user", "the authenticated user, as CGI-style auth proxies pass it"),
    f("ssl-client-cert", "the client certificate, as Apache's mod_ssl forwards it"),
    f("true-client-ip", "Akamai's and Cloudflare's client address"),
    f("x-anonymous-consumer", "Kong's flag that no consumer authenticated"),
    f("x-auth-request-email", "the user's e-mail, as oauth2-proxy sets it for auth_request"),
    f("x-auth-request-groups", "the user's groups, as oauth2-proxy sets it for auth_request"),
    f("x-auth-request-user", "the user, as oauth2-proxy sets it for auth_request"),
    f("x-authenticated-scope", "Kong's OAuth2 scopes of the caller"),
    f("x-authenticated-userid", "Kong's OAuth2 user id of the caller"),
    f("x-client-cert", "the client certificate (Azure, GCP load balancers)"),
    f("x-client-ip", "a client address header some frameworks read"),
    f("x-client-verify", "whether the client certificate verified"),
    f("x-cluster-client-ip", "Rackspace and Riverbed balancers' client address"),
    f("x-consumer-custom-id", "Kong's consumer custom id"),
    f("x-consumer-groups", "Kong's consumer groups"),
    f("x-consumer-id", "Kong's consumer id"),
    f("x-consumer-username", "Kong's consumer name"),
    f("x-credential-identifier", "Kong's credential that authenticated the caller"),
    f("x-envoy-external-address", "Envoy's trusted client address"),
    f("x-envoy-internal", "Envoy's flag that the request came from inside the mesh"),
    f("x-envoy-original-path", "Envoy's path before a rewrite"),
    f("x-forwarded-client-cert", "Envoy's (XFCC) client certificate identity; Portico's mTLS header"),
    f("x-forwarded-email", "oauth2-proxy's e-mail of the user"),
    f("x-forwarded-for", "the client address chain; Portico sets it from the socket"),
    f("x-forwarded-groups", "oauth2-proxy's groups of the user"),
    f("x-forwarded-host", "the host the client asked for; Portico sets it from Host"),
    f("x-forwarded-port", "the port the client connected to: redirects and URL building trust it"),
    f("x-forwarded-preferred-username", "oauth2-proxy's user name"),
    f("x-forwarded-prefix", "a path prefix that Spring, ASP.NET and others route and build URLs with"),
    f("x-forwarded-proto", "the scheme the client used; Portico sets it from the listener"),
    f("x-forwarded-scheme", "the scheme the client used (nginx, Rails)"),
    f("x-forwarded-server", "the proxy's host name"),
    f("x-forwarded-ssl", "'on' claims the client used TLS (Rack, Rails)"),
    f("x-forwarded-user", "oauth2-proxy's and Apache's authenticated user"),
    f("x-host", "a host override some frameworks honour"),
    f("x-http-method", "a method override: a POST that the app runs as DELETE past a method ACL"),
    f("x-http-method-override", "a method override (Google, Rails, Express)"),
    f("x-method-override", "a method override"),
    f("x-original-forwarded-for", "nginx ingress' copy of the client's X-Forwarded-For"),
    f("x-original-uri", "the URI before rewriting, as nginx auth_request passes it"),
    f("x-original-url", "IIS and Symfony route on it instead of the request path"),
    f("x-real-ip", "the client address, as nginx sets it"),
    f("x-remote-user", "the authenticated user, as auth proxies pass it"),
    f("x-rewrite-url", "IIS, Symfony and Zend route on it instead of the request path"),
    f("x-ssl-client-cert", "the client certificate, as nginx and HAProxy setups forward it"),
    f("x-url-scheme", "the scheme the client used (Rack)"),
];

/// Whether `name` (lower case, as `HeaderName` is) is in [`FORGEABLE`].
pub fn is_forgeable(name: &str) -> bool {
    let Some(&first) = name.as_bytes().first() else {
        return false;
    };
    PREFILTER[first as usize] & (1 << (name.len() % 64)) != 0
        && FORGEABLE.binary_search_by(|f| f.name.cmp(name)).is_ok()
}

/// Removes every [`FORGEABLE`] header and every name in `extra` (the headers the listener's and
/// routes' filters declare they set, such as a JWT filter's `forward_claims`) from a request
/// that came from an edge client.
///
/// One pass over the request's own fields (a bitmap test each, a binary search for the few that
/// pass it) finds what to remove, so a request without any of them costs a few nanoseconds per
/// field and no allocation.
pub fn strip_forgeable(headers: &mut RequestHeader, extra: &[HeaderName]) {
    let is_match = |name: &HeaderName| is_forgeable(name.as_str()) || extra.contains(name);
    if !headers.headers.keys().any(is_match) {
        return;
    }
    let found: Vec<HeaderName> = headers.headers.keys().filter(|n| is_match(n)).cloned().collect();
    for name in &found {
        headers.remove_header(name);
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
