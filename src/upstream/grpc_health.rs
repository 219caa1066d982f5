//! The gRPC health check (`health_check: {grpc: {service: ""}}`): a unary
//! `grpc.health.v1.Health/Check` over h2c (plain targets) or h2 (TLS, ALPN), through Pingora's
//! connector, that must answer `grpc-status: 0` and `SERVING`. Built on pingora-load-balancing's
//! `HealthCheck` trait, beside its HTTP and TCP checks.

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v2::client::Http2Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use portico_filters::grpc_web::Code;

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// A gRPC health check of one service.
pub struct GrpcHealthCheck {
    /// Address, TLS and timeouts; the address is each target's.
    pub peer_template: HttpPeer,
    /// Successes that mark a down target up.
    pub consecutive_success: usize,
    /// Failures that mark an up target down.
    pub consecutive_failure: usize,
    /// The service asked about, and so the request body (made once).
    body: Bytes,
    connector: Connector,
}

impl GrpcHealthCheck {
    /// A check of `service` (`""`: the server as a whole) over TLS when `tls`, with `sni`.
    pub fn new(service: &str, tls: bool, sni: String) -> Self {
        let mut peer_template = HttpPeer::new("0.0.0.0:1", tls, sni);
        peer_template.options.set_http_version(2, 2);
        GrpcHealthCheck {
            peer_template,
            consecutive_success: 1,
            consecutive_failure: 1,
            body: request_body(service),
            connector: Connector::new(None),
        }
    }
}

/// `HealthCheckRequest { service }` in one gRPC frame (uncompressed, length-prefixed).
fn request_body(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + msg.len());
    frame.put_u8(0);
    frame.put_u32(msg.len() as u32);
    frame.put_slice(&msg);
    frame.freeze()
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The `status` of a `HealthCheckResponse` frame (0, UNKNOWN, when the field is absent).
fn serving_status(frame: &[u8]) -> Option<u64> {
    let (head, msg) = (frame.get(..5)?, frame.get(5..)?);
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if head[0] != 0 || msg.len() < len {
        return None;
    }
    let mut msg = &msg[..len];
    let mut status = 0;
    while !msg.is_empty() {
        let (key, n) = varint(msg)?;
        msg = &msg[n..];
        match key & 7 {
            0 => {
                let (v, n) = varint(msg)?;
                if key >> 3 == 1 {
                    status = v;
                }
                msg = &msg[n..];
            }
            2 => {
                let (l, n) = varint(msg)?;
                msg = msg.get(n + l as usize..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

fn fail(why: String) -> Box<Error> {
    Error::explain(ErrorType::CustomCode("grpc health check failed", 0), why)
}

#[async_trait]
impl HealthCheck for GrpcHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let mut peer = self.peer_template.clone();
        peer._address = target.addr.clone();
        let (session, _) = self.connector.get_http_session(&peer).await?;
        let HttpSession::H2(mut h2) = session else {
            return Err(fail("the target did not speak HTTP/2".into()));
        };
        let result = self.exchange(&mut h2, &peer).await;
        if result.is_ok() {
            // The connection is kept for the next check.
            self.connector.release_http_session(HttpSession::H2(h2), &peer, None).await;
        }
        result
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.consecutive_success
        } else {
            self.consecutive_failure
        }
    }
}

impl GrpcHealthCheck {
    /// One `Check` call on an HTTP/2 stream.
    async fn exchange(&self, h2: &mut Http2Session, peer: &HttpPeer) -> Result<()> {
        let mut req = RequestHeader::build("POST", b"/grpc.health.v1.Health/Check", None)?;
        // HTTP/2's `:authority` (Pingora's client takes it from `Host`).
        let authority = if peer.sni.is_empty() { peer._address.to_string() } else { peer.sni.clone() };
        req.insert_header("host", authority)?;
        req.insert_header("content-type", "application/grpc")?;
        req.insert_header("te", "trailers")?;
        req.insert_header("user-agent", "portico-health-check")?;
        h2.write_request_header(Box::new(req), false)?;
        h2.write_request_body(self.body.clone(), true).await?;
        h2.read_timeout = peer.options.read_timeout;
        h2.read_response_header().await?;
        let Some(resp) = h2.response_header() else { return Err(fail("no response header".into())) };
        if resp.status != 200 {
            return Err(fail(format!("HTTP {}", resp.status.as_u16())));
        }
        // Trailers-Only: the status is in the header.
        let mut code = resp.headers.get("grpc-status").and_then(Code::from_header);
        let mut body = BytesMut::new();
        if code.is_none() {
            while let Some(chunk) = h2.read_response_body().await? {
                body.extend_from_slice(&chunk);
            }
            code = h2.read_trailers().await?.and_then(|t| t.get("grpc-status").and_then(Code::from_header));
        }
        match code {
            Some(Code::Ok) => {}
            Some(c) => return Err(fail(format!("grpc-status {} ({})", c as u8, c.name()))),
            None => return Err(fail("no grpc-status".into())),
        }
        match serving_status(&body) {
            Some(SERVING) => Ok(()),
            Some(s) => Err(fail(format!("serving status {s}, not SERVING"))),
            None => Err(fail("an unreadable HealthCheckResponse".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_are_framed_protobuf() {
        assert_eq!(&request_body("")[..], b"\x00\x00\x00\x00\x00");
        assert_eq!(&request_body("pkg.Svc")[..], b"\x00\x00\x00\x00\x09\x0a\x07pkg.Svc");
        assert_eq!(serving_status(b"\x00\x00\x00\x00\x02\x08\x01"), Some(SERVING));
        assert_eq!(serving_status(b"\x00\x00\x00\x00\x02\x08\x02"), Some(2), "NOT_SERVING");
        assert_eq!(serving_status(b"\x00\x00\x00\x00\x00"), Some(0), "UNKNOWN when absent");
        assert_eq!(serving_status(b"\x00\x00\x00\x00\x05\x08"), None, "short");
    }
}
