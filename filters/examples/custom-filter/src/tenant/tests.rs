use super::*;
use std::path::Path;

fn build(yaml: &str) -> Result<Tenant, BuildError> {
    let config: TenantConfig = serde_yaml::from_str(yaml).map_err(|e| BuildError::whole(e.to_string()))?;
    Tenant::build(config, &BuildContext { consumers: &[], base_dir: Path::new("."), redis_url: None, place: "" })
}

#[test]
fn a_request_must_name_an_allowed_tenant() {
    let tenant = build("{allow: [acme, globex]}").expect("valid");
    let missing = tenant.check(None).expect_err("no tenant named");
    assert_eq!((missing.status, missing.error), (400, "tenant_required"));
    assert_eq!(missing.message, "name your tenant in the x-tenant header");
    let unknown = tenant.check(Some(&HeaderValue::from_static("initech"))).expect_err("not allowed");
    assert_eq!((unknown.status, unknown.error), (403, "unknown_tenant"));
    let found = tenant.check(Some(&HeaderValue::from_static("globex"))).ok();
    assert_eq!(found, Some(HeaderValue::from_static("globex")));
}

#[test]
fn a_bad_config_names_the_field() {
    let at = |yaml: &str| build(yaml).err().map(|e| (e.path, e.message));
    assert!(at("{allow: [acme], alow: [x]}").is_some_and(|(_, m)| m.contains("unknown field `alow`")));
    assert_eq!(at("{allow: []}"), Some(("allow".into(), "list at least one tenant".into())));
    assert_eq!(at("{allow: [acme], header: \"x tenant\"}"), Some(("header".into(), "not a header name".into())));
    assert_eq!(at("{allow: [acme, \"a\\nb\"]}"), Some(("allow[1]".into(), "not a header value".into())));
    assert_eq!(
        at("{allow: [acme], upstream_token: \"\\n\"}"),
        Some(("upstream_token".into(), "not a header value".into()))
    );
}

/// The filters guide shows this filter's code as its doctest: it must be this file's code.
#[test]
fn the_guide_shows_this_code() {
    let guide = include_str!("../../../../README.md");
    let file = include_str!("../tenant.rs");
    let code: String =
        file.lines().skip_while(|l| l.starts_with("//!") || l.is_empty()).map(|l| format!("{l}\n")).collect();
    let code =
        code.trim_end().strip_suffix("#[cfg(test)]\nmod tests;").expect("the file ends with its tests").trim_end();
    assert!(guide.contains(&format!("```rust\n{code}\n```")), "filters/README.md must show src/tenant.rs as it is");
}
