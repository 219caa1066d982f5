use super::*;
use crate::RequestHeader;
use serde_json::json;
use std::path::Path;

/// A filter as a user's crate would write one: sets a header upstream.
struct Stamp {
    value: http::HeaderValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StampConfig {
    value: String,
    #[serde(default)]
    #[allow(dead_code)]
    auth: Option<serde_yaml::Value>,
}

#[async_trait::async_trait]
impl Filter for Stamp {
    fn upstream_request(&self, request: &mut RequestHeader, _ctx: &mut crate::RequestCtx) -> pingora::Result<()> {
        request.insert_header("x-stamp", self.value.clone())
    }
}

impl FilterFactory for Stamp {
    const NAME: &'static str = "stamp";
    const SECRET_FIELDS: &'static [&'static str] = &["value", "auth.tokens.key"];
    type Config = StampConfig;
    fn build(config: StampConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let value =
            http::HeaderValue::from_str(&config.value).map_err(|_| BuildError::at("value", "not a header value"))?;
        Ok(Stamp { value })
    }
}

/// A user's filter that picked a built-in's name.
struct FakeJwt;
impl Filter for FakeJwt {}
impl FilterFactory for FakeJwt {
    const NAME: &'static str = "jwt";
    type Config = serde_yaml::Value;
    fn build(_: serde_yaml::Value, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        Ok(FakeJwt)
    }
}

fn cx() -> BuildContext<'static> {
    BuildContext { consumers: &[], base_dir: Path::new("."), redis_url: None, place: "" }
}

fn yaml(s: &str) -> serde_yaml::Value {
    serde_yaml::from_str(s).expect("test YAML")
}

#[test]
fn the_built_ins_are_there_and_an_added_filter_builds_like_one() {
    let built_in = Registry::built_in();
    assert!(built_in.names().any(|n| n == "jwt") && built_in.names().any(|n| n == "fault"));
    assert!(!built_in.names().any(|n| n == "stamp"));
    let err = built_in.build("stamp", yaml("{value: a}"), &cx()).err().expect("unknown to the built-ins");
    assert!(err.message.starts_with("unknown filter \"stamp\" (known: headers, "), "{err:?}");

    let registry = Registry::built_in().with::<Stamp>();
    assert_eq!(registry.names().last(), Some("stamp"));
    assert!(registry.build("stamp", yaml("{value: a}"), &cx()).is_ok());
    assert!(registry.build("headers", yaml("{}"), &cx()).is_ok(), "the built-ins stay");
    let err = registry.build("nope", yaml("{}"), &cx()).err().expect("unknown");
    assert!(err.message.ends_with(", fault, stamp)"), "{err:?}");
}

#[test]
fn an_added_filter_reports_config_errors_like_a_built_in() {
    let registry = Registry::built_in().with::<Stamp>();
    let typo = registry.build("stamp", yaml("{valeu: a}"), &cx()).err().expect("a typo");
    assert_eq!(typo.path, "valeu");
    assert!(typo.message.contains("unknown field `valeu`"), "{typo:?}");
    let bad = registry.build("stamp", yaml("{value: \"a\\nb\"}"), &cx()).err().expect("a bad value");
    assert_eq!((bad.path.as_str(), bad.message.as_str()), ("value", "not a header value"));
    let missing = registry.build("stamp", yaml(""), &cx()).err().expect("no config at all");
    assert!(missing.message.contains("missing field `value`"), "{missing:?}");
}

#[test]
#[should_panic(expected = "filter name \"jwt\" is registered twice")]
fn a_filter_may_not_take_a_built_in_name() {
    let _ = Registry::built_in().with::<FakeJwt>();
}

#[test]
#[should_panic(expected = "filter name \"stamp\" is registered twice")]
fn two_filters_may_not_share_a_name() {
    let _ = Registry::built_in().with::<Stamp>().with::<Stamp>();
}

#[test]
fn declared_secret_fields_are_masked_and_nothing_else() {
    let registry = Registry::built_in().with::<Stamp>();
    assert_eq!(registry.secret_fields("jwt"), ["secret"]);
    assert_eq!(registry.secret_fields("headers"), [] as [&str; 0]);
    assert_eq!(registry.secret_fields("no_such_filter"), [] as [&str; 0]);

    let mut config = json!({
        "value": "v-1",
        "auth": {"tokens": [{"name": "a", "key": "k-1"}, {"name": "b", "key": {"nested": ["k-2", 3]}}], "user": "u"},
        "other": "visible",
    });
    registry.mask_secrets("stamp", &mut config);
    assert_eq!(
        config,
        json!({
            "value": "***",
            "auth": {"tokens": [{"name": "a", "key": "***"}, {"name": "b", "key": {"nested": ["***", "***"]}}], "user": "u"},
            "other": "visible",
        })
    );

    let mut absent = json!({"other": "visible", "auth": null});
    registry.mask_secrets("stamp", &mut absent);
    assert_eq!(absent, json!({"other": "visible", "auth": null}), "fields not set stay as they are");

    let mut jwt = json!({"secret": "s3cret", "issuer": "i"});
    registry.mask_secrets("jwt", &mut jwt);
    assert_eq!(jwt, json!({"secret": "***", "issuer": "i"}));
}

#[test]
fn a_registry_installed_after_the_built_ins_were_used_is_refused() {
    assert!(current().names().any(|n| n == "headers"));
    let refused = install(Registry::built_in().with::<Stamp>()).expect_err("the process already has a registry");
    assert!(refused.names().any(|n| n == "stamp"), "the refused registry comes back");
    assert!(!current().names().any(|n| n == "stamp"));
    assert!(build("headers", yaml("{}"), &cx()).is_ok());
}
