//! The `HttpPeer` a request goes to: target address plus the upstream's timeouts, TLS and HTTP
//! version.

use super::Pool;
use crate::config::UpstreamTls;
use crate::tls::UpstreamTlsMaterial;
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;
use std::sync::OnceLock;

/// The one connector (with its connection pool) for the requests Portico makes on its own,
/// beside the proxied ones: mirror copies and aggregate parts, so they reuse connections to a
/// target across requests as proxied requests do. It keeps as many idle connections as
/// `server.upstream_keepalive_pool_size` says (a setting bound at start, so the first call's
/// value holds).
pub fn side_connector(pool_size: usize) -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| Connector::new(Some(ConnectorOptions::new(pool_size))))
}

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
