//! What a proxy owes the hop: rewrites, hop-by-hop headers removed, `X-Forwarded-*` and the
//! request id and trace context sent on.

use super::Ctx;
use crate::config::Role;
use http::{header, HeaderName, HeaderValue, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use std::io::Write;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) that never cross a proxy.
const HOP_BY_HOP: [&str; 6] =
    ["keep-alive", "proxy-connection", "te", "trailer", "proxy-authenticate", "proxy-authorization"];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The fields of `headers` that must not cross this hop: the fixed hop-by-hop set, every field
/// a `Connection` value nominates, and (`drop_connection`) `Connection` and `Upgrade`
/// themselves. `keep_upgrade` keeps `Upgrade` when `Connection` nominates it (a WebSocket
/// handshake, or its 101 answer, which Pingora tunnels).
///
/// One pass over the names the message has (a handful), each compared with the short fixed
/// list and the nominated tokens, instead of a hashed lookup per name that might be there:
/// most messages have none of them and then nothing is allocated.
fn hop_by_hop_fields(headers: &http::HeaderMap, keep_upgrade: bool, drop_connection: bool) -> Vec<HeaderName> {
    // The names `Connection` nominates, but for `keep-alive` (dropped anyway) and `close` (no
    // field): nearly every message nominates nothing else, and then no name is compared.
    let tokens = headers.get_all(header::CONNECTION).iter().flat_map(|v| v.as_bytes().split(|b| *b == b','));
    let nominated: Vec<&[u8]> = tokens
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close"))
        .collect();
    let is_nominated = |name: &HeaderName| nominated.iter().any(|t| t.eq_ignore_ascii_case(name.as_str().as_bytes()));
    headers
        .keys()
        .filter(|name| {
            if *name == header::CONNECTION || *name == header::UPGRADE {
                return drop_connection || (*name == header::UPGRADE && !keep_upgrade && is_nominated(name));
            }
            HOP_BY_HOP.contains(&name.as_str()) || is_nominated(name)
        })
        .cloned()
        .collect()
}

/// Writes `ip` as text: IPv4 (nearly every client) without the formatting machinery.
fn write_ip(w: &mut impl Write, ip: std::net::IpAddr) -> std::io::Result<()> {
    let std::net::IpAddr::V4(v4) = ip else {
        return write!(w, "{ip}");
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            text[len] = b'0' + d;
            len += 1;
        }
    }
    w.write_all(&text[..len])
}

/// Prepares the request header that goes upstream.
pub fn prepare_upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> pingora::Result<()> {
    let upgrade = session.as_downstream().is_upgrade_req();

    // Hop-by-hop headers. `te: trailers` is the one TE value that crosses (RFC 9110 section
    // 10.1.4; gRPC servers refuse a call without it).
    let te_trailers = req.headers.get_all(header::TE).iter().any(|v| has_token(v.as_bytes(), b"trailers"));
    for name in hop_by_hop_fields(&req.headers, upgrade, !upgrade) {
        req.remove_header(&name);
    }
    if te_trailers {
        req.insert_header(header::TE, HeaderValue::from_static("trailers"))?;
    }
    // A gRPC call's deadline: what is left of it (and of the route's timeout) when it goes.
    if let Some(deadline) = ctx.upstream.deadline.filter(|_| ctx.request.grpc) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        req.insert_header("grpc-timeout", super::grpc::timeout_value(left))?;
    }

    // Rewrite path and host.
    if let Some(rw) = ctx.routing.route.as_ref().and_then(|r| r.rewrite.as_ref()) {
        let path = req.uri.path();
        let stripped = match &rw.strip_prefix {
            Some(p) if path.starts_with(p.as_str()) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/') => {
                &path[p.len()..]
            }
            _ => path,
        };
        let mut new_path = String::with_capacity(stripped.len() + 32);
        if let Some(add) = &rw.add_prefix {
            new_path.push_str(add);
        }
        new_path.push_str(stripped);
        if new_path.is_empty() || !new_path.starts_with('/') {
            new_path.insert(0, '/');
        }
        if let Some(q) = req.uri.query() {
            new_path.push('?');
            new_path.push_str(q);
        }
        if let Ok(uri) = new_path.parse::<Uri>() {
            req.set_uri(uri);
        }
        if let Some(host) = &rw.host {
            req.insert_header(header::HOST, host.clone())?;
        }
    }

    // X-Forwarded-*: replaced at the edge, appended to on internal hops.
    let internal = ctx.request.listener.as_ref().is_some_and(|l| l.role == Role::Internal);
    if let Some(ip) = ctx.filter.client_ip {
        // Formatted on the stack: one allocation, for the header value itself.
        let mut buf = [0u8; 512];
        let mut w = &mut buf[..];
        let prev = req.headers.get(X_FORWARDED_FOR).map(|v| v.as_bytes()).filter(|p| internal && !p.is_empty());
        let written = match prev {
            Some(prev) => w.write_all(prev).and_then(|_| w.write_all(b", ")).and_then(|_| write_ip(&mut w, ip)),
            None => write_ip(&mut w, ip),
        };
        let len = 512 - w.len();
        let value = match written {
            Ok(()) => HeaderValue::from_bytes(&buf[..len]).ok(),
            // An overlong chain from a peer: start over with this hop.
            Err(_) => HeaderValue::from_str(&ip.to_string()).ok(),
        };
        if let Some(v) = value {
            req.insert_header("x-forwarded-for", v)?;
        }
    }
    let tls = ctx.request.listener.as_ref().is_some_and(|l| l.tls.is_some());
    if !(internal && req.headers.contains_key(X_FORWARDED_PROTO)) {
        let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
        req.insert_header("x-forwarded-proto", proto)?;
    }
    if !(internal && req.headers.contains_key(X_FORWARDED_HOST)) {
        let host = session
            .req_header()
            .headers
            .get(header::HOST)
            .cloned()
            .or_else(|| session.req_header().uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        match host {
            Some(h) => req.insert_header("x-forwarded-host", h)?,
            None => {
                req.remove_header(&X_FORWARDED_HOST);
            }
        }
    }

    // The client certificate's identity, on listeners that forward it; never a client's own value.
    if let Some(name) = ctx.request.listener.as_ref().and_then(|l| l.forward_client_cert.as_ref()) {
        req.remove_header(name);
        if let Some(id) = &ctx.request.client_cert {
            req.insert_header(name.clone(), id.header_value())?;
        }
    }

    // Request id and trace context.
    if let Some(id) = &ctx.request.id_header {
        req.insert_header("x-request-id", id.clone())?;
    }
    if let Some(span) = &ctx.request.span {
        req.insert_header("traceparent", span.traceparent())?;
    }
    Ok(())
}

/// Whether a comma-separated header value lists `token` (without parameters, any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.split(|b| *b == b';').next().is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token)))
}

/// Removes hop-by-hop headers from an upstream response (Pingora sets its own framing).
pub fn strip_hop_by_hop_response(resp: &mut ResponseHeader) {
    let upgrade = resp.status == http::StatusCode::SWITCHING_PROTOCOLS;
    for name in hop_by_hop_fields(&resp.headers, upgrade, false) {
        resp.remove_header(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in fields {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    fn names(found: Vec<HeaderName>) -> Vec<String> {
        let mut names: Vec<String> = found.iter().map(|n| n.as_str().to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_fixed_set_and_what_connection_nominates_are_dropped() {
        let h = headers(&[
            ("connection", "keep-alive, X-Hop"),
            ("connection", "close"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
            ("x-kept", "1"),
        ]);
        assert_eq!(
            names(hop_by_hop_fields(&h, false, true)),
            ["connection", "keep-alive", "proxy-authorization", "te", "x-hop"]
        );
        // A response keeps its `Connection` (Pingora writes its own) but drops what it names.
        assert_eq!(names(hop_by_hop_fields(&h, false, false)), ["keep-alive", "proxy-authorization", "te", "x-hop"]);
        assert!(hop_by_hop_fields(&headers(&[("accept", "*/*"), ("x-a", "1")]), false, true).is_empty());
    }

    #[test]
    fn an_upgrade_keeps_connection_and_upgrade() {
        let h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("keep-alive", "1")]);
        assert_eq!(names(hop_by_hop_fields(&h, true, false)), ["keep-alive"]);
        // Not an upgrade: both go, nominated or not.
        assert_eq!(names(hop_by_hop_fields(&h, false, true)), ["connection", "keep-alive", "upgrade"]);
        assert_eq!(names(hop_by_hop_fields(&h, false, false)), ["keep-alive", "upgrade"]);
    }

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        for ip in ["0.0.0.0", "255.255.255.255", "10.1.20.3", "127.0.0.1", "192.168.100.9", "::1", "2001:db8::7"] {
            let ip: std::net::IpAddr = ip.parse().expect("an address");
            let mut out = Vec::new();
            write_ip(&mut out, ip).expect("writes");
            assert_eq!(String::from_utf8_lossy(&out), ip.to_string());
        }
    }
}
