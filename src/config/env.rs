//! `${VAR}` substitution in string values, and secret masking for `GET /config`.

use super::Errors;
use serde_yaml::Value;

/// Replaces `${VAR}` and `${VAR:-default}` in every string of `value`; a variable that is not
/// set (and has no default) is an error at its YAML path.
pub(super) fn substitute(value: &mut Value, path: &str, errors: &mut Errors<'_>) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s) {
            Ok(expanded) => *s = expanded,
            Err(var) => errors.at(path, format!("environment variable {var} is not set")),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let child = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                substitute(v, &child, errors);
            }
        }
        Value::Tagged(t) => substitute(&mut t.value, path, errors),
        _ => {}
    }
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

/// Keys whose values are secrets: masked in `GET /config`.
const SECRET_KEYS: &[&str] = &["api_keys", "secret", "password", "password_hash", "token", "redis", "key"];

/// Secret-looking keys that are not secrets under this parent: a rate limiter's `key` says what
/// it counts by (`client_ip`), and `/explain` shows it.
const NOT_SECRET_UNDER: &[(&str, &str)] = &[("rate_limit", "key")];

/// The config as JSON with every secret value replaced by `"***"`.
pub(super) fn masked_json(value: &Value) -> serde_json::Value {
    fn mask(v: &mut serde_json::Value, parent: &str) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if SECRET_KEYS.contains(&k.as_str()) && !NOT_SECRET_UNDER.contains(&(parent, k.as_str())) {
                        hide(v);
                    } else {
                        mask(v, k);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| mask(v, parent)),
            _ => {}
        }
    }
    fn hide(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(items) => items.iter_mut().for_each(hide),
            serde_json::Value::Object(map) => map.values_mut().for_each(hide),
            serde_json::Value::Null => {}
            other => *other = serde_json::Value::String("***".into()),
        }
    }
    let mut json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    mask(&mut json, "");
    json
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
        let json = masked_json(&v);
        assert_eq!(json["consumers"][0]["api_keys"][0], "***");
        assert_eq!(json["consumers"][0]["name"], "a");
        assert_eq!(json["filters"][0]["jwt"]["secret"], "***");
        assert_eq!(json["filters"][0]["jwt"]["issuer"], "i");
    }

    #[test]
    fn a_rate_limit_key_is_not_a_secret() {
        let v: Value = serde_yaml::from_str(
            "filters: [{rate_limit: {key: client_ip}}]
tls: {key: k.pem}
admin: {token: t}",
        )
        .expect("yaml");
        let json = masked_json(&v);
        assert_eq!(json["filters"][0]["rate_limit"]["key"], "client_ip");
        assert_eq!(json["tls"]["key"], "***");
        assert_eq!(json["admin"]["token"], "***");
    }
}
