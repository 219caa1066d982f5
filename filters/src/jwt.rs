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
//! every 5 seconds), which is how key rotation is picked up. Relative files resolve like every
//! path in the config (beside the config file, else from the working directory).
//!
//! The token is read from `Authorization: Bearer ...`, then the cookie, then the query parameter
//! named in `from` (by default only the `Authorization` header). On success the consumer is the
//! one named by `sub` (or a consumer of that name that has no other settings), the claims are
//! left for later filters as [`JwtClaims`], and `forward_claims` copies claims into upstream
//! request headers (replacing any the client sent). Verified tokens are remembered until they
//! expire (bounded, keyed by the token's SHA-256), so a client reusing its token pays one hash.

use crate::credentials::{cookie, digest, query_param, VerifiedCache};
use crate::{
    BuildContext, BuildError, Consumer, Filter, FilterFactory, Flow, Reject, RequestCtx, RequestHeader, Session,
};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How many verified tokens are remembered.
const CACHE_ENTRIES: usize = 10_000;
/// Fetches of a JWKS URL triggered by requests are at least this far apart.
const MIN_REFETCH: Duration = Duration::from_secs(5);
/// Longest a JWKS fetch may take, connecting included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The claims of the verified token, put in [`RequestCtx::state`] for later filters (`acl`).
#[derive(Debug, Clone)]
pub struct JwtClaims(pub Arc<Value>);

impl JwtClaims {
    /// Wraps a claims object.
    pub fn new(claims: Value) -> Self {
        JwtClaims(Arc::new(claims))
    }

    /// The claim called `name`, if the token has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

// === config ===

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
    /// Clock skew allowed for `exp` and `nbf`, in seconds; 30 by default.
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

fn default_leeway() -> u64 {
    30
}

fn default_refresh() -> u64 {
    300
}

fn default_realm() -> String {
    "portico".to_string()
}

// === errors ===

/// Why a token was refused; each becomes a 401 with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenError {
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
    fn message(&self) -> Cow<'static, str> {
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

// === keys ===

/// One verification key.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    /// The JWK's `alg`, when it names one: the key is used for that algorithm only.
    alg: Option<Algorithm>,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// A set of keys, looked up by `kid`.
#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
    /// SHA-256 of the document it came from, to notice when a refetch changed nothing.
    source: [u8; 32],
}

impl KeySet {
    fn by_kid<'a>(&'a self, kid: &'a str, alg: Algorithm) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| k.kid.as_deref() == Some(kid) && k.fits(alg))
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    fn without_kid(&self, alg: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.kid.is_none() && k.fits(alg))
    }

    fn all(&self, alg: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.fits(alg))
    }

    /// Parses a JWKS document; keys that are not for signatures, are symmetric or cannot be
    /// read are skipped (and named in the log), so one odd key does not hide the others.
    fn from_jwks(doc: &[u8], origin: &str) -> Result<KeySet, String> {
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
fn key_from_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<DecodingKey, String> {
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

// === impl Remote ===

/// A JWKS URL: the latest key set, and the bookkeeping that keeps it fresh.
struct Remote {
    url: String,
    uri: http::Uri,
    refresh: Duration,
    keys: ArcSwap<KeySet>,
    /// Bumped whenever the key set changes, so cached verifications made with old keys lapse.
    generation: AtomicU64,
    loaded: AtomicBool,
    /// When the last fetch started, in ms since the Unix epoch (0: never).
    last_attempt_ms: AtomicU64,
    in_flight: AtomicBool,
    fetched: Notify,
    task_started: AtomicBool,
}

/// Clears `in_flight` and wakes the waiters however a fetch ends (even if its request is
/// dropped midway).
struct FlightGuard<'a>(&'a Remote);

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.store(false, Ordering::Release);
        self.0.fetched.notify_waiters();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a call to [`Remote::refetch`] did.
#[derive(Debug, PartialEq, Eq)]
enum Fetched {
    Ok,
    Failed,
    /// Another fetch was running (and was waited for), or one ran too recently.
    Skipped,
}

impl Remote {
    fn new(url: String, refresh: Duration) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("must start with http:// or https://".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        Ok(Remote {
            url,
            uri,
            refresh,
            keys: ArcSwap::from_pointee(KeySet::default()),
            generation: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            last_attempt_ms: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            fetched: Notify::new(),
            task_started: AtomicBool::new(false),
        })
    }

    /// Starts the background refresh on the current runtime, once. It holds only a weak
    /// reference, so it ends when the filter is dropped (config reload).
    fn start(self: &Arc<Self>) {
        if self.task_started.load(Ordering::Relaxed) || self.task_started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(refresh_loop(Arc::downgrade(self)));
            }
            Err(_) => self.task_started.store(false, Ordering::Release),
        }
    }

    /// Fetches the key set unless a fetch started less than [`MIN_REFETCH`] ago; when one is
    /// already running, waits for it instead.
    async fn refetch(&self) -> Fetched {
        let notified = self.fetched.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.in_flight.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            let _ = tokio::time::timeout(FETCH_TIMEOUT, notified).await;
            return Fetched::Skipped;
        }
        let _guard = FlightGuard(self);
        let now = now_ms();
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < MIN_REFETCH.as_millis() as u64 {
            return Fetched::Skipped;
        }
        self.last_attempt_ms.store(now, Ordering::Release);
        let result = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&self.uri)).await {
            Ok(r) => r,
            Err(_) => Err("timed out".into()),
        };
        match result.and_then(|body| KeySet::from_jwks(&body, &self.url)) {
            Ok(set) => {
                self.install(set);
                Fetched::Ok
            }
            Err(e) => {
                log::warn!("jwt: fetching {} failed: {e}", self.url);
                Fetched::Failed
            }
        }
    }

    fn install(&self, set: KeySet) {
        if self.loaded.load(Ordering::Acquire) && self.keys.load().source == set.source {
            return;
        }
        log::info!("jwt: loaded {} key(s) from {}", set.keys.len(), self.url);
        self.keys.store(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.loaded.store(true, Ordering::Release);
    }
}

async fn refresh_loop(remote: Weak<Remote>) {
    let mut failures = 0u32;
    loop {
        let Some(r) = remote.upgrade() else { return };
        match r.refetch().await {
            Fetched::Failed => failures = failures.saturating_add(1),
            Fetched::Ok | Fetched::Skipped => failures = 0,
        }
        // After a failure, retry sooner: 5 s, 10 s, 20 s, ... up to the refresh interval.
        let wait =
            if failures == 0 { r.refresh } else { r.refresh.min(MIN_REFETCH.saturating_mul(1 << failures.min(6)) / 2) };
        drop(r);
        tokio::time::sleep(wait.max(MIN_REFETCH)).await;
    }
}

/// One HTTP/1.1 GET with Pingora's client (TLS with the system's trust store for `https`).
async fn fetch(uri: &http::Uri) -> Result<Vec<u8>, String> {
    use pingora::connectors::http::v1::Connector;
    use pingora::upstreams::peer::HttpPeer;

    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut peer = HttpPeer::new(addr, tls, host.to_string());
    peer.options.connection_timeout = Some(Duration::from_secs(5));
    peer.options.total_connection_timeout = Some(Duration::from_secs(5));
    peer.options.read_timeout = Some(FETCH_TIMEOUT);
    peer.options.write_timeout = Some(FETCH_TIMEOUT);

    let connector = Connector::new(None);
    let (mut http, _) = connector.get_http_session(&peer).await.map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| e.to_string())?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    for (name, value) in
        [("host", authority), ("accept", "application/json"), ("user-agent", "portico"), ("connection", "close")]
    {
        req.insert_header(name, value).map_err(|e| e.to_string())?;
    }
    http.write_request_header(Box::new(req)).await.map_err(|e| e.to_string())?;
    http.read_response().await.map_err(|e| e.to_string())?;
    let status = http.resp_header().map_or(0, |r| r.status.as_u16());
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = http.read_body_ref().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(chunk);
    }
    http.shutdown().await;
    Ok(body)
}

// === impl Jwt ===

/// Where the token is read from, compiled.
#[derive(Debug)]
struct TokenFrom {
    header: Option<HeaderName>,
    cookie: Option<String>,
    query: Option<String>,
}

/// A verification result, cached until the token expires or the remote key set changes.
struct Verified {
    claims: Arc<Value>,
    consumer: Option<Arc<Consumer>>,
    exp: Option<u64>,
    generation: u64,
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

    fn generation(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation.load(Ordering::Acquire))
    }

    /// Checks `token` and returns what it proves, from the cache when it was seen before.
    async fn verify(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let key = digest(token.as_bytes());
        if let Some(v) = self.verified.get(&key) {
            let live = v.exp.is_none_or(|exp| jsonwebtoken::get_current_timestamp() <= exp + self.leeway_s);
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

    /// Finds the token of `req`, verifies it and returns the consumer and claims it proves (the
    /// filter's `request` phase is this plus storing the result; benchmarks call it directly).
    pub async fn authenticate(&self, req: &RequestHeader) -> Result<(Option<Arc<Consumer>>, JwtClaims), Reject> {
        let token = self.token(req).ok_or_else(|| self.unauthorized(&TokenError::Missing))?;
        match self.verify(&token).await {
            Ok(v) => Ok((v.consumer.clone(), JwtClaims(v.claims.clone()))),
            Err(e) => Err(self.unauthorized(&e)),
        }
    }

    /// Sets the `forward_claims` headers on the upstream request from `claims`, removing any
    /// the client sent.
    fn forward_claims(&self, request: &mut RequestHeader, claims: Option<&JwtClaims>) -> pingora::Result<()> {
        for (claim, header) in &self.forward {
            request.remove_header(header);
            let value = match claims.and_then(|c| c.get(claim)) {
                Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
                Some(Value::Number(n)) => Cow::Owned(n.to_string()),
                Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
                _ => continue,
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                request.insert_header(header.clone(), value)?;
            }
        }
        Ok(())
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

#[async_trait]
impl Filter for Jwt {
    fn secret_query_params(&self) -> Vec<String> {
        self.from.query.iter().cloned().collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::path::{Path, PathBuf};

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
    }

    fn consumers() -> Vec<Arc<Consumer>> {
        vec![Arc::new(Consumer { name: "alice".into(), groups: vec!["partners".into()], ..Default::default() })]
    }

    fn build(yaml: &str) -> Result<Jwt, BuildError> {
        let cfg: JwtConfig = serde_yaml::from_str(yaml).expect("test yaml parses");
        let consumers = consumers();
        let dir = testdata();
        Jwt::build(cfg, &BuildContext { consumers: &consumers, base_dir: &dir, redis_url: None, place: "" })
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs256(secret: &str, claims: Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
    }

    fn signed(alg: Algorithm, kid: Option<&str>, key_file: &str, claims: Value) -> String {
        let pem = std::fs::read(testdata().join(key_file)).expect("test key");
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&pem),
            AlgorithmFamily::Hmac => unreachable!("not a key file"),
        }
        .expect("test key parses");
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, &claims, &key).expect("sign")
    }

    fn bearer(token: &str) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("authorization", format!("Bearer {token}")).expect("header");
        req
    }

    async fn refusal(f: &Jwt, req: &RequestHeader) -> (String, String) {
        let r = f.authenticate(req).await.expect_err("refused");
        assert_eq!((r.status, r.error), (401, "unauthorized"));
        let challenge = r.headers.iter().find(|(n, _)| n == WWW_AUTHENTICATE).expect("challenge").1.clone();
        (r.message.into_owned(), challenge.to_str().expect("ascii").to_string())
    }

    #[tokio::test]
    async fn hmac_token_identifies_the_consumer_and_forwards_claims() {
        let f = build("{secret: s3cret, forward_claims: {sub: x-user-id, level: x-level}}").expect("valid");
        let token = hs256("s3cret", json!({"sub": "alice", "exp": now() + 60, "level": 3}));
        let (consumer, claims) = f.authenticate(&bearer(&token)).await.expect("valid token");
        let consumer = consumer.expect("sub");
        assert_eq!(consumer.name, "alice");
        assert_eq!(consumer.groups, ["partners"], "the configured consumer");
        assert_eq!(claims.get("level"), Some(&json!(3)));

        let mut upstream = RequestHeader::build("GET", b"/", None).expect("request");
        upstream.insert_header("x-user-id", "spoofed").expect("header");
        f.forward_claims(&mut upstream, Some(&claims)).expect("forward");
        assert_eq!(upstream.headers.get("x-user-id").map(|v| v.as_bytes()), Some(&b"alice"[..]));
        assert_eq!(upstream.headers.get("x-level").map(|v| v.as_bytes()), Some(&b"3"[..]));
        // Without claims, a client's header is still removed.
        let mut upstream = RequestHeader::build("GET", b"/", None).expect("request");
        upstream.insert_header("x-user-id", "spoofed").expect("header");
        f.forward_claims(&mut upstream, None).expect("forward");
        assert!(upstream.headers.get("x-user-id").is_none());

        // An unknown subject becomes a bare consumer of that name.
        let token = hs256("s3cret", json!({"sub": "bob", "exp": now() + 60}));
        let (consumer, _) = f.authenticate(&bearer(&token)).await.expect("valid token");
        assert_eq!(consumer.expect("sub").name, "bob");
    }

    #[tokio::test]
    async fn each_refusal_says_why() {
        let f = build("{secret: s3cret, issuer: https://issuer.example, audience: [api, web], leeway_s: 30, required_claims: [exp, role]}")
            .expect("valid");
        let ok = json!({"iss": "https://issuer.example", "aud": "api", "role": "x"});
        let with = |extra: Value| {
            let mut c = ok.clone();
            c.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            c
        };
        let good = hs256("s3cret", with(json!({"exp": now() + 60})));
        f.authenticate(&bearer(&good)).await.expect("valid");
        // Inside the leeway.
        let skewed = hs256("s3cret", with(json!({"exp": now() - 10, "nbf": now() + 10})));
        f.authenticate(&bearer(&skewed)).await.expect("within leeway");

        let cases = [
            (hs256("s3cret", with(json!({"exp": now() - 100}))), "token expired"),
            (hs256("s3cret", with(json!({"exp": now() + 600, "nbf": now() + 300}))), "token not yet valid"),
            (hs256("other", with(json!({"exp": now() + 60}))), "invalid signature"),
            (hs256("s3cret", with(json!({"exp": now() + 60, "aud": "else"}))), "wrong audience"),
            (hs256("s3cret", with(json!({"exp": now() + 60, "iss": "https://evil"}))), "wrong issuer"),
            (
                hs256("s3cret", json!({"exp": now() + 60, "iss": "https://issuer.example", "aud": "api"})),
                "missing required claim role",
            ),
            (
                hs256("s3cret", json!({"iss": "https://issuer.example", "aud": "api", "role": "x"})),
                "missing required claim exp",
            ),
            (hs256("s3cret", json!({"exp": now() + 60, "aud": "api", "role": "x"})), "missing required claim iss"),
            ("not-a-token".to_string(), "malformed token"),
            ("a.b.c".to_string(), "malformed token"),
        ];
        for (token, expected) in cases {
            let (message, challenge) = refusal(&f, &bearer(&token)).await;
            assert_eq!(message, expected);
            assert_eq!(
                challenge,
                format!("Bearer realm=\"portico\", error=\"invalid_token\", error_description=\"{expected}\"")
            );
        }
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &with(json!({"exp": now() + 60})),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("sign");
        let f256 = build("{secret: s3cret, algorithms: [HS256]}").expect("valid");
        assert_eq!(refusal(&f256, &bearer(&hs384)).await.0, "algorithm not allowed");

        let (message, challenge) = refusal(&f, &RequestHeader::build("GET", b"/", None).expect("req")).await;
        assert_eq!((message.as_str(), challenge.as_str()), ("missing token", "Bearer realm=\"portico\""));
        let mut basic = RequestHeader::build("GET", b"/", None).expect("req");
        basic.insert_header("authorization", "Basic YTpi").expect("header");
        assert_eq!(refusal(&f, &basic).await.0, "missing token");
    }

    #[tokio::test]
    async fn token_sources_in_order() {
        let f = build("{secret: k, from: {header: authorization, cookie: token, query: access_token}}").expect("valid");
        let good = hs256("k", json!({"sub": "alice", "exp": now() + 60}));
        let bad = hs256("wrong", json!({"sub": "alice", "exp": now() + 60}));
        let req = |uri: String, cookie: Option<String>| {
            let mut r = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
            if let Some(c) = cookie {
                r.insert_header("cookie", c).expect("header");
            }
            r
        };
        f.authenticate(&req("/".into(), Some(format!("a=1; token={good}")))).await.expect("cookie");
        f.authenticate(&req(format!("/?x=1&access_token={good}"), None)).await.expect("query");
        // The cookie comes before the query.
        let both = req(format!("/?access_token={good}"), Some(format!("token={bad}")));
        assert_eq!(refusal(&f, &both).await.0, "invalid signature");
        // The header comes first of all.
        let mut r = req(format!("/?access_token={bad}"), Some(format!("token={bad}")));
        r.insert_header("authorization", format!("bearer {good}")).expect("header");
        f.authenticate(&r).await.expect("header first");

        // A custom header may carry the bare token; other sources are off unless configured.
        let f = build("{secret: k, from: {header: x-token}}").expect("valid");
        let mut r = RequestHeader::build("GET", format!("/?token={good}").as_bytes(), None).expect("request");
        assert_eq!(refusal(&f, &r).await.0, "missing token");
        r.insert_header("x-token", good.as_str()).expect("header");
        f.authenticate(&r).await.expect("bare token");
    }

    #[tokio::test]
    async fn jwks_file_keys_by_kid() {
        let f = build("{jwks_file: jwks.json, forward_claims: {sub: x-user-id}}").expect("valid");
        assert_eq!(f.local.keys.len(), 2, "the encryption key is skipped");
        let claims = json!({"sub": "svc", "exp": now() + 60});
        let rs = signed(Algorithm::RS256, Some("test-rsa"), "rsa.key", claims.clone());
        f.authenticate(&bearer(&rs)).await.expect("RS256 by kid");
        let es = signed(Algorithm::ES256, Some("test-ec"), "ec.key", claims.clone());
        f.authenticate(&bearer(&es)).await.expect("ES256 by kid");
        let no_kid = signed(Algorithm::ES256, None, "ec.key", claims.clone());
        f.authenticate(&bearer(&no_kid)).await.expect("ES256 without kid");
        let unknown = signed(Algorithm::RS256, Some("rotated-away"), "rsa.key", claims.clone());
        assert_eq!(refusal(&f, &bearer(&unknown)).await.0, "unknown key id");
        // The JWK says RS256 only.
        let ps = signed(Algorithm::PS256, Some("test-rsa"), "rsa.key", claims.clone());
        assert_eq!(refusal(&f, &bearer(&ps)).await.0, "algorithm not allowed");
        // An HMAC token signed with the RSA public key must not pass (algorithm confusion).
        let public = std::fs::read(testdata().join("rsa.pub")).expect("pub");
        let forged = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&public)).expect("sign");
        assert_eq!(refusal(&f, &bearer(&forged)).await.0, "algorithm not allowed");
    }

    #[tokio::test]
    async fn pem_public_keys_of_each_family() {
        let claims = json!({"sub": "svc", "exp": now() + 60});
        let f = build("{public_key_file: rsa.pub, algorithms: [RS256, PS384]}").expect("valid");
        f.authenticate(&bearer(&signed(Algorithm::PS384, None, "rsa.key", claims.clone()))).await.expect("PS384");
        // A PEM key has no id, so any kid is accepted for it.
        f.authenticate(&bearer(&signed(Algorithm::RS256, Some("k1"), "rsa.key", claims.clone()))).await.expect("RS256");
        let f = build("{public_key_file: ec.pub, algorithms: [ES256]}").expect("valid");
        f.authenticate(&bearer(&signed(Algorithm::ES256, None, "ec.key", claims.clone()))).await.expect("ES256");
        let f = build("{public_key_file: ed.pub, algorithms: [EdDSA]}").expect("valid");
        f.authenticate(&bearer(&signed(Algorithm::EdDSA, None, "ed.key", claims.clone()))).await.expect("EdDSA");
        // Signed by another key of the same family.
        let f = build("{public_key_file: ec.pub}").expect("valid");
        let other = EncodingKey::from_ed_pem(&std::fs::read(testdata().join("ed.key")).expect("key")).expect("key");
        let ed = encode(&Header::new(Algorithm::EdDSA), &claims, &other).expect("sign");
        assert_eq!(refusal(&f, &bearer(&ed)).await.0, "signing keys are not available");
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_until_they_expire() {
        let f = build("{secret: k}").expect("valid");
        let token = hs256("k", json!({"sub": "alice", "exp": now() + 60}));
        f.authenticate(&bearer(&token)).await.expect("valid");
        assert_eq!(f.verified.len(), 1);
        f.authenticate(&bearer(&token)).await.expect("cached");
        assert_eq!(f.verified.len(), 1);
        // An entry past its expiry is not used (this one would otherwise hide a malformed token).
        let stale =
            Arc::new(Verified { claims: Arc::new(json!({})), consumer: None, exp: Some(now() - 100), generation: 0 });
        f.verified.insert(digest(b"x.y.z"), stale);
        assert_eq!(refusal(&f, &bearer("x.y.z")).await.0, "malformed token");
        assert_eq!(f.verified.len(), 1);
    }

    #[tokio::test]
    async fn remote_fetches_are_rate_limited() {
        let remote = Remote::new("http://127.0.0.1:9/jwks".into(), Duration::from_secs(300)).expect("valid url");
        remote.last_attempt_ms.store(now_ms(), Ordering::Release);
        // Within 5 s of the last attempt: no fetch at all (so no socket here).
        assert_eq!(remote.refetch().await, Fetched::Skipped);
        assert!(!remote.loaded.load(Ordering::Acquire));
        let doc = std::fs::read(testdata().join("jwks.json")).expect("jwks");
        remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
        assert_eq!(remote.generation.load(Ordering::Acquire), 1);
        remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
        assert_eq!(remote.generation.load(Ordering::Acquire), 1, "unchanged set keeps the generation");
    }

    #[tokio::test]
    async fn remote_key_set_rotation() {
        let f = build("{jwks_url: 'http://127.0.0.1:9/jwks.json'}").expect("valid");
        let remote = f.remote.clone().expect("remote");
        // A fetch just "happened", so none is made here (and no socket is opened).
        remote.last_attempt_ms.store(now_ms(), Ordering::Release);
        let claims = json!({"sub": "svc", "exp": now() + 60});
        let token = signed(Algorithm::RS256, Some("test-rsa"), "rsa.key", claims.clone());
        assert_eq!(refusal(&f, &bearer(&token)).await.0, "signing keys are not available");

        let doc = std::fs::read(testdata().join("jwks.json")).expect("jwks");
        remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
        f.authenticate(&bearer(&token)).await.expect("key from the remote set");
        let unknown = signed(Algorithm::RS256, Some("next"), "rsa.key", claims.clone());
        assert_eq!(refusal(&f, &bearer(&unknown)).await.0, "unknown key id");

        // The key is rotated away: the cached verification lapses with the old set.
        let only_ec = br#"{"keys": [{"kty": "EC", "kid": "e", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        remote.install(KeySet::from_jwks(only_ec, "test").expect("parses"));
        assert_eq!(refusal(&f, &bearer(&token)).await.0, "unknown key id");
    }

    #[test]
    fn jwks_documents_skip_keys_they_cannot_use() {
        let doc = br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "alg": "XYZ", "n": "AQ", "e": "AQAB"},
                       {"kty": "EC", "kid": "e", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let set = KeySet::from_jwks(doc, "test").expect("one usable key");
        assert_eq!(set.keys.len(), 1);
        assert!(KeySet::from_jwks(br#"{"keys": []}"#, "test").is_err());
        assert!(KeySet::from_jwks(b"[]", "test").is_err());
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = build("{}").expect_err("no key source");
        assert!(err.message.contains("key source"), "{}", err.message);
        let err = build("{secret: s, algorithms: [RS256]}").expect_err("secret with RS256");
        assert_eq!(err.path, "algorithms[0]");
        let err = build("{jwks_file: missing.json}").expect_err("missing file");
        assert_eq!(err.path, "jwks_file");
        assert!(err.message.contains("missing.json"), "{}", err.message);
        let err = build("{public_key_file: /nonexistent/k.pem}").expect_err("missing file");
        assert_eq!(err.path, "public_key_file");
        assert!(err.message.contains("/nonexistent/k.pem"));
        assert_eq!(
            build("{public_key_file: ec.pub, algorithms: [RS256]}").expect_err("wrong family").path,
            "public_key_file"
        );
        assert_eq!(build("{secret: s, algorithms: [HS999]}").expect_err("unknown").path, "algorithms[0]");
        assert_eq!(build("{jwks_file: jwks.json, algorithms: [HS256]}").expect_err("no secret").path, "algorithms[0]");
        assert_eq!(build("{jwks_url: 'ftp://x/jwks'}").expect_err("scheme").path, "jwks_url");
        assert_eq!(build("{secret: s, from: {}}").expect_err("no source").path, "from");
        assert_eq!(
            build("{secret: s, forward_claims: {sub: 'bad header'}}").expect_err("bad").path,
            "forward_claims.sub"
        );
        assert!(serde_yaml::from_str::<JwtConfig>("{secret: s, audiance: x}").is_err());
        assert!(build("{jwks_url: 'http://127.0.0.1:9/jwks', jwks_file: jwks.json, issuer: i, audience: a}").is_ok());
    }
}
