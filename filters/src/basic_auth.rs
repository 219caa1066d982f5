//! `basic_auth`: identify the consumer by `Authorization: Basic base64(user:password)`, checked
//! against the consumers' bcrypt or argon2 password hashes; answer 401 otherwise.
//!
//! ```yaml
//! - basic_auth: {realm: portico}
//! consumers:
//!   - {name: ops, basic: {username: ops, password_hash: "$2b$10$..."}}   # or "$argon2id$v=19$..."
//! ```
//! Hashing is slow on purpose (milliseconds), so it runs on Tokio's blocking pool, a few at a
//! time, and each header value that verified once is remembered (by its SHA-256, in a bounded
//! cache) so a client that sends the same credentials again costs one hash and a lookup.

use crate::credentials::{digest, VerifiedCache};
use crate::{BuildContext, BuildError, Consumer, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use argon2::PasswordVerifier;
use async_trait::async_trait;
use base64::Engine;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::HeaderValue;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// How many verified header values are remembered.
const CACHE_ENTRIES: usize = 10_000;

/// The `basic_auth` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The realm named in `WWW-Authenticate`; `portico` by default.
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_realm() -> String {
    "portico".to_string()
}

/// Which scheme a stored password hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bcrypt,
    Argon2,
}

impl Scheme {
    /// Recognises and fully parses `hash`, so a bad hash is a config error, not a 401 later.
    fn of(hash: &str) -> Option<Scheme> {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            return hash.parse::<bcrypt::HashParts>().is_ok().then_some(Scheme::Bcrypt);
        }
        let parsed = argon2::PasswordHash::new(hash).ok()?;
        let known = [argon2::ARGON2ID_IDENT, argon2::ARGON2I_IDENT, argon2::ARGON2D_IDENT];
        known.contains(&parsed.algorithm).then_some(Scheme::Argon2)
    }

    /// Whether `password` matches `hash`; slow, call it off the event loop.
    fn verify(self, password: &[u8], hash: &str) -> bool {
        match self {
            Scheme::Bcrypt => bcrypt::verify(password, hash).unwrap_or(false),
            Scheme::Argon2 => argon2::Argon2::default().verify_password(password, hash).is_ok(),
        }
    }
}

/// One consumer's login.
#[derive(Debug)]
struct Login {
    scheme: Scheme,
    hash: Arc<str>,
    consumer: Arc<Consumer>,
}

/// The `basic_auth` filter.
pub struct BasicAuth {
    logins: HashMap<String, Login>,
    /// SHA-256 of an `Authorization` value that verified, to its consumer.
    verified: VerifiedCache<Arc<Consumer>>,
    /// Bounds how many hashes are computed at once, so a flood of wrong passwords cannot take
    /// every CPU.
    hashing: Semaphore,
    /// A bcrypt hash of the configured cost, checked for unknown usernames so that they take as
    /// long as wrong passwords (made on first use).
    decoy: OnceLock<Arc<str>>,
    decoy_cost: u32,
    challenge: HeaderValue,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("logins", &self.logins.len()).finish_non_exhaustive()
    }
}

/// Splits `Basic base64(user:password)` into its username and password.
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    fn unauthorized(&self, message: &'static str) -> Reject {
        let mut reject = Reject::new(401, "unauthorized", message);
        reject.headers.push((WWW_AUTHENTICATE, self.challenge.clone()));
        reject
    }

    fn decoy(&self) -> Arc<str> {
        self.decoy
            .get_or_init(|| {
                bcrypt::hash_with_salt(b"portico decoy", self.decoy_cost, [0x5a; 16])
                    .map(|h| Arc::from(h.to_string()))
                    .unwrap_or_else(|_| Arc::from(""))
            })
            .clone()
    }

    /// Finds the consumer whose credentials `authorization` (the header's value) carries, or
    /// refuses with 401.
    async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Arc<Consumer>, Reject> {
        let Some(value) = authorization.filter(|v| !v.is_empty()) else {
            return Err(self.unauthorized("missing credentials"));
        };
        let key = digest(value);
        if let Some(consumer) = self.verified.get(&key) {
            return Ok(consumer);
        }
        let Some((user, password)) = parse_basic(value) else {
            return Err(self.unauthorized("malformed basic credentials"));
        };
        let login = self.logins.get(&user);
        let (scheme, hash) = match login {
            Some(l) => (l.scheme, l.hash.clone()),
            None => (Scheme::Bcrypt, self.decoy()),
        };
        let matched = {
            let _permit = self.hashing.acquire().await;
            tokio::task::spawn_blocking(move || scheme.verify(&password, &hash)).await.unwrap_or(false)
        };
        match login {
            Some(l) if matched => {
                self.verified.insert(key, l.consumer.clone());
                Ok(l.consumer.clone())
            }
            _ => Err(self.unauthorized("invalid username or password")),
        }
    }
}

impl FilterFactory for BasicAuth {
    const NAME: &'static str = "basic_auth";
    type Config = BasicAuthConfig;

    fn build(config: BasicAuthConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if config.realm.contains('"') || config.realm.contains('\\') {
            return Err(BuildError::at("realm", "must not contain quotes or backslashes"));
        }
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\", charset=\"UTF-8\"", config.realm))
            .map_err(|_| BuildError::at("realm", "not valid in a header"))?;
        let mut logins = HashMap::new();
        let mut decoy_cost = None;
        for consumer in cx.consumers {
            let Some(basic) = &consumer.basic else {
                continue;
            };
            let scheme = Scheme::of(&basic.password_hash).ok_or_else(|| {
                BuildError::whole(format!(
                    "consumer \"{}\": basic.password_hash is not a bcrypt (\"$2b$...\") or argon2 \
                     (\"$argon2id$...\") hash",
                    consumer.name
                ))
            })?;
            if scheme == Scheme::Bcrypt && decoy_cost.is_none() {
                decoy_cost = basic.password_hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost());
            }
            let login = Login { scheme, hash: basic.password_hash.as_str().into(), consumer: consumer.clone() };
            if let Some(other) = logins.insert(basic.username.clone(), login) {
                return Err(BuildError::whole(format!(
                    "consumers \"{}\" and \"{}\" have the same basic username \"{}\"",
                    other.consumer.name, consumer.name, basic.username
                )));
            }
        }
        if logins.is_empty() {
            return Err(BuildError::whole("no consumer has `basic` credentials"));
        }
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(BasicAuth {
            logins,
            verified: VerifiedCache::new(CACHE_ENTRIES),
            hashing: Semaphore::new(parallel),
            decoy: OnceLock::new(),
            decoy_cost: decoy_cost.unwrap_or(10),
            challenge,
        })
    }
}

#[async_trait]
impl Filter for BasicAuth {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let authorization = session.req_header().headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        match self.authenticate(authorization).await {
            Ok(consumer) => {
                ctx.consumer = Some(consumer);
                Ok(Flow::Continue)
            }
            Err(reject) => Ok(Flow::Reject(reject)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::BasicCredentials;
    use crate::testkit::{self, TestRequest};
    use argon2::PasswordHasher;

    fn consumer(name: &str, user: &str, hash: String) -> Arc<Consumer> {
        Arc::new(Consumer {
            name: name.into(),
            basic: Some(BasicCredentials { username: user.into(), password_hash: hash }),
            ..Default::default()
        })
    }

    fn argon2_hash(password: &[u8]) -> String {
        let params = argon2::Params::new(8, 1, 1, None).expect("params");
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        argon.hash_password(password).expect("hash").to_string()
    }

    fn consumers() -> Vec<Arc<Consumer>> {
        vec![
            consumer("alice", "alice", bcrypt::hash("wonderland", 4).expect("hash")),
            consumer("bob", "bob", argon2_hash(b"builder")),
            Arc::new(Consumer { name: "keys-only".into(), ..Default::default() }),
        ]
    }

    fn build(consumers: &[Arc<Consumer>]) -> Result<BasicAuth, BuildError> {
        testkit::build("{realm: shop}", &testkit::context_with(consumers))
    }

    /// Runs the request phase with this `Authorization` value: the consumer it found, or its
    /// refusal.
    async fn authenticate(f: &BasicAuth, authorization: Option<&[u8]>) -> Result<Arc<Consumer>, Reject> {
        let value = authorization.map(|v| std::str::from_utf8(v).expect("test header values are text"));
        let headers: Vec<(&str, &str)> = value.map(|v| ("authorization", v)).into_iter().collect();
        let mut request = TestRequest::get("/", &headers).await;
        match request.request(f).await {
            Flow::Continue => Ok(request.ctx.consumer.clone().expect("a consumer once the login verified")),
            Flow::Reject(reject) => Err(reject),
            other => panic!("expected a consumer or a refusal, got {other:?}"),
        }
    }

    fn header(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)).into_bytes()
    }

    #[tokio::test]
    async fn bcrypt_and_argon2_logins_verify_and_are_cached() {
        let f = build(&consumers()).expect("valid");
        let alice = header("alice:wonderland");
        assert_eq!(authenticate(&f, Some(&alice)).await.expect("alice").name, "alice");
        assert_eq!(f.verified.len(), 1);
        // Second time from the cache.
        assert_eq!(authenticate(&f, Some(&alice)).await.expect("alice").name, "alice");
        let bob = header("bob:builder");
        assert_eq!(authenticate(&f, Some(&bob)).await.expect("bob").name, "bob");
        assert_eq!(f.verified.len(), 2);
        // Lowercase scheme and a colon in the password.
        let c = vec![consumer("carol", "carol", bcrypt::hash("a:b", 4).expect("hash"))];
        let f = build(&c).expect("valid");
        let v = format!("basic {}", base64::engine::general_purpose::STANDARD.encode("carol:a:b"));
        assert_eq!(authenticate(&f, Some(v.as_bytes())).await.expect("carol").name, "carol");
    }

    #[tokio::test]
    async fn refusals_are_401_with_the_realm() {
        let f = build(&consumers()).expect("valid");
        let missing = authenticate(&f, None).await.expect_err("missing");
        assert_eq!((missing.status, &*missing.message), (401, "missing credentials"));
        assert_eq!(missing.headers[0].0, WWW_AUTHENTICATE);
        assert!(missing.headers[0].1.to_str().expect("ascii").starts_with("Basic realm=\"shop\""));
        for bad in [&b"Bearer abc"[..], b"Basic !!!", b"Basic Zm9v"] {
            let r = authenticate(&f, Some(bad)).await.expect_err("malformed");
            assert_eq!(r.message, "malformed basic credentials");
        }
        let wrong = header("alice:nope");
        let r = authenticate(&f, Some(&wrong)).await.expect_err("wrong password");
        assert_eq!((r.status, &*r.message), (401, "invalid username or password"));
        let unknown = header("mallory:wonderland");
        assert_eq!(authenticate(&f, Some(&unknown)).await.expect_err("unknown").status, 401);
        assert_eq!(f.verified.len(), 0);
    }

    #[test]
    fn bad_hashes_and_duplicate_users_are_config_errors() {
        let err = build(&[consumer("eve", "eve", "plaintext".into())]).expect_err("bad hash");
        assert!(err.message.contains("\"eve\""), "{}", err.message);
        let err = build(&[consumer("eve", "eve", "$2b$10$short".into())]).expect_err("bad bcrypt");
        assert!(err.message.contains("\"eve\""));
        let h = bcrypt::hash("x", 4).expect("hash");
        let err = build(&[consumer("a", "same", h.clone()), consumer("b", "same", h)]).expect_err("dup");
        assert!(err.message.contains("\"same\""));
        assert!(build(&[]).is_err());
        assert!(serde_yaml::from_str::<BasicAuthConfig>("{realm: x, reaml: y}").is_err());
    }
}
