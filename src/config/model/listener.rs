//! What a listener is once its config is checked: its address and protocol, its trust role, its
//! limits and path policy, its TLS material and its filter chain.

use super::*;

/// A socket Portico accepts requests on.
#[derive(Debug)]
pub struct ListenerSpec {
    /// Unique name, referenced by routes.
    pub name: Arc<str>,
    /// `host:port` to bind.
    pub listen: String,
    /// Edge or internal.
    pub role: Role,
    /// TLS termination settings.
    pub tls: Option<ListenerTls>,
    /// Offer HTTP/2 (h2c on plain listeners, ALPN on TLS).
    pub http2: bool,
    /// Filters run before every route's own.
    pub filters: FilterChain,
    /// Answer every request with a 308 to `https://` on this port instead of routing it.
    pub redirect_https: Option<u16>,
    /// Send the verified client certificate's identity upstream in this header.
    pub forward_client_cert: Option<HeaderName>,
    /// Per-connection read buffer as set in the file: `None` is
    /// [`PLAIN_READ_BUFFER_BYTES`](super::defaults::PLAIN_READ_BUFFER_BYTES) on plain listeners
    /// and Pingora's 64 KiB on TLS ones, where 16 KiB records make it pay.
    pub read_buffer_bytes: Option<usize>,
    /// How long an HTTP/1 connection may sit idle between requests (`keepalive_timeout_s`,
    /// default [`KEEPALIVE_TIMEOUT_S`](super::defaults::KEEPALIVE_TIMEOUT_S); Pingora alone lets
    /// HTTP/1.1 connections idle forever); `None` (`0`) closes each connection after its
    /// response.
    pub keepalive_timeout: Option<std::time::Duration>,
    /// Protection against slow and oversized clients (`limits`).
    pub limits: ListenerLimits,
    /// Whether request paths are made canonical before anything reads them (issue 12).
    pub path_normalization: PathNormalization,
}

/// A listener's `limits`: how long a client may take over each part of an exchange and how many
/// connections it may hold, so that slow or greedy clients cannot pin connections and buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The whole request header block, from its first byte; also the wait for a new
    /// connection's first request (or h2c preface).
    pub header_timeout: std::time::Duration,
    /// The longest wait for the next piece of a request body (per read).
    pub body_timeout: std::time::Duration,
    /// The longest a response write may wait for a client that stopped reading (per write).
    pub write_timeout: std::time::Duration,
    /// Bytes of request line and headers together.
    pub max_header_bytes: usize,
    /// Header fields in one request.
    pub max_headers: usize,
    /// Open client connections on this listener.
    pub max_connections: usize,
    /// Open client connections on this listener from one IP address (an IPv6 client: from its
    /// network of `ipv6_prefix` bits).
    pub max_connections_per_ip: usize,
    /// The bits of an IPv6 address that name one client for `max_connections_per_ip` (1-128).
    pub ipv6_prefix: u8,
}

impl Default for ListenerLimits {
    /// The documented defaults (`config/defaults.rs`), for a listener without `limits`.
    fn default() -> Self {
        use crate::config::defaults as d;
        use std::time::Duration;
        ListenerLimits {
            header_timeout: Duration::from_secs(d::HEADER_TIMEOUT_S),
            body_timeout: Duration::from_secs(d::BODY_TIMEOUT_S),
            write_timeout: Duration::from_secs(d::WRITE_TIMEOUT_S),
            max_header_bytes: d::MAX_HEADER_BYTES,
            max_headers: d::MAX_HEADERS,
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_ip: d::MAX_CONNECTIONS_PER_IP,
            ipv6_prefix: d::CONNECTIONS_IPV6_PREFIX,
        }
    }
}

/// How a listener treats request paths: `Strict` routes, filters and forwards one canonical
/// path (dot segments resolved, `//` merged, needless escapes decoded) and refuses paths that
/// cannot be made safe (encoded `/`, `\` or NUL, climbing above `/`) with 400; `Off` leaves the
/// path as the client sent it, for upstreams that need the exact bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathNormalization {
    /// Canonical paths (the default).
    Strict,
    /// Paths as sent.
    Off,
}

/// TLS termination: certificate files, checked to exist at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// Certificate and key pairs; the first is the default, others are picked by SNI.
    pub certs: Vec<CertPair>,
    /// CA bundle that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is mandatory (when `client_ca` is set).
    pub require_client_cert: bool,
}

/// One certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Server names this certificate answers for; empty: the DNS names in the certificate.
    pub sni: Vec<String>,
}
