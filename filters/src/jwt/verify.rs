//! Checking a token: its header picks the validation and the keys, the signature and the
//! registered claims are checked, and the result is cached until the token expires or the remote
//! key set changes.

use super::keys::Key;
use super::Jwt;
use crate::credentials::digest;
use crate::Consumer;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why a token was refused; each becomes a 401 with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenError {
    Missing,
    Malformed,
    Expired,
    NotYetValid,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    MissingClaim(String),
    UnknownKeyId,
    AlgorithmNotAllowed,
    NoKeys,
}

impl TokenError {
    pub(super) fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            TokenError::Missing => "missing token",
            TokenError::Malformed => "malformed token",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::BadSignature => "invalid signature",
            TokenError::WrongAudience => "wrong audience",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::MissingClaim(c) => return Cow::Owned(format!("missing required claim {c}")),
            TokenError::UnknownKeyId => "unknown key id",
            TokenError::AlgorithmNotAllowed => "algorithm not allowed",
            TokenError::NoKeys => "signing keys are not available",
        })
    }

    fn from_jwt(e: &jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
            _ => TokenError::Malformed,
        }
    }
}

/// A verification result, cached until the token expires or the remote key set changes.
pub(super) struct Verified {
    pub(super) claims: Arc<Value>,
    pub(super) consumer: Option<Arc<Consumer>>,
    pub(super) exp: Option<u64>,
    pub(super) generation: u64,
}

impl Jwt {
    fn generation(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation.load(Ordering::Acquire))
    }

    /// Checks `token` and returns what it proves, from the cache when it was seen before.
    pub(super) async fn verify(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let key = digest(token.as_bytes());
        if let Some(v) = self.verified.get(&key) {
            // Saturating: a token may carry any `exp` up to `u64::MAX`.
            let live =
                v.exp.is_none_or(|exp| jsonwebtoken::get_current_timestamp() <= exp.saturating_add(self.leeway_s));
            if live && v.generation == self.generation() {
                return Ok(v);
            }
            self.verified.remove(&key);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .map(|(_, v)| v)
            .ok_or(TokenError::AlgorithmNotAllowed)?;
        let generation = self.generation();
        let claims = if header.alg.family() == AlgorithmFamily::Hmac {
            let hmac = self.hmac.as_ref().ok_or(TokenError::AlgorithmNotAllowed)?;
            decode_with(token, [hmac], validation)?
        } else {
            self.decode_asymmetric(token, header.alg, header.kid.as_deref(), validation).await?
        };
        for name in &self.required {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(TokenError::MissingClaim(name.clone()));
            }
        }
        let consumer = claims.get("sub").and_then(Value::as_str).map(|sub| {
            self.consumers
                .get(sub)
                .cloned()
                .unwrap_or_else(|| Arc::new(Consumer { name: sub.to_string(), ..Default::default() }))
        });
        let exp = claims.get("exp").and_then(|e| e.as_u64().or_else(|| e.as_f64().map(|f| f as u64)));
        let verified = Arc::new(Verified { claims: Arc::new(claims), consumer, exp, generation });
        self.verified.insert(key, verified.clone());
        Ok(verified)
    }

    /// Verifies with the key named by `kid` (fetching the JWKS URL again, rate-limited, when no
    /// key has that id), or with every key that fits `alg` when the token names none.
    async fn decode_asymmetric(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
        validation: &Validation,
    ) -> Result<Value, TokenError> {
        if let Some(remote) = &self.remote {
            remote.start();
            let known = kid.is_none_or(|kid| self.local.has_kid(kid) || remote.keys.load().has_kid(kid));
            if !remote.loaded.load(Ordering::Acquire) || !known {
                remote.refetch().await;
            }
        }
        let remote = self.remote.as_ref().map(|r| r.keys.load_full());
        let sets = [Some(&self.local), remote.as_deref()];
        let sets = sets.iter().flatten();
        match kid {
            Some(kid) => {
                let named: Vec<&Key> = sets.clone().flat_map(|s| s.by_kid(kid, alg)).collect();
                if !named.is_empty() {
                    return decode_with(token, named.iter().map(|k| &k.key), validation);
                }
                if sets.clone().any(|s| s.has_kid(kid)) {
                    // The key exists but is for another algorithm.
                    return Err(TokenError::AlgorithmNotAllowed);
                }
                // A key set without ids (a PEM file) may still have signed it.
                let anonymous: Vec<&Key> = sets.flat_map(|s| s.without_kid(alg)).collect();
                if anonymous.is_empty() {
                    // Say so when the key set could not be fetched yet, rather than blame the kid.
                    let unloaded = self.remote.as_ref().is_some_and(|r| !r.loaded.load(Ordering::Acquire));
                    return Err(if unloaded && self.local.keys.is_empty() {
                        TokenError::NoKeys
                    } else {
                        TokenError::UnknownKeyId
                    });
                }
                decode_with(token, anonymous.iter().map(|k| &k.key), validation)
            }
            None => {
                let all: Vec<&Key> = sets.flat_map(|s| s.all(alg)).collect();
                if all.is_empty() {
                    return Err(TokenError::NoKeys);
                }
                decode_with(token, all.iter().map(|k| &k.key), validation)
            }
        }
    }
}

/// Tries each key; the first whose signature matches decides. A claim error (expired, wrong
/// audience) after a good signature is final.
fn decode_with<'k>(
    token: &str,
    keys: impl IntoIterator<Item = &'k DecodingKey>,
    validation: &Validation,
) -> Result<Value, TokenError> {
    let mut last = TokenError::BadSignature;
    for key in keys {
        match jsonwebtoken::decode::<Value>(token, key, validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => match TokenError::from_jwt(&e) {
                err @ (TokenError::BadSignature | TokenError::AlgorithmNotAllowed) => last = err,
                err => return Err(err),
            },
        }
    }
    Err(last)
}
