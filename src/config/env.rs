//! `${VAR}` substitution in string values, and secret masking for `GET /config`.

use super::Errors;
use serde_yaml::Value;
use std::collections::HashSet;

/// The YAML paths (`routes[0].filters[1].headers.request.set.authorization`) of the string
/// values that `${VAR}` substitution changed: what the environment supplied is treated as a
/// secret, whatever its key.
#[derive(Debug, Default)]
pub(super) struct Substituted(HashSet<String>);

/// Replaces `${VAR}` and `${VAR:-default}` in every string of `value`; a variable that is not
/// set (and has no default) is an error at its YAML path. Returns where values changed.
pub(super) fn substitute(value: &mut Value, errors: &mut Errors<'_>) -> Substituted {
    let mut changed = Substituted::default();
    substitute_at(value, "", &mut changed, errors);
    changed
}

fn substitute_at(value: &mut Value, path: &str, changed: &mut Substituted, errors: &mut Errors<'_>) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s) {
            Ok(expanded) => {
                if expanded != *s {
                    changed.0.insert(path.to_string());
                }
                *s = expanded;
            }
            Err(var) => errors.at(path, format!("environment variable {var} is not set")),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_at(item, &item_path(path, i), changed, errors);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                substitute_at(v, &key_path(path, k), changed, errors);
            }
        }
        Value::Tagged(t) => substitute_at(&mut t.value, path, changed, errors),
        _ => {}
    }
}

/// `path.key` (or `key` at the top), the spelling errors use.
fn key_path(path: &str, key: &Value) -> String {
    let key = key.as_str().unwrap_or("?");
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
fn item_path(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Expands one string; `Err(name)` for the first missing variable.
fn expand(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(name), default) {
            (Ok(v), _) => out.push_str(&v),
            (Err(_), Some(d)) => out.push_str(d),
            (Err(_), None) => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Keys whose values are secrets wherever they appear: masked in `GET /config`.
const SECRET_KEYS: &[&str] = &["api_keys", "secret", "password", "password_hash", "token", "redis", "key"];

/// Secret-looking keys that are not secrets under this parent: a rate limiter's `key` says what
/// it counts by (`client_ip`), and `/explain` shows it.
const NOT_SECRET_UNDER: &[(&str, &str)] = &[("rate_limit", "key")];

/// Whether the value under `key` (whose parent mapping sits under `parent`) is a secret by its
/// name. Fields that filters declare secret are masked by [`mask_filter_secrets`].
fn is_secret_key(key: &str, parent: &str) -> bool {
    SECRET_KEYS.contains(&key) && !NOT_SECRET_UNDER.contains(&(parent, key))
}

/// The last mapping key of a YAML path (`rate_limit` of `routes[0].filters[1].rate_limit`).
fn last_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// The config as JSON for `GET /config`, every secret value replaced by `"***"`: values under a
/// secret key ([`is_secret_key`]) and every value that `${VAR}` substitution changed.
pub(super) fn masked_json(value: &Value, substituted: &Substituted) -> serde_json::Value {
    let mut masked = value.clone();
    mask(&mut masked, "", substituted);
    let mut json = serde_json::to_value(&masked).unwrap_or(serde_json::Value::Null);
    mask_filter_secrets(&mut json);
    json
}

fn mask(v: &mut Value, path: &str, substituted: &Substituted) {
    match v {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let child = key_path(path, k);
                if is_secret_key(k.as_str().unwrap_or("?"), last_key(path)) {
                    hide(v);
                } else {
                    mask(v, &child, substituted);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                mask(item, &item_path(path, i), substituted);
            }
        }
        Value::Tagged(t) => mask(&mut t.value, path, substituted),
        Value::String(_) if substituted.0.contains(path) => hide(v),
        _ => {}
    }
}

/// Replaces every scalar in `v` by `"***"` (a null stays null: nothing to hide).
fn hide(v: &mut Value) {
    match v {
        Value::Sequence(items) => items.iter_mut().for_each(hide),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| hide(v)),
        Value::Tagged(t) => hide(&mut t.value),
        Value::Null => {}
        other => *other = Value::String("***".into()),
    }
}

/// Masks the fields each filter declares secret (`FilterFactory::SECRET_FIELDS`, through the
/// process's filter registry) in every listener's and route's `filters` list.
fn mask_filter_secrets(json: &mut serde_json::Value) {
    let registry = portico_filters::registry::current();
    for section in ["listeners", "routes"] {
        let Some(owners) = json.get_mut(section).and_then(|s| s.as_array_mut()) else { continue };
        for list in owners.iter_mut().filter_map(|o| o.get_mut("filters")?.as_array_mut()) {
            for (name, config) in list.iter_mut().filter_map(|f| f.as_object_mut()).flatten() {
                registry.mask_secrets(name, config);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_defaults_and_reports_missing() {
        assert_eq!(expand("${PORTICO_SURELY_UNSET:-x}-y").as_deref(), Ok("x-y"));
        assert_eq!(expand("a ${PORTICO_SURELY_UNSET} b"), Err("PORTICO_SURELY_UNSET".to_string()));
        assert_eq!(expand("no vars").as_deref(), Ok("no vars"));
    }

    #[test]
    fn masks_secrets_only() {
        let v: Value =
            serde_yaml::from_str("consumers: [{name: a, api_keys: [k1]}]\nfilters: [{jwt: {secret: s, issuer: i}}]")
                .expect("yaml");
        let json = masked_json(&v, &Substituted::default());
        assert_eq!(json["consumers"][0]["api_keys"][0], "***");
        assert_eq!(json["consumers"][0]["name"], "a");
        assert_eq!(json["filters"][0]["jwt"]["secret"], "***");
        assert_eq!(json["filters"][0]["jwt"]["issuer"], "i");
    }

    #[test]
    fn masks_every_substituted_value_whatever_its_key() {
        let yaml = "listen: \"127.0.0.1:8080\"\n\
            routes: [{name: r, filters: [{headers: {request: {set: {\n\
              authorization: \"Bearer ${PORTICO_SURELY_UNSET:-t0ken}\", x-plain: \"${no closing brace\"}}}}]}]\n\
            consumers: [{name: a, api_keys: [k1]}]";
        let locations = crate::config::locate::Locations::index(yaml);
        let mut errors = Errors::new(std::path::Path::new("t.yaml"), &locations);
        let mut v: Value = serde_yaml::from_str(yaml).expect("yaml");
        let substituted = substitute(&mut v, &mut errors);
        assert!(errors.list.is_empty());
        let set = &v["routes"][0]["filters"][0]["headers"]["request"]["set"];
        assert_eq!(set["authorization"].as_str(), Some("Bearer t0ken"), "the proxy sees the real value");

        let json = masked_json(&v, &substituted);
        let set = &json["routes"][0]["filters"][0]["headers"]["request"]["set"];
        assert_eq!(set["authorization"], "***", "a value from the environment is masked as a whole");
        assert_eq!(set["x-plain"], "${no closing brace", "a value substitution left alone is shown");
        assert_eq!(json["listen"], "127.0.0.1:8080");
        assert_eq!(json["routes"][0]["name"], "r");
        assert_eq!(json["consumers"][0]["api_keys"][0], "***", "secret key names are still masked");
    }

    #[test]
    fn a_rate_limit_key_is_not_a_secret() {
        let v: Value =
            serde_yaml::from_str("filters: [{rate_limit: {key: client_ip}}]\ntls: {key: k.pem}\nadmin: {token: t}")
                .expect("yaml");
        let json = masked_json(&v, &Substituted::default());
        assert_eq!(json["filters"][0]["rate_limit"]["key"], "client_ip");
        assert_eq!(json["tls"]["key"], "***");
        assert_eq!(json["admin"]["token"], "***");
    }
}
