//! Verification keys: a set looked up by `kid`, read from a JWKS document or a PEM public key.

use crate::credentials::digest;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// One verification key.
pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) key: DecodingKey,
    /// The JWK's `alg`, when it names one: the key is used for that algorithm only.
    pub(super) alg: Option<Algorithm>,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// A set of keys, looked up by `kid`.
#[derive(Default)]
pub(super) struct KeySet {
    pub(super) keys: Vec<Key>,
    /// SHA-256 of the document it came from, to notice when a refetch changed nothing.
    pub(super) source: [u8; 32],
}

impl KeySet {
    pub(super) fn by_kid<'a>(&'a self, kid: &'a str, alg: Algorithm) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| k.kid.as_deref() == Some(kid) && k.fits(alg))
    }

    pub(super) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub(super) fn without_kid(&self, alg: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.kid.is_none() && k.fits(alg))
    }

    pub(super) fn all(&self, alg: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.fits(alg))
    }

    /// Parses a JWKS document; keys that are not for signatures, are symmetric or cannot be
    /// read are skipped (and named in the log), so one odd key does not hide the others.
    pub(super) fn from_jwks(doc: &[u8], origin: &str) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<Value>,
        }
        let parsed: Doc = serde_json::from_slice(doc).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        for (i, raw) in parsed.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(raw) {
                Ok(jwk) => jwk,
                Err(e) => {
                    log::warn!("{origin}: skipping key {i}: {e}");
                    continue;
                }
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
                continue;
            }
            // A key that names an algorithm is used for that one only; one that names an
            // algorithm that is not a JWS signature algorithm is not for us.
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(alg) => Some(alg),
                    Err(_) => continue,
                },
            };
            match DecodingKey::from_jwk(&jwk) {
                Ok(key) if key.family() != AlgorithmFamily::Hmac => {
                    keys.push(Key { kid: jwk.common.key_id.clone(), key, alg })
                }
                Ok(_) => log::warn!("{origin}: skipping symmetric key {i} (use `secret` for HMAC)"),
                Err(e) => log::warn!("{origin}: skipping key {i}: {e}"),
            }
        }
        if keys.is_empty() {
            return Err("no usable signing key in the key set".into());
        }
        Ok(KeySet { keys, source: digest(doc) })
    }
}

/// Reads a PEM public key, trying the parsers of the configured algorithm families.
pub(super) fn key_from_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<DecodingKey, String> {
    let has = |f: AlgorithmFamily| algorithms.iter().any(|a| a.family() == f);
    let mut tried = Vec::new();
    if has(AlgorithmFamily::Rsa) {
        match DecodingKey::from_rsa_pem(pem) {
            Ok(k) => return Ok(k),
            Err(_) => tried.push("RSA"),
        }
    }
    if has(AlgorithmFamily::Ec) {
        match DecodingKey::from_ec_pem(pem) {
            Ok(k) => return Ok(k),
            Err(_) => tried.push("EC"),
        }
    }
    if has(AlgorithmFamily::Ed) {
        match DecodingKey::from_ed_pem(pem) {
            Ok(k) => return Ok(k),
            Err(_) => tried.push("Ed25519"),
        }
    }
    Err(format!("not a PEM {} public key (for algorithms {algorithms:?})", tried.join(" or ")))
}
