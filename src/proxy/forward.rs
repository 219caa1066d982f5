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

/// Removes `Connection` and the headers it names, and the fixed hop-by-hop set. An upgrade
/// request (WebSocket) keeps `Connection: upgrade` and `Upgrade` so Pingora can tunnel it.
fn strip_hop_by_hop(headers: &http::HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        if let Ok(s) = v.to_str() {
            for token in s.split(',') {
                let token = token.trim();
                if keep_upgrade && token.eq_ignore_ascii_case("upgrade") {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.to_ascii_lowercase().as_bytes()) {
                    named.push(name);
                }
            }
        }
    }
    named
}

/// Prepares the request header that goes upstream.
pub fn prepare_upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> pingora::Result<()> {
    let upgrade = session.as_downstream().is_upgrade_req();

    // Hop-by-hop headers.
    for name in strip_hop_by_hop(&req.headers, upgrade) {
        if name != header::UPGRADE || !upgrade {
            req.remove_header(&name);
        }
    }
    if !upgrade {
        req.remove_header(&header::CONNECTION);
        req.remove_header(&header::UPGRADE);
    }
    // `te: trailers` is the one TE value that crosses (RFC 9110 section 10.1.4; gRPC servers
    // refuse a call without it).
    let te_trailers = req.headers.get_all(header::TE).iter().any(|v| has_token(v.as_bytes(), b"trailers"));
    for h in HOP_BY_HOP {
        req.remove_header(h);
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
        let prev = req.headers.get("x-forwarded-for").map(|v| v.as_bytes()).filter(|p| internal && !p.is_empty());
        let written = match prev {
            Some(prev) => w.write_all(prev).and_then(|_| write!(w, ", {ip}")),
            None => write!(w, "{ip}"),
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
    if !(internal && req.headers.contains_key("x-forwarded-proto")) {
        let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
        req.insert_header("x-forwarded-proto", proto)?;
    }
    if !(internal && req.headers.contains_key("x-forwarded-host")) {
        let host = session
            .req_header()
            .headers
            .get(header::HOST)
            .cloned()
            .or_else(|| session.req_header().uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        match host {
            Some(h) => req.insert_header("x-forwarded-host", h)?,
            None => {
                req.remove_header("x-forwarded-host");
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
    for name in strip_hop_by_hop(&resp.headers, upgrade) {
        if name != header::UPGRADE || !upgrade {
            resp.remove_header(&name);
        }
    }
    for h in HOP_BY_HOP {
        resp.remove_header(h);
    }
}
