//! A part's `path` and `body` templates: `{NAME}` takes a named capture of the route's
//! `path_regex`, `{query.NAME}` a query parameter of the client's request. Templates are parsed
//! when the config loads, so a name that can never have a value is a config error, and a
//! request only fills the slots in.
//!
//! Values are escaped for where they land, so a client can neither add path segments nor JSON
//! structure: in a path every byte but RFC 3986's unreserved ones is percent-encoded (`/`, `?`,
//! `&`, `#`, `%` included), in a body the value is escaped as the inside of a JSON string.
//! Values are percent-decoded first (a capture or query value as the client meant it), so
//! `%41` is sent as `A`, and `%2F` as `%2F` again, never as `/`.

use portico_filters::{percent_decode, raw_query_param};
use std::fmt::Write;

/// One parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// A literal run or a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Capture(String),
    Query(String),
}

/// How a value is escaped where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Percent-encoded: one path segment or one query value.
    Path,
    /// Escaped as the inside of a JSON string.
    Json,
}

/// The values a request gives a template: the route's named captures and the raw query.
#[derive(Debug, Default)]
pub struct Vars<'a> {
    /// `(name, value)` of every named capture that took part in the match, as matched.
    pub captures: Vec<(&'a str, &'a str)>,
    /// The client's raw query string.
    pub query: Option<&'a str>,
}

impl<'a> Vars<'a> {
    /// The values `path` and `query` give a route whose path rule is `rule`: the named captures
    /// of a `path_regex` (matched again here, only for aggregate routes, so ordinary routing
    /// keeps its cheaper `is_match`), and the query.
    pub fn of(rule: &'a crate::config::PathPattern, path: &'a str, query: Option<&'a str>) -> Self {
        let captures = match rule {
            crate::config::PathPattern::Regex(re) => re.captures(path).map_or_else(Vec::new, |caps| {
                re.capture_names().flatten().filter_map(|n| caps.name(n).map(|m| (n, m.as_str()))).collect()
            }),
            _ => Vec::new(),
        };
        Vars { captures, query }
    }
}

impl Vars<'_> {
    /// The decoded value of a slot; empty when the request has none (a query parameter that is
    /// absent, an optional capture that did not take part). A query value is read as a form
    /// value (`+` is a space); in a path capture `+` is itself.
    fn value(&self, piece: &Piece) -> String {
        match piece {
            Piece::Capture(name) => self
                .captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| percent_decode(v).into_owned())
                .unwrap_or_default(),
            Piece::Query(name) => self
                .query
                .and_then(|q| raw_query_param(q, name))
                .map(|v| percent_decode(&v.replace('+', " ")).into_owned())
                .unwrap_or_default(),
            Piece::Literal(_) => String::new(),
        }
    }
}

impl Template {
    /// Parses `text`; `captures` are the names a `{NAME}` may use. `{` not followed by a name
    /// and `}` is literal (a JSON body's own braces), so only a well-formed slot with an unknown
    /// name is an error, whose message lists the names that are known.
    pub fn parse(text: &str, captures: &[&str]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let slot = after.find('}').map(|close| &after[..close]).filter(|s| is_slot(s));
            let Some(slot) = slot else {
                literal.push('{');
                rest = after;
                continue;
            };
            let piece = match slot.strip_prefix("query.") {
                Some(name) => Piece::Query(name.to_string()),
                None if captures.contains(&slot) => Piece::Capture(slot.to_string()),
                None => {
                    let known = if captures.is_empty() {
                        "the route's match has no path_regex with named captures".to_string()
                    } else {
                        format!("named captures of path_regex: {}", captures.join(", "))
                    };
                    return Err(format!("{{{slot}}} is neither a named capture nor query.NAME ({known})"));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
            rest = &after[slot.len() + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { source: text.to_string(), pieces })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template has no slot (the text is sent as written).
    pub fn is_static(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// The template filled in with `vars`, each value escaped by `escape`.
    pub fn render(&self, vars: &Vars<'_>, escape: Escape) -> String {
        let mut out = String::with_capacity(64);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                slot => {
                    let value = vars.value(slot);
                    match escape {
                        Escape::Path => percent_encode(&value, &mut out),
                        Escape::Json => json_escape(&value, &mut out),
                    }
                }
            }
        }
        out
    }
}

/// `NAME` or `query.NAME`: a letter or `_`, then letters, digits and `_` (a query name may also
/// hold `-` and `.`).
fn is_slot(s: &str) -> bool {
    let (name, extra): (&str, &[char]) = match s.strip_prefix("query.") {
        Some(n) => (n, &['-', '.']),
        None => (s, &[]),
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

/// Percent-encodes every byte but RFC 3986's unreserved ones.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Escapes `value` as the inside of a JSON string.
fn json_escape(value: &str, out: &mut String) {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    out.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(""));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(captures: &[(&'a str, &'a str)], query: Option<&'a str>) -> Vars<'a> {
        Vars { captures: captures.to_vec(), query }
    }

    #[test]
    fn slots_take_captures_and_query_values() {
        let t = Template::parse("/orders/{id}?user={query.user}&x=1", &["id"]).expect("parses");
        let v = vars(&[("id", "42")], Some("a=1&user=ann"));
        assert_eq!(t.render(&v, Escape::Path), "/orders/42?user=ann&x=1");
        assert!(!t.is_static());
        assert!(Template::parse("/recs", &[]).expect("parses").is_static());
    }

    #[test]
    fn unknown_names_are_refused_and_json_braces_are_literal() {
        let err = Template::parse("/u/{user}", &["id"]).expect_err("unknown");
        assert!(err.contains("{user}") && err.contains("id"), "{err}");
        assert!(Template::parse("/u/{id}", &[]).expect_err("no regex").contains("no path_regex"));
        let t = Template::parse(r#"{"user": "{id}", "n": {"a": 1}}"#, &["id"]).expect("parses");
        assert_eq!(t.render(&vars(&[("id", "7")], None), Escape::Json), r#"{"user": "7", "n": {"a": 1}}"#);
    }

    #[test]
    fn values_cannot_add_segments_or_json() {
        let t = Template::parse("/users/{id}", &["id"]).expect("parses");
        let v = vars(&[("id", "1%2F..%2Fadmin")], None);
        assert_eq!(t.render(&v, Escape::Path), "/users/1%2F..%2Fadmin");
        let v = vars(&[("id", "a/b?c=d#e f")], None);
        assert_eq!(t.render(&v, Escape::Path), "/users/a%2Fb%3Fc%3Dd%23e%20f");
        let q = Template::parse("/o?user={query.u}", &[]).expect("parses");
        assert_eq!(q.render(&vars(&[], Some("u=1%26admin%3Dtrue")), Escape::Path), "/o?user=1%26admin%3Dtrue");
        let b = Template::parse(r#"{"user": "{query.u}"}"#, &[]).expect("parses");
        let v = vars(&[], Some("u=x%22%2C%22admin%22%3Atrue%5C"));
        assert_eq!(b.render(&v, Escape::Json), r#"{"user": "x\",\"admin\":true\\"}"#);
        assert_eq!(q.render(&vars(&[], None), Escape::Path), "/o?user=", "absent: empty");
        assert_eq!(q.render(&vars(&[], Some("u=a+b%2B")), Escape::Path), "/o?user=a%20b%2B", "a form value");
        assert_eq!(t.render(&vars(&[("id", "a+b")], None), Escape::Path), "/users/a%2Bb", "a path's + is itself");
    }
}
