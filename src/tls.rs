//! TLS: termination on listeners (certificates picked by SNI, HTTP/2 by ALPN, TLS 1.2+,
//! optional or required client certificates) and TLS/mTLS towards upstreams.
//!
//! Certificates are PEM files, parsed when the config is loaded so that a bad file is a config
//! error naming it.

use crate::config::{ListenerTls, UpstreamTls};
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::nid::Nid;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::{NameType, SslVerifyMode, SslVersion};
use pingora::tls::x509::X509;
use pingora::utils::tls::CertKey;
use std::any::Any;
use std::collections::HashMap;
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

/// The DNS names a certificate is for: SAN DNS entries, else the subject CN.
fn cert_names(cert: &X509) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| sans.iter().filter_map(|n| n.dnsname().map(|d| d.to_ascii_lowercase())).collect())
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(subject_cn(cert));
    }
    names
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

// === impl SniCerts ===

/// Picks the certificate for a handshake by SNI (exact name, then `*.` wildcard), falling
/// back to the first one; records the client certificate's identity when there is one.
struct SniCerts {
    certs: Vec<LoadedCert>,
    exact: HashMap<String, usize>,
    wildcard: Vec<(String, usize)>,
}

impl SniCerts {
    fn new(certs: Vec<LoadedCert>) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = Vec::new();
        for (i, c) in certs.iter().enumerate() {
            let names = if c.names.is_empty() { cert_names(&c.chain[0]) } else { c.names.clone() };
            for name in names {
                match name.strip_prefix('*') {
                    Some(suffix) => wildcard.push((suffix.to_string(), i)),
                    None => {
                        exact.entry(name).or_insert(i);
                    }
                }
            }
        }
        SniCerts { certs, exact, wildcard }
    }

    fn pick(&self, server_name: Option<&str>) -> &LoadedCert {
        let idx = server_name
            .map(str::to_ascii_lowercase)
            .and_then(|name| {
                self.exact.get(&name).copied().or_else(|| {
                    self.wildcard
                        .iter()
                        .find(|(suffix, _)| name.ends_with(suffix.as_str()) && name.len() > suffix.len())
                        .map(|(_, i)| *i)
                })
            })
            .unwrap_or(0);
        &self.certs[idx]
    }
}

#[async_trait]
impl TlsAccept for SniCerts {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let cert = self.pick(ssl.servername(NameType::HOST_NAME));
        let ok = ext::ssl_use_certificate(ssl, &cert.chain[0]).is_ok()
            && ext::ssl_use_private_key(ssl, &cert.key).is_ok()
            && cert.chain[1..].iter().all(|c| ext::ssl_add_chain_cert(ssl, c).is_ok());
        if !ok {
            log::error!("could not install the TLS certificate for a handshake");
        }
    }

    async fn handshake_complete_callback(&self, ssl: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let cert = ssl.peer_certificate()?;
        Some(Arc::new(ClientIdentity::from_cert(&cert)))
    }
}

/// TLS settings for a listener: SNI certificates, TLS 1.2 and newer, HTTP/2 by ALPN when asked,
/// and client-certificate verification against `client_ca`.
pub fn listener_settings(tls: &ListenerTls, http2: bool) -> Result<TlsSettings, String> {
    let certs = tls
        .certs
        .iter()
        .map(|c| load_pair(&c.cert, &c.key).map(|loaded| LoadedCert { names: c.sni.clone(), ..loaded }))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err("a TLS listener needs at least one certificate".into());
    }
    let mut settings =
        TlsSettings::with_callbacks(Box::new(SniCerts::new(certs))).map_err(|e| format!("TLS setup: {e}"))?;
    settings.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(|e| format!("TLS setup: {e}"))?;
    if http2 {
        settings.enable_h2();
    }
    if let Some(ca) = &tls.client_ca {
        let ca_path = ca.to_string_lossy();
        settings.set_ca_file(&*ca_path).map_err(|e| format!("cannot load client_ca {ca_path}: {e}"))?;
        for cert in load_chain(ca)? {
            settings.add_client_ca(&cert).map_err(|e| format!("cannot use client_ca {ca_path}: {e}"))?;
        }
        let mode = if tls.require_client_cert {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        } else {
            SslVerifyMode::PEER
        };
        settings.set_verify(mode);
    }
    Ok(settings)
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
