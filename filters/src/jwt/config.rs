//! The `jwt` filter's config, and its validation into a [`Jwt`]: algorithms checked against
//! the key sources, key files read, claims and token sources compiled.

use super::jwks::Remote;
use super::keys::{key_from_pem, Key, KeySet};
use super::{Jwt, TokenFrom, CACHE_ENTRIES};
use crate::credentials::VerifiedCache;
use crate::{BuildContext, BuildError, FilterFactory};
use http::HeaderName;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The `jwt` filter's config. At least one of `secret`, `public_key_file`, `jwks_file` and
/// `jwks_url` must be set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// HMAC secret (for HS256/384/512); use `${ENV}` rather than writing it in the file.
    #[serde(default)]
    pub secret: Option<String>,
    /// PEM file with an RSA, EC (P-256/P-384) or Ed25519 public key.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// JSON Web Key Set file.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// JSON Web Key Set URL (`http://` or `https://`), fetched in the background.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accepted `alg` values; by default the HMAC ones when `secret` is set and every
    /// RSA/PSS/EC/EdDSA one when a public key source is set.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Required `iss` (one value or a list); not checked when unset.
    #[serde(default)]
    pub issuer: Option<OneOrMany>,
    /// Required `aud` (one value or a list, any of which may match); not checked when unset.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Clock skew allowed for `exp` and `nbf`, in seconds; 30 by default, at most
    /// [`MAX_LEEWAY_S`] (a day).
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Where the token is read from; `{header: authorization}` by default.
    #[serde(default)]
    pub from: Option<TokenFromConfig>,
    /// Claims copied into upstream request headers: `{claim: header-name}`.
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    /// Claims a token must have; `[exp]` by default (set `[]` to accept tokens that never
    /// expire).
    #[serde(default)]
    pub required_claims: Option<Vec<String>>,
    /// Seconds between background fetches of `jwks_url`; 300 by default.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_s: u64,
    /// The realm named in `WWW-Authenticate`; `portico` by default.
    #[serde(default = "default_realm")]
    pub realm: String,
}

pub use crate::registry::OneOrMany;

/// `from: {header: authorization, cookie: token, query: token}`: each source is optional and
/// they are tried in this order.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFromConfig {
    /// Header carrying `Bearer <token>` (or, for a header other than `authorization`, the bare
    /// token).
    #[serde(default)]
    pub header: Option<String>,
    /// Cookie carrying the token.
    #[serde(default)]
    pub cookie: Option<String>,
    /// Query parameter carrying the token.
    #[serde(default)]
    pub query: Option<String>,
}

/// The largest `leeway_s`: a day of clock skew is already absurd, and `jsonwebtoken` computes
/// `now - leeway` and `now + leeway` unchecked (a leeway past the current time would wrap, or
/// panic in a debug build).
pub const MAX_LEEWAY_S: u64 = 86_400;

fn default_leeway() -> u64 {
    30
}

fn default_refresh() -> u64 {
    300
}

fn default_realm() -> String {
    "portico".to_string()
}

/// Reads a key file named by the `field` of the config.
fn read_file(cx: &BuildContext<'_>, field: &str, path: &str) -> Result<Vec<u8>, BuildError> {
    let full = cx.resolve(path);
    std::fs::read(&full).map_err(|e| BuildError::at(field, format!("cannot read {}: {e}", full.display())))
}

const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl FilterFactory for Jwt {
    const NAME: &'static str = "jwt";
    const SECRET_FIELDS: &'static [&'static str] = &["secret"];
    type Config = JwtConfig;

    fn build(config: JwtConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let secret = config.secret.filter(|s| !s.is_empty());
        let has_public = config.public_key_file.is_some() || config.jwks_file.is_some() || config.jwks_url.is_some();
        if secret.is_none() && !has_public {
            return Err(BuildError::whole("set a key source: `secret`, `public_key_file`, `jwks_file` or `jwks_url`"));
        }

        // Algorithms, checked against the key sources.
        let algorithms: Vec<Algorithm> = match config.algorithms {
            Some(names) => {
                if names.is_empty() {
                    return Err(BuildError::at("algorithms", "list at least one algorithm"));
                }
                let mut algs = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let at = format!("algorithms[{i}]");
                    let alg = name.parse::<Algorithm>().map_err(|_| {
                        BuildError::at(&at, format!("unknown algorithm \"{name}\" (known: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)"))
                    })?;
                    if alg.family() == AlgorithmFamily::Hmac && secret.is_none() {
                        return Err(BuildError::at(at, format!("{name} needs `secret`")));
                    }
                    if alg.family() != AlgorithmFamily::Hmac && !has_public {
                        return Err(BuildError::at(
                            at,
                            format!("{name} needs `public_key_file`, `jwks_file` or `jwks_url`; `secret` is only for HS256/384/512"),
                        ));
                    }
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                algs
            }
            None => {
                let mut algs = Vec::new();
                if secret.is_some() {
                    algs.extend_from_slice(AlgorithmFamily::Hmac.algorithms());
                }
                if has_public {
                    algs.extend_from_slice(ASYMMETRIC);
                }
                algs
            }
        };
        if secret.is_some() && !algorithms.iter().any(|a| a.family() == AlgorithmFamily::Hmac) {
            return Err(BuildError::at("secret", "set, but `algorithms` has no HS256/384/512"));
        }

        // Local keys.
        let mut local = KeySet::default();
        if let Some(path) = &config.public_key_file {
            let pem = read_file(cx, "public_key_file", path)?;
            let key = key_from_pem(&pem, &algorithms)
                .map_err(|e| BuildError::at("public_key_file", format!("{path}: {e}")))?;
            local.keys.push(Key { kid: None, key, alg: None });
        }
        if let Some(path) = &config.jwks_file {
            let doc = read_file(cx, "jwks_file", path)?;
            let set = KeySet::from_jwks(&doc, path).map_err(|e| BuildError::at("jwks_file", format!("{path}: {e}")))?;
            local.keys.extend(set.keys);
        }
        let remote = match config.jwks_url {
            Some(url) => {
                if config.jwks_refresh_s == 0 {
                    return Err(BuildError::at("jwks_refresh_s", "must be at least 1"));
                }
                let refresh = Duration::from_secs(config.jwks_refresh_s);
                Some(Arc::new(Remote::new(url, refresh).map_err(|e| BuildError::at("jwks_url", e))?))
            }
            None => None,
        };

        if config.leeway_s > MAX_LEEWAY_S {
            return Err(BuildError::at("leeway_s", format!("must be at most {MAX_LEEWAY_S} (a day)")));
        }

        // Claims.
        let required = config.required_claims.unwrap_or_else(|| vec!["exp".to_string()]);
        let issuer = config.issuer.map(OneOrMany::into_vec);
        let audience = config.audience.map(OneOrMany::into_vec);
        let mut spec: Vec<&str> =
            required.iter().map(String::as_str).filter(|c| ["exp", "nbf", "iss", "aud", "sub"].contains(c)).collect();
        if issuer.is_some() {
            spec.push("iss");
        }
        if audience.is_some() {
            spec.push("aud");
        }
        let validations = algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.leeway = config.leeway_s;
                v.validate_exp = true;
                v.validate_nbf = true;
                v.set_required_spec_claims(&spec);
                match &audience {
                    Some(aud) => v.set_audience(aud),
                    None => v.validate_aud = false,
                }
                if let Some(iss) = &issuer {
                    v.set_issuer(iss);
                }
                (alg, v)
            })
            .collect();

        // Where the token comes from, and where claims go.
        let from =
            config.from.unwrap_or(TokenFromConfig { header: Some("authorization".into()), ..Default::default() });
        if from.header.is_none() && from.cookie.is_none() && from.query.is_none() {
            return Err(BuildError::at("from", "name at least one of `header`, `cookie`, `query`"));
        }
        let from = TokenFrom {
            header: match from.header {
                Some(h) => Some(
                    HeaderName::from_bytes(h.as_bytes())
                        .map_err(|_| BuildError::at("from.header", "invalid header name"))?,
                ),
                None => None,
            },
            cookie: from.cookie,
            query: from.query,
        };
        let forward = config
            .forward_claims
            .into_iter()
            .map(|(claim, header)| {
                HeaderName::from_bytes(header.as_bytes())
                    .map(|h| (claim.clone(), h))
                    .map_err(|_| BuildError::at(format!("forward_claims.{claim}"), "invalid header name"))
            })
            .collect::<Result<_, _>>()?;
        if config.realm.contains('"') || config.realm.contains('\\') {
            return Err(BuildError::at("realm", "must not contain quotes or backslashes"));
        }

        Ok(Jwt {
            hmac: secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            local,
            remote,
            validations,
            required,
            leeway_s: config.leeway_s,
            from,
            forward,
            consumers: cx.consumers.iter().map(|c| (c.name.clone(), c.clone())).collect(),
            verified: VerifiedCache::new(CACHE_ENTRIES),
            realm: config.realm,
        })
    }
}
