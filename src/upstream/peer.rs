//! The `HttpPeer` a request goes to: target address plus the upstream's timeouts, TLS and HTTP
//! version.

use super::Pool;
use crate::config::UpstreamTls;
use crate::tls::UpstreamTlsMaterial;
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;

/// Builds the peer for one chosen target of `pool`.
pub fn build_peer(pool: &Pool, backend: &Backend) -> Box<HttpPeer> {
    let spec = &pool.spec;
    let tls = spec.tls.as_ref();
    let mut peer = HttpPeer::new(backend.addr.clone(), tls.is_some(), tls.map(|t| t.sni.clone()).unwrap_or_default());
    let o = &mut peer.options;
    o.connection_timeout = spec.timeouts.connect;
    o.read_timeout = spec.timeouts.read;
    o.write_timeout = spec.timeouts.write;
    o.idle_timeout = spec.timeouts.idle;
    if spec.http2 {
        // Plain: h2c with prior knowledge. TLS: ALPN offers h2, then HTTP/1.1 should the
        // upstream pick it.
        o.set_http_version(2, if tls.is_some() { 1 } else { 2 });
        o.max_h2_streams = spec.max_streams;
    }
    if let (Some(t), Some(material)) = (tls, &pool.tls) {
        apply_tls(&mut peer, t, material);
    }
    Box::new(peer)
}

/// Verification settings, CA and client certificate for TLS to an upstream.
pub(super) fn apply_tls(peer: &mut HttpPeer, t: &UpstreamTls, material: &UpstreamTlsMaterial) {
    peer.options.verify_cert = t.verify;
    peer.options.verify_hostname = t.verify;
    peer.options.ca = material.ca.clone();
    peer.client_cert_key = material.client.clone();
}
