//! `jwt`: verify a JSON Web Token (signature, `exp`, `nbf`, `iss`, `aud`, required claims) and
//! identify the caller by its `sub`; answer 401 otherwise.
//!
//! ```yaml
//! - jwt: {jwks_file: jwks.json, issuer: https://issuer.example, audience: api, leeway_s: 30,
//!         from: {header: authorization, cookie: token}, forward_claims: {sub: x-user-id}}
//! - jwt: {secret: "${JWT_SECRET}", algorithms: [HS256]}
//! - jwt: {jwks_url: "https://issuer.example/.well-known/jwks.json", jwks_refresh_s: 300}
//! ```
//! Keys: `secret` (HMAC), `public_key_file` (an RSA, EC or Ed25519 public key in PEM),
//! `jwks_file`, and `jwks_url`, fetched on first use and then every `jwks_refresh_s` in the
//! background; a token whose `kid` is unknown makes Portico fetch the set again (at most once
//! every 5 seconds), which is how key rotation is picked up. A failed fetch keeps the keys it
//! had, and a reload keeps the last good set of each URL (a filter rebuilt while the identity
//! provider is down starts from it). Relative files resolve like every
//! path in the config (beside the config file, else from the working directory).
//!
//! The token is read from `Authorization: Bearer ...`, then the cookie, then the query parameter
//! named in `from` (by default only the `Authorization` header). On success the consumer is the
//! one named by `sub` (or a consumer of that name that has no other settings), the claims are
//! left for later filters as [`JwtClaims`], and `forward_claims` copies claims into upstream
//! request headers (replacing any the client sent). Verified tokens are remembered until they
//! expire (bounded, keyed by the token's SHA-256), so a client reusing its token pays one hash.
//!
//! The parts: `config.rs` builds the filter from its config, `keys.rs` reads PEM and JWKS keys,
//! `jwks.rs` keeps a JWKS URL fresh, `verify.rs` checks a token against them, `claims.rs` hands
//! the claims on (to later filters and to upstream headers); this file finds the token and runs
//! the phases.

mod claims;
mod config;
mod jwks;
mod keys;
mod verify;

#[cfg(test)]
mod tests;

pub use claims::JwtClaims;
pub use config::{JwtConfig, OneOrMany, TokenFromConfig, MAX_LEEWAY_S};

use crate::credentials::{cookie, query_param, VerifiedCache};
use crate::{Consumer, Filter, Flow, Reject, RequestCtx, RequestHeader, Session};
use async_trait::async_trait;
use http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use http::HeaderName;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use jwks::Remote;
use keys::KeySet;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use verify::{TokenError, Verified};

/// How many verified tokens are remembered.
const CACHE_ENTRIES: usize = 10_000;

// === impl Jwt ===

/// Where the token is read from, compiled.
#[derive(Debug)]
struct TokenFrom {
    header: Option<HeaderName>,
    cookie: Option<String>,
    query: Option<String>,
}

/// The `jwt` filter.
pub struct Jwt {
    hmac: Option<DecodingKey>,
    /// Keys from `public_key_file` and `jwks_file`.
    local: KeySet,
    remote: Option<Arc<Remote>>,
    /// One validation per accepted algorithm (`Validation` is per algorithm).
    validations: Vec<(Algorithm, Validation)>,
    required: Vec<String>,
    leeway_s: u64,
    from: TokenFrom,
    forward: Vec<(String, HeaderName)>,
    consumers: HashMap<String, Arc<Consumer>>,
    verified: VerifiedCache<Arc<Verified>>,
    realm: String,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithms", &self.validations.iter().map(|(a, _)| a).collect::<Vec<_>>())
            .field("local_keys", &self.local.keys.len())
            .field("jwks_url", &self.remote.as_ref().map(|r| r.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl Jwt {
    fn unauthorized(&self, e: &TokenError) -> Reject {
        let message = e.message();
        let challenge = match e {
            // RFC 6750 section 3.1: no error code when the request carried no token.
            TokenError::Missing => format!("Bearer realm=\"{}\"", self.realm),
            _ => format!("Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{message}\"", self.realm),
        };
        Reject::new(401, "unauthorized", message).with_header(WWW_AUTHENTICATE, &challenge)
    }

    /// The token `req` carries, from the configured places in order.
    fn token<'r>(&self, req: &'r RequestHeader) -> Option<Cow<'r, str>> {
        let from_header = self.from.header.as_ref().and_then(|name| {
            let value = req.headers.get(name)?.to_str().ok()?.trim();
            let bearer = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            if *name == AUTHORIZATION {
                bearer
            } else {
                bearer.or(Some(value))
            }
        });
        let from_cookie = || {
            let name = self.from.cookie.as_deref()?;
            req.headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| cookie(v, name))
        };
        let from_query = || query_param(req.uri.query()?, self.from.query.as_deref()?);
        from_header
            .filter(|t| !t.is_empty())
            .or_else(|| from_cookie().filter(|t| !t.is_empty()))
            .map(Cow::Borrowed)
            .or_else(|| from_query().filter(|t| !t.is_empty()))
    }

    /// Finds the token of `req`, verifies it and returns the consumer and claims it proves (the
    /// filter's `request` phase is this plus storing the result).
    async fn authenticate(&self, req: &RequestHeader) -> Result<(Option<Arc<Consumer>>, JwtClaims), Reject> {
        let token = self.token(req).ok_or_else(|| self.unauthorized(&TokenError::Missing))?;
        match self.verify(&token).await {
            Ok(v) => Ok((v.consumer.clone(), JwtClaims(v.claims.clone()))),
            Err(e) => Err(self.unauthorized(&e)),
        }
    }
}

#[async_trait]
impl Filter for Jwt {
    fn secret_query_params(&self) -> Vec<String> {
        self.from.query.iter().cloned().collect()
    }

    /// The `forward_claims` headers: an upstream takes them for verified claims.
    fn sets_request_headers(&self) -> Vec<HeaderName> {
        self.forward.iter().map(|(_, header)| header.clone()).collect()
    }

    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        match self.authenticate(session.req_header()).await {
            Ok((consumer, claims)) => {
                if consumer.is_some() {
                    ctx.consumer = consumer;
                }
                ctx.state.insert(claims);
                Ok(Flow::Continue)
            }
            Err(reject) => Ok(Flow::Reject(reject)),
        }
    }

    fn upstream_request(&self, request: &mut RequestHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        if self.forward.is_empty() {
            return Ok(());
        }
        self.forward_claims(request, ctx.state.get::<JwtClaims>())
    }
}
