//! `acl`: allow or deny the caller found by an earlier filter (`api_key`, `basic_auth`, `jwt`,
//! mTLS) by consumer name, consumer group, service identity or a JWT claim; answer 403.
//!
//! ```yaml
//! - jwt: {jwks_file: conf/jwks.json}
//! - acl: {allow_groups: [partners], deny_consumers: [legacy],
//!         allow_identities: ["spiffe://example.org/ns/prod/*"], claim: {name: role, allow: [admin]}}
//! ```
//! Deny rules are checked first. Then, if any allow rule is set, the caller must match at least
//! one of them. A request with no consumer, identity or JWT claims at all is refused: put `acl`
//! after the filters that authenticate.
//!
//! Identities match exactly, or by prefix when the entry ends with `*`. The claim is looked up by
//! its name, or as a dotted path (`realm_access.roles`); a string, number or boolean claim
//! matches when it equals an allowed value, an array when any element does.

use crate::jwt::JwtClaims;
use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;

/// The `acl` filter's config. Every list is empty by default; at least one rule must be set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Consumer names that may pass.
    #[serde(default)]
    pub allow_consumers: Vec<String>,
    /// Consumer names that never pass.
    #[serde(default)]
    pub deny_consumers: Vec<String>,
    /// Consumer groups that may pass (any one of the consumer's groups).
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// Consumer groups that never pass (any one of the consumer's groups).
    #[serde(default)]
    pub deny_groups: Vec<String>,
    /// Service identities (mTLS) that may pass; an entry ending in `*` is a prefix.
    #[serde(default)]
    pub allow_identities: Vec<String>,
    /// Service identities that never pass; an entry ending in `*` is a prefix.
    #[serde(default)]
    pub deny_identities: Vec<String>,
    /// A JWT claim whose value may let the caller pass.
    #[serde(default)]
    pub claim: Option<ClaimRuleConfig>,
}

/// `claim: {name: role, allow: [admin]}`: the JWT claim `name` must hold one of `allow`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRuleConfig {
    /// The claim's name, or a dotted path into nested objects.
    pub name: String,
    /// Values that let the caller pass.
    pub allow: Vec<String>,
}

/// Identities compiled into exact names and prefixes.
#[derive(Debug, Default)]
struct IdentitySet {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl IdentitySet {
    fn new(entries: Vec<String>) -> Self {
        let mut set = IdentitySet::default();
        for e in entries {
            match e.strip_suffix('*') {
                Some(prefix) => set.prefixes.push(prefix.to_string()),
                None => {
                    set.exact.insert(e);
                }
            }
        }
        set
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    fn contains(&self, identity: &str) -> bool {
        self.exact.contains(identity) || self.prefixes.iter().any(|p| identity.starts_with(p.as_str()))
    }
}

/// The claim rule, compiled.
#[derive(Debug)]
struct ClaimRule {
    name: String,
    allow: HashSet<String>,
}

impl ClaimRule {
    fn matches(&self, claims: &Value) -> bool {
        let value = claims.get(&self.name).or_else(|| {
            self.name.contains('.').then(|| self.name.split('.').try_fold(claims, |v, k| v.get(k))).flatten()
        });
        let allowed = |v: &Value| match v {
            Value::String(s) => self.allow.contains(s),
            Value::Number(n) => self.allow.contains(&n.to_string()),
            Value::Bool(b) => self.allow.contains(if *b { "true" } else { "false" }),
            _ => false,
        };
        match value {
            Some(Value::Array(items)) => items.iter().any(allowed),
            Some(v) => allowed(v),
            None => false,
        }
    }
}

/// The `acl` filter.
#[derive(Debug)]
pub struct Acl {
    allow_consumers: HashSet<String>,
    deny_consumers: HashSet<String>,
    allow_groups: HashSet<String>,
    deny_groups: HashSet<String>,
    allow_identities: IdentitySet,
    deny_identities: IdentitySet,
    claim: Option<ClaimRule>,
}

fn forbidden(message: &'static str) -> Reject {
    Reject::new(403, "forbidden", message)
}

impl Acl {
    fn has_allow_rules(&self) -> bool {
        !self.allow_consumers.is_empty()
            || !self.allow_groups.is_empty()
            || !self.allow_identities.is_empty()
            || self.claim.is_some()
    }

    /// Whether the caller that earlier filters put in `ctx` may pass; refuses with 403.
    fn check(&self, ctx: &RequestCtx) -> Result<(), Reject> {
        let consumer = ctx.consumer.as_deref();
        let identity = ctx.identity.as_deref();
        let claims = ctx.state.get::<JwtClaims>();
        if consumer.is_none() && identity.is_none() && claims.is_none() {
            return Err(forbidden("no authenticated caller"));
        }

        // Deny rules first.
        if let Some(c) = consumer {
            if self.deny_consumers.contains(&c.name) {
                return Err(forbidden("consumer is denied"));
            }
            if c.groups.iter().any(|g| self.deny_groups.contains(g)) {
                return Err(forbidden("consumer group is denied"));
            }
        }
        if identity.is_some_and(|id| self.deny_identities.contains(id)) {
            return Err(forbidden("identity is denied"));
        }

        // Then, when there are allow rules, one of them must match.
        if !self.has_allow_rules() {
            return Ok(());
        }
        let allowed = consumer.is_some_and(|c| {
            self.allow_consumers.contains(&c.name) || c.groups.iter().any(|g| self.allow_groups.contains(g))
        }) || identity.is_some_and(|id| self.allow_identities.contains(id))
            || matches!((&self.claim, claims), (Some(rule), Some(claims)) if rule.matches(&claims.0));
        if allowed {
            Ok(())
        } else {
            Err(forbidden("caller is not allowed here"))
        }
    }
}

impl FilterFactory for Acl {
    const NAME: &'static str = "acl";
    type Config = AclConfig;

    fn build(config: AclConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let set = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>();
        if let Some(rule) = &config.claim {
            if rule.name.is_empty() {
                return Err(BuildError::at("claim.name", "empty claim name"));
            }
            if rule.allow.is_empty() {
                return Err(BuildError::at("claim.allow", "list at least one allowed value"));
            }
        }
        let acl = Acl {
            allow_consumers: set(config.allow_consumers),
            deny_consumers: set(config.deny_consumers),
            allow_groups: set(config.allow_groups),
            deny_groups: set(config.deny_groups),
            allow_identities: IdentitySet::new(config.allow_identities),
            deny_identities: IdentitySet::new(config.deny_identities),
            claim: config.claim.map(|c| ClaimRule { name: c.name, allow: set(c.allow) }),
        };
        let has_deny_rules =
            !acl.deny_consumers.is_empty() || !acl.deny_groups.is_empty() || !acl.deny_identities.is_empty();
        if !acl.has_allow_rules() && !has_deny_rules {
            return Err(BuildError::whole("set at least one allow_* or deny_* rule, or `claim`"));
        }
        Ok(acl)
    }
}

#[async_trait]
impl Filter for Acl {
    async fn request(&self, _session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        Ok(match self.check(ctx) {
            Ok(()) => Flow::Continue,
            Err(reject) => Flow::Reject(reject),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, TestRequest};
    use crate::Consumer;
    use serde_json::json;
    use std::sync::Arc;

    fn build(yaml: &str) -> Result<Acl, BuildError> {
        testkit::build(yaml, &testkit::context())
    }

    /// Runs the request phase for the caller that earlier filters left in `ctx`: its verdict.
    async fn check(f: &Acl, ctx: &mut RequestCtx) -> Result<(), Reject> {
        let mut request = TestRequest::get("/", &[]).await;
        request.ctx = std::mem::take(ctx);
        let flow = request.request(f).await;
        *ctx = request.ctx;
        match flow {
            Flow::Continue => Ok(()),
            Flow::Reject(reject) => Err(reject),
            other => panic!("expected a pass or a refusal, got {other:?}"),
        }
    }

    fn with_consumer(name: &str, groups: &[&str]) -> RequestCtx {
        RequestCtx {
            consumer: Some(Arc::new(Consumer {
                name: name.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn with_identity(id: &str) -> RequestCtx {
        RequestCtx { identity: Some(id.into()), ..Default::default() }
    }

    fn with_claims(claims: Value) -> RequestCtx {
        let mut ctx = RequestCtx::default();
        ctx.state.insert(JwtClaims::new(claims));
        ctx
    }

    fn status(r: Result<(), Reject>) -> u16 {
        r.map_or_else(|e| e.status, |()| 200)
    }

    #[tokio::test]
    async fn deny_rules_win() {
        let f = build("{allow_groups: [partners], deny_consumers: [legacy], deny_groups: [banned]}").expect("valid");
        assert_eq!(status(check(&f, &mut with_consumer("mobile", &["partners"])).await), 200);
        assert_eq!(status(check(&f, &mut with_consumer("legacy", &["partners"])).await), 403);
        assert_eq!(status(check(&f, &mut with_consumer("x", &["partners", "banned"])).await), 403);
        assert_eq!(status(check(&f, &mut with_consumer("other", &["staff"])).await), 403);
    }

    #[tokio::test]
    async fn no_caller_is_forbidden() {
        let f = build("{deny_consumers: [legacy]}").expect("valid");
        let r = check(&f, &mut RequestCtx::default()).await.expect_err("anonymous");
        assert_eq!((r.status, r.error, &*r.message), (403, "forbidden", "no authenticated caller"));
        // Only deny rules: any authenticated caller not denied passes.
        assert_eq!(status(check(&f, &mut with_consumer("anyone", &[])).await), 200);
    }

    #[tokio::test]
    async fn identities_match_exactly_or_by_prefix() {
        let f = build("{allow_identities: ['spiffe://ex.org/ns/prod/*', 'spiffe://ex.org/admin'], deny_identities: ['spiffe://ex.org/ns/prod/evil']}")
            .expect("valid");
        assert_eq!(status(check(&f, &mut with_identity("spiffe://ex.org/ns/prod/sa/web")).await), 200);
        assert_eq!(status(check(&f, &mut with_identity("spiffe://ex.org/admin")).await), 200);
        assert_eq!(status(check(&f, &mut with_identity("spiffe://ex.org/admin/x")).await), 403);
        assert_eq!(status(check(&f, &mut with_identity("spiffe://ex.org/ns/dev/sa/web")).await), 403);
        assert_eq!(status(check(&f, &mut with_identity("spiffe://ex.org/ns/prod/evil")).await), 403);
    }

    #[tokio::test]
    async fn claims_match_strings_arrays_and_paths() {
        let f = build("{claim: {name: role, allow: [admin, '7']}}").expect("valid");
        assert_eq!(status(check(&f, &mut with_claims(json!({"role": "admin"}))).await), 200);
        assert_eq!(status(check(&f, &mut with_claims(json!({"role": ["user", "admin"]}))).await), 200);
        assert_eq!(status(check(&f, &mut with_claims(json!({"role": 7}))).await), 200);
        assert_eq!(status(check(&f, &mut with_claims(json!({"role": "user"}))).await), 403);
        assert_eq!(status(check(&f, &mut with_claims(json!({"sub": "x"}))).await), 403);
        let f = build("{claim: {name: realm_access.roles, allow: [ops]}}").expect("valid");
        assert_eq!(status(check(&f, &mut with_claims(json!({"realm_access": {"roles": ["ops"]}}))).await), 200);
    }

    #[tokio::test]
    async fn any_allow_rule_is_enough() {
        let f = build("{allow_consumers: [svc], claim: {name: role, allow: [admin]}}").expect("valid");
        assert_eq!(status(check(&f, &mut with_consumer("svc", &[])).await), 200);
        let mut ctx = with_consumer("alice", &[]);
        assert_eq!(status(check(&f, &mut ctx).await), 403);
        ctx.state.insert(JwtClaims::new(json!({"sub": "alice", "role": "admin"})));
        assert_eq!(status(check(&f, &mut ctx).await), 200);
    }

    #[test]
    fn config_errors() {
        assert!(build("{}").is_err());
        assert_eq!(build("{claim: {name: role, allow: []}}").expect_err("empty").path, "claim.allow");
        assert!(serde_yaml::from_str::<AclConfig>("{allow_group: [x]}").is_err());
        assert!(serde_yaml::from_str::<AclConfig>("{claim: {name: r, allow: [a], deny: [b]}}").is_err());
    }
}
