//! Per-request state that filters read and write, and the consumers they identify.

use std::net::IpAddr;
use std::sync::Arc;

/// A known caller: found by `api_key`, `basic_auth` or `jwt`, then checked by `acl` and counted by
/// `rate_limit`.
#[derive(Debug, Clone, Default)]
pub struct Consumer {
    /// Unique name, shown in access logs.
    pub name: String,
    /// API keys that identify this consumer (already `${ENV}`-substituted).
    pub api_keys: Vec<String>,
    /// Username and password hash for `basic_auth`.
    pub basic: Option<BasicCredentials>,
    /// Groups for `acl` rules.
    pub groups: Vec<String>,
}

/// A consumer's basic-auth login.
#[derive(Debug, Clone, Default)]
pub struct BasicCredentials {
    /// The username the client sends.
    pub username: String,
    /// A bcrypt (`$2b$...`) or argon2 (`$argon2id$...`) hash, never the password.
    pub password_hash: String,
}

/// What Portico knows about one request, handed to every filter phase.
///
/// Fields the core fills are public so filters can read them; filters that need their own
/// per-request state keep it in [`RequestCtx::state`], keyed by type.
#[derive(Debug, Default)]
pub struct RequestCtx {
    /// The request id (`X-Request-Id`), also in every error body and log line.
    pub request_id: String,
    /// The downstream client's address, when known.
    pub client_ip: Option<IpAddr>,
    /// Name of the listener the request came in on.
    pub listener: Arc<str>,
    /// Name of the matched route.
    pub route: Arc<str>,
    /// The authenticated consumer, once a filter found one.
    pub consumer: Option<Arc<Consumer>>,
    /// A verified service identity (mTLS SAN or subject), once known.
    pub identity: Option<String>,
    /// Typed per-request state for filters, one value per type.
    pub state: http::Extensions,
}

impl RequestCtx {
    /// The name to log and limit by: consumer first, then identity.
    pub fn caller(&self) -> Option<&str> {
        self.consumer.as_deref().map(|c| c.name.as_str()).or(self.identity.as_deref())
    }
}
