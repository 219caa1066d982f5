//! `listeners`: the sockets Portico accepts requests on, their TLS and their filter chains.

use super::{chain, existing_file, header_name, socket_addr};
use crate::config::defaults;
use crate::config::file::{ListenerFile, ListenerTlsFile, PathNormalizationFile, RedirectFile, RoleFile};
use crate::config::model::{CertPair, ListenerSpec, ListenerTls, PathNormalization, Role};
use crate::config::Errors;
use portico_filters::BuildContext;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Every listener whose address parses, and the set of all listener names (for routes).
pub(super) fn listeners(
    list: Vec<ListenerFile>,
    base_dir: &Path,
    cx: &BuildContext<'_>,
    errors: &mut Errors<'_>,
) -> (Vec<Arc<ListenerSpec>>, HashSet<String>) {
    let mut names = HashSet::new();
    let mut listeners = Vec::new();
    for (i, l) in list.into_iter().enumerate() {
        let at = format!("listeners[{i}]");
        if !names.insert(l.name.clone()) {
            errors.at(format!("{at}.name"), format!("duplicate listener name \"{}\"", l.name));
        }
        if socket_addr(&l.listen, &format!("{at}.listen"), errors).is_none() {
            continue;
        }
        listeners.push(Arc::new(listener(l, &at, base_dir, cx, errors)));
    }
    if listeners.is_empty() && errors.list.is_empty() {
        errors.at("listeners", "at least one listener is needed");
    }
    (listeners, names)
}

/// One listener whose address has been checked.
fn listener(
    l: ListenerFile,
    at: &str,
    base_dir: &Path,
    cx: &BuildContext<'_>,
    errors: &mut Errors<'_>,
) -> ListenerSpec {
    let tls = l.tls.map(|t| listener_tls(t, base_dir, &format!("{at}.tls"), errors));
    let redirect_https = match l.redirect_https {
        None | Some(RedirectFile::On(false)) => None,
        Some(RedirectFile::On(true)) => Some(defaults::REDIRECT_HTTPS_PORT),
        Some(RedirectFile::Port(p)) => Some(p.port),
    };
    if redirect_https.is_some() && tls.is_some() {
        errors.at(format!("{at}.redirect_https"), "a TLS listener cannot redirect to HTTPS");
    }
    let forward_client_cert =
        l.forward_client_cert.as_deref().and_then(|h| header_name(h, format!("{at}.forward_client_cert"), errors));
    ListenerSpec {
        name: l.name.as_str().into(),
        listen: l.listen,
        role: match l.role {
            None => defaults::ROLE,
            Some(RoleFile::Edge) => Role::Edge,
            Some(RoleFile::Internal) => Role::Internal,
        },
        tls,
        http2: l.http2.unwrap_or(defaults::LISTENER_HTTP2),
        filters: chain(l.filters, &format!("{at}.filters"), &format!("listener {}", l.name), cx, errors),
        redirect_https,
        forward_client_cert,
        read_buffer_bytes: l.read_buffer_bytes,
        keepalive_timeout: match l.keepalive_timeout_s.unwrap_or(defaults::KEEPALIVE_TIMEOUT_S) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        limits: super::limits::limits(l.limits, at, errors),
        path_normalization: match l.path_normalization {
            None => defaults::PATH_NORMALIZATION,
            Some(PathNormalizationFile::Strict) => PathNormalization::Strict,
            Some(PathNormalizationFile::Off) => PathNormalization::Off,
        },
    }
}

/// Certificates (checked to load and match their keys now) and client-certificate settings.
fn listener_tls(t: ListenerTlsFile, base_dir: &Path, at: &str, errors: &mut Errors<'_>) -> ListenerTls {
    if t.certs.is_empty() {
        errors.at(format!("{at}.certs"), "at least one certificate is needed");
    }
    let certs = t
        .certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pair = CertPair {
                cert: existing_file(base_dir, &c.cert, &format!("{at}.certs[{i}].cert"), errors),
                key: existing_file(base_dir, &c.key, &format!("{at}.certs[{i}].key"), errors),
                sni: c.sni.iter().map(|n| n.to_ascii_lowercase()).collect(),
            };
            if pair.cert.is_file() && pair.key.is_file() {
                if let Err(e) = crate::tls::load_pair(&pair.cert, &pair.key) {
                    errors.at(format!("{at}.certs[{i}]"), e);
                }
            }
            pair
        })
        .collect();
    let client_ca = t.client_ca.as_deref().map(|c| existing_file(base_dir, c, &format!("{at}.client_ca"), errors));
    if let Some(ca) = client_ca.as_deref().filter(|p| p.is_file()) {
        if let Err(e) = crate::tls::load_chain(ca) {
            errors.at(format!("{at}.client_ca"), e);
        }
    }
    if t.require_client_cert == Some(true) && client_ca.is_none() {
        errors.at(format!("{at}.require_client_cert"), "needs `client_ca`");
    }
    // Default: required exactly when a CA to verify against is given.
    let require_client_cert = t.require_client_cert.unwrap_or(client_ca.is_some());
    ListenerTls { certs, client_ca, require_client_cert }
}
