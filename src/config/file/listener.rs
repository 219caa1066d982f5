//! `listeners[]`: the address, its role, limits, TLS and redirects.

use super::FilterItem;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: String,
    pub listen: String,
    #[serde(default)]
    pub role: Option<RoleFile>,
    #[serde(default)]
    pub tls: Option<ListenerTlsFile>,
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub filters: Vec<FilterItem>,
    #[serde(default)]
    pub redirect_https: Option<RedirectFile>,
    #[serde(default)]
    pub read_buffer_bytes: Option<usize>,
    #[serde(default)]
    pub keepalive_timeout_s: Option<u64>,
    #[serde(default)]
    pub forward_client_cert: Option<String>,
    #[serde(default)]
    pub limits: Option<ListenerLimitsFile>,
    pub path_normalization: Option<PathNormalizationFile>,
}

/// `listeners[].limits`: every key optional, defaults in `defaults.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerLimitsFile {
    pub header_timeout_s: Option<u64>,
    pub body_timeout_s: Option<u64>,
    pub write_timeout_s: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub ipv6_prefix: Option<u8>,
}

/// `path_normalization: strict` (canonical paths, the default) or `off` (paths as sent).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PathNormalizationFile {
    Strict,
    Off,
}

/// `redirect_https: true` (to port 443) or `redirect_https: {port: 8443}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RedirectFile {
    On(bool),
    Port(RedirectPortFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectPortFile {
    pub port: u16,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoleFile {
    Edge,
    Internal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsFile {
    pub certs: Vec<CertFile>,
    #[serde(default)]
    pub client_ca: Option<String>,
    #[serde(default)]
    pub require_client_cert: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub sni: Vec<String>,
}
