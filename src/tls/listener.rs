//! TLS termination on a listener: the certificates picked by SNI for each handshake, read from
//! a set that a reload replaces.
//!
//! Pingora fixes a listener's TLS settings when it binds, but asks [`TlsAccept`] for the
//! certificate of every handshake. The callback reads the listener's current [`SniCerts`]
//! from an `ArcSwap`; [`CertRegistry::reload`] reads every listener's files again and swaps
//! the new sets in, all or none, so a renewed certificate serves the next handshake while
//! connections already made keep theirs. The `client_ca` file is part of the set: the callback
//! also installs the set's CA store (what client certificates are verified against) and CA names
//! (what the server's CertificateRequest lists) on each handshake, so a CA bundle renewed at the
//! same path trusts the new CA, and stops trusting a removed one, from the next handshake on.

use super::{load_chain, load_pair, subject_cn, ClientIdentity, LoadedCert};
use crate::config::ListenerTls;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::ssl::{NameType, SslVerifyMode, SslVersion};
use pingora::tls::x509::store::{X509Store, X509StoreBuilder};
use pingora::tls::x509::X509;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

// === impl SniCerts ===

/// One listener's certificates, indexed by the names they answer for.
struct SniCerts {
    certs: Vec<LoadedCert>,
    exact: HashMap<String, usize>,
    wildcard: Vec<(String, usize)>,
    client_ca: Option<ClientCa>,
}

/// A listener's `client_ca` bundle as read at load or reload.
struct ClientCa {
    /// What client certificates are verified against.
    store: X509Store,
    /// The CA certificates, whose names the CertificateRequest lists.
    certs: Vec<X509>,
}

impl ClientCa {
    /// Reads the bundle at `path`; the error names the file.
    fn load(path: &std::path::Path) -> Result<Self, String> {
        let certs = load_chain(path)?;
        let bad = |e| format!("cannot use client_ca {}: {e}", path.display());
        let mut store = X509StoreBuilder::new().map_err(bad)?;
        for cert in &certs {
            store.add_cert(cert.clone()).map_err(bad)?;
        }
        Ok(ClientCa { store: store.build(), certs })
    }
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

impl SniCerts {
    /// Reads every pair `tls` names (each key checked against its certificate); the error names
    /// the file.
    fn load(tls: &ListenerTls) -> Result<Self, String> {
        let certs = tls
            .certs
            .iter()
            .map(|c| load_pair(&c.cert, &c.key).map(|loaded| LoadedCert { names: c.sni.clone(), ..loaded }))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err("a TLS listener needs at least one certificate".into());
        }
        let client_ca = tls.client_ca.as_deref().map(ClientCa::load).transpose()?;
        Ok(Self::new(certs, client_ca))
    }

    fn new(certs: Vec<LoadedCert>, client_ca: Option<ClientCa>) -> Self {
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
        SniCerts { certs, exact, wildcard, client_ca }
    }

    /// The certificate for `server_name` (exact name, then `*.` wildcard), else the first.
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

// === impl SniCallback ===

/// Pingora's per-handshake hook: installs the current certificate for the SNI name, and
/// records the client certificate's identity when there is one.
struct SniCallback {
    current: Arc<ArcSwap<SniCerts>>,
}

#[async_trait]
impl TlsAccept for SniCallback {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let set = self.current.load();
        let cert = set.pick(ssl.servername(NameType::HOST_NAME));
        let ok = ext::ssl_use_certificate(ssl, &cert.chain[0]).is_ok()
            && ext::ssl_use_private_key(ssl, &cert.key).is_ok()
            && cert.chain[1..].iter().all(|c| ext::ssl_add_chain_cert(ssl, c).is_ok());
        if !ok {
            log::error!("could not install the TLS certificate for a handshake");
        }
        // The current client CA (the verify mode is the listener's, fixed at bind).
        if let Some(ca) = &set.client_ca {
            let ok = ext::ssl_set_verify_cert_store(ssl, &ca.store).is_ok()
                && ca.certs.iter().all(|c| ssl.add_client_ca(c).is_ok());
            if !ok {
                log::error!("could not install the client CA for a handshake");
            }
        }
    }

    async fn handshake_complete_callback(&self, ssl: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let cert = ssl.peer_certificate()?;
        Some(Arc::new(ClientIdentity::from_cert(&cert)))
    }
}

// === impl CertRegistry ===

/// Every TLS listener's current certificate set, by listener name: filled as the listeners
/// are set up, replaced by reloads.
#[derive(Default)]
pub struct CertRegistry {
    sets: ArcSwap<HashMap<Arc<str>, Arc<ArcSwap<SniCerts>>>>,
}

impl CertRegistry {
    /// TLS settings for listener `name`: its certificates (registered here for reloads) picked
    /// by SNI, TLS 1.2 and newer, HTTP/2 by ALPN when asked, and client-certificate
    /// verification against `client_ca` (set here for the mode; the CA itself is installed per
    /// handshake from the current set, so a reload renews it).
    pub fn listener_settings(&self, name: &Arc<str>, tls: &ListenerTls, http2: bool) -> Result<TlsSettings, String> {
        let current = Arc::new(ArcSwap::from_pointee(SniCerts::load(tls)?));
        self.sets.rcu(|sets| {
            let mut sets = HashMap::clone(sets);
            sets.insert(name.clone(), current.clone());
            sets
        });
        let mut settings =
            TlsSettings::with_callbacks(Box::new(SniCallback { current })).map_err(|e| format!("TLS setup: {e}"))?;
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

    /// Reads the certificate, key and client CA files of every registered listener again, from `tls` as
    /// the new config gives it (`(listener name, its tls)`), and swaps the new sets in only when
    /// every one loaded. The error names the listener and the file; nothing changes then.
    pub fn reload<'a>(
        &self,
        tls: impl IntoIterator<Item = (&'a Arc<str>, &'a ListenerTls)>,
    ) -> Result<usize, Vec<(Arc<str>, String)>> {
        let sets = self.sets.load();
        let mut fresh = Vec::new();
        let mut errors = Vec::new();
        for (name, tls) in tls {
            let Some(current) = sets.get(name) else { continue };
            match SniCerts::load(tls) {
                Ok(set) => fresh.push((current, set)),
                Err(e) => errors.push((name.clone(), e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let swapped = fresh.len();
        for (current, set) in fresh {
            current.store(Arc::new(set));
        }
        Ok(swapped)
    }

    /// The subject CN of the certificate listener `name` gives a handshake for `server_name`
    /// now (for tests and logs).
    pub fn serving(&self, name: &str, server_name: Option<&str>) -> Option<String> {
        let sets = self.sets.load();
        let set = sets.get(name)?.load();
        subject_cn(&set.pick(server_name).chain[0])
    }
}

#[cfg(test)]
mod tests;
