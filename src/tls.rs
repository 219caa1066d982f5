//! TLS: termination on listeners (certificates picked by SNI, HTTP/2 by ALPN, TLS 1.2+,
//! optional or required client certificates) and TLS/mTLS towards upstreams.
//!
//! Certificates are PEM files, parsed when the config is loaded so that a bad file is a config
//! error naming it. A listener's certificates and client CA are read again on every reload
//! (`tls/listener.rs`): renewed files at the same paths serve new handshakes, and a bad one
//! refuses the reload.

mod listener;

pub use listener::CertRegistry;

use crate::config::UpstreamTls;
use pingora::tls::nid::Nid;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::x509::X509;
use pingora::utils::tls::CertKey;
use std::path::Path;
use std::sync::Arc;

// === certificates ===

/// A certificate chain (leaf first) and its private key.
pub struct LoadedCert {
    chain: Vec<X509>,
    key: PKey<Private>,
    /// Names from the config's `sni`; empty: the certificate's own DNS names.
    names: Vec<String>,
}

/// Reads a PEM certificate chain; the error names the file.
pub fn load_chain(path: &Path) -> Result<Vec<X509>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let chain = X509::stack_from_pem(&pem).map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(chain)
}

/// Reads a PEM private key; the error names the file.
pub fn load_key(path: &Path) -> Result<PKey<Private>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PKey::private_key_from_pem(&pem).map_err(|e| format!("{} is not a PEM private key: {e}", path.display()))
}

/// Reads a certificate and its key and checks that they belong together.
pub fn load_pair(cert: &Path, key: &Path) -> Result<LoadedCert, String> {
    let chain = load_chain(cert)?;
    let key_pem = load_key(key)?;
    let matches = chain[0].public_key().map(|pk| pk.public_eq(&key_pem)).unwrap_or(false);
    if !matches {
        return Err(format!("{} does not belong to certificate {}", key.display(), cert.display()));
    }
    Ok(LoadedCert { chain, key: key_pem, names: Vec::new() })
}

fn subject_cn(cert: &X509) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
}

// === client identity ===

/// Who a verified client certificate says the client is; stored in the TLS digest at the end
/// of the handshake and read by the proxy for every request on that connection.
#[derive(Debug, Clone, Default)]
pub struct ClientIdentity {
    /// Subject common name.
    pub subject_cn: Option<String>,
    /// URI SANs (`spiffe://...`).
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
}

impl ClientIdentity {
    /// The identity used for authorization: the first URI SAN, else the subject CN.
    pub fn primary(&self) -> Option<&str> {
        self.uris.first().map(String::as_str).or(self.subject_cn.as_deref())
    }

    /// An `X-Forwarded-Client-Cert`-style value (`Subject="CN=..";URI=..;DNS=..`).
    pub fn header_value(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cn) = &self.subject_cn {
            parts.push(format!("Subject=\"CN={}\"", cn.replace('"', "")));
        }
        parts.extend(self.uris.iter().map(|u| format!("URI={u}")));
        parts.extend(self.dns.iter().map(|d| format!("DNS={d}")));
        parts.join(";")
    }

    fn from_cert(cert: &X509) -> Self {
        let (mut uris, mut dns) = (Vec::new(), Vec::new());
        if let Some(sans) = cert.subject_alt_names() {
            for n in sans.iter() {
                if let Some(u) = n.uri() {
                    uris.push(u.to_string());
                } else if let Some(d) = n.dnsname() {
                    dns.push(d.to_string());
                }
            }
        }
        ClientIdentity { subject_cn: subject_cn(cert), uris, dns }
    }
}

// === upstream TLS ===

/// Parsed TLS material for an upstream: the CA to verify it against and our client certificate.
#[derive(Clone, Default)]
pub struct UpstreamTlsMaterial {
    /// Roots to verify the upstream's chain (system roots when `None`).
    pub ca: Option<Arc<Box<[X509]>>>,
    /// Client certificate and key for mTLS.
    pub client: Option<Arc<CertKey>>,
}

impl UpstreamTlsMaterial {
    /// Loads the files an upstream's `tls` names.
    pub fn load(t: &UpstreamTls) -> Result<Self, String> {
        let ca = match &t.ca {
            Some(p) => Some(Arc::new(load_chain(p)?.into_boxed_slice())),
            None => None,
        };
        let client = match (&t.cert, &t.key) {
            (Some(c), Some(k)) => {
                let pair = load_pair(c, k)?;
                Some(Arc::new(CertKey::new(pair.chain, pair.key)))
            }
            _ => None,
        };
        Ok(UpstreamTlsMaterial { ca, client })
    }
}
