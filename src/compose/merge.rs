//! The composed answer: one JSON object from the parts' outcomes, and the headers that say how
//! complete it is.
//!
//! By name (the default) each part is a field, `null` when it failed; a JSON body is embedded as
//! it came (checked, not re-encoded), any other body as a JSON string. With `aggregate_merge`
//! the top-level fields of every object part go into one object, later parts winning a clash;
//! a part whose JSON is not an object, or whose body is not JSON, stays a field under its
//! name; a failed part adds nothing.

use super::part::{Answered, Outcome};
use crate::config::AggregateSpec;
use std::fmt::Write;

/// What the parts add up to.
#[derive(Debug)]
pub struct Composed {
    /// The JSON object.
    pub body: Vec<u8>,
    /// `x-portico-failed-parts`: `name=why` for each failed part, in file order; empty when
    /// none failed.
    pub failed: String,
    /// The first required part that failed, with why.
    pub required_failed: Option<(usize, String)>,
    /// Whether every part failed.
    pub all_failed: bool,
}

/// Composes `outcomes` (one per part of `spec`, in order).
pub fn compose(spec: &AggregateSpec, outcomes: &[Outcome]) -> Composed {
    let mut failed = String::new();
    let mut required_failed = None;
    for (i, (part, outcome)) in spec.parts.iter().zip(outcomes).enumerate() {
        if let Err(why) = &outcome.result {
            if !failed.is_empty() {
                failed.push_str(", ");
            }
            let _ = write!(failed, "{}={why}", part.name);
            if part.required && required_failed.is_none() {
                required_failed = Some((i, why.to_string()));
            }
        }
    }
    let all_failed = outcomes.iter().all(|o| o.result.is_err());
    let body = if spec.merge { merged(spec, outcomes) } else { by_name(spec, outcomes) };
    Composed { body, failed, required_failed, all_failed }
}

/// `{"user": ..., "orders": ...}`.
fn by_name(spec: &AggregateSpec, outcomes: &[Outcome]) -> Vec<u8> {
    let size: usize = outcomes.iter().map(|o| o.result.as_ref().map_or(4, |a| a.body.len() + 2)).sum();
    let mut out = Vec::with_capacity(size + spec.parts.len() * 16 + 2);
    out.push(b'{');
    for (i, (part, outcome)) in spec.parts.iter().zip(outcomes).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(&mut out, &part.name);
        out.push(b':');
        match &outcome.result {
            Ok(a) => embed(&mut out, a),
            Err(_) => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    out
}

/// The top-level fields of every object part in one object.
fn merged(spec: &AggregateSpec, outcomes: &[Outcome]) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    for (part, outcome) in spec.parts.iter().zip(outcomes) {
        let Ok(a) = &outcome.result else { continue };
        let value = if a.json {
            serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::String(String::from_utf8_lossy(&a.body).into_owned())
        };
        match value {
            serde_json::Value::Object(fields) => object.extend(fields),
            other => {
                object.insert(part.name.to_string(), other);
            }
        }
    }
    serde_json::to_vec(&serde_json::Value::Object(object)).unwrap_or_else(|_| b"{}".to_vec())
}

/// A part's body as a JSON value: as it came when it is JSON, else as a string.
fn embed(out: &mut Vec<u8>, a: &Answered) {
    if a.json {
        out.extend_from_slice(&a.body);
    } else {
        write_json_string(out, &String::from_utf8_lossy(&a.body));
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::part::Failure;
    use crate::compose::Template;
    use crate::config::PartSpec;
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn spec(merge: bool, parts: &[(&str, bool)]) -> AggregateSpec {
        let parts = parts
            .iter()
            .map(|(name, required)| PartSpec {
                name: (*name).into(),
                upstream: "u".into(),
                method: http::Method::GET,
                path: Template::parse("/", &[]).expect("a template"),
                body: None,
                required: *required,
                timeout: None,
            })
            .collect();
        AggregateSpec { parts, merge, max_part_bytes: 1024 }
    }

    fn ok(body: &str, json: bool) -> Outcome {
        let answered = Answered { status: 200, json, body: Bytes::from(body.to_string()) };
        Outcome { result: Ok(answered), target: None, started: Instant::now(), elapsed: Duration::ZERO }
    }

    fn failed(why: Failure) -> Outcome {
        Outcome { result: Err(why), target: None, started: Instant::now(), elapsed: Duration::ZERO }
    }

    fn json(c: &Composed) -> serde_json::Value {
        serde_json::from_slice(&c.body).expect("the composed body is JSON")
    }

    #[test]
    fn parts_by_name_json_embedded_text_as_strings_failures_null() {
        let s = spec(false, &[("user", true), ("note", false), ("orders", false)]);
        let c = compose(&s, &[ok(r#"{"id": 1}"#, true), ok("hi \"there\"", false), failed(Failure::Timeout)]);
        assert_eq!(json(&c), serde_json::json!({"user": {"id": 1}, "note": "hi \"there\"", "orders": null}));
        assert_eq!(c.failed, "orders=timeout");
        assert!(c.required_failed.is_none() && !c.all_failed);
    }

    #[test]
    fn merged_later_parts_win_and_non_objects_keep_their_name() {
        let s = spec(true, &[("a", true), ("b", true), ("c", false), ("d", false)]);
        let c = compose(
            &s,
            &[ok(r#"{"x": 1, "y": 1}"#, true), ok(r#"{"y": 2}"#, true), ok("[1]", true), failed(Failure::Status(503))],
        );
        assert_eq!(json(&c), serde_json::json!({"x": 1, "y": 2, "c": [1]}));
        assert_eq!(c.failed, "d=503");
    }

    #[test]
    fn a_required_failure_and_all_failures_are_reported() {
        let s = spec(false, &[("a", false), ("b", true)]);
        let c = compose(&s, &[failed(Failure::Connect), failed(Failure::Status(500))]);
        assert_eq!(c.required_failed, Some((1, "500".to_string())));
        assert!(c.all_failed);
        assert_eq!(c.failed, "a=connect_error, b=500");
    }
}
