//! Config text for the tests, written as plain YAML: `$name` placeholders instead of `format!`,
//! so flow mappings keep their single braces.
//!
//! ```text
//! Yaml::web(r#"
//! upstreams: {a: {targets: ["$a"]}}
//! routes: [{name: all, upstream: a}]
//! "#)
//! .origin(&a)
//! ```
//!
//! `$name` (a letter or `_`, then letters, digits and `_`) is replaced by, in this order: a value
//! given with [`Yaml::set`] or [`Yaml::origin`]; the Portico's temp dir for `$dir`; otherwise a
//! free port, the same one for every `$name` of that name in one Portico's config (so
//! `listen: "127.0.0.1:$web"` and `redirect_https: {port: $https}` need no set-up, and
//! `Portico::port("web")` reads it back). Values are inserted as they are and never scanned
//! again, so a password hash full of `$` is safe; a `$` not followed by a name (`${VAR}`, a
//! regex's `$`) is left alone.

use super::{free_port, Origin};
use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;

/// A config body with its placeholder values.
#[derive(Clone, Debug)]
pub struct Yaml {
    text: String,
    values: HashMap<String, String>,
}

/// The listener most tests need: one edge listener called `web`.
const WEB_LISTENER: &str = "listeners: [{name: web, listen: \"127.0.0.1:$web\"}]\n";

impl Yaml {
    /// A config body as written.
    pub fn new(text: &str) -> Yaml {
        Yaml { text: text.to_string(), values: HashMap::new() }
    }

    /// The usual preamble, one edge listener `web` on a free port, followed by `rest`.
    pub fn web(rest: &str) -> Yaml {
        Yaml::new(&format!("{WEB_LISTENER}{}", rest.trim_start_matches('\n')))
    }

    /// Replaces `$name` with `value`.
    pub fn set(mut self, name: &str, value: impl Display) -> Yaml {
        self.values.insert(name.to_string(), value.to_string());
        self
    }

    /// Replaces `$NAME` with the `host:port` of the origin called NAME.
    pub fn origin(self, origin: &Origin) -> Yaml {
        let name = origin.name.clone();
        self.set(&name, origin.addr)
    }

    /// More YAML after this (another top-level section, say).
    pub fn add(mut self, more: &str) -> Yaml {
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.push_str(more);
        self
    }

    /// The raw text, placeholders still in.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text with every placeholder replaced; new port names get a free port in `ports`.
    pub fn render(&self, ports: &mut HashMap<String, u16>, dir: &Path) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            let name = &after[..len];
            match self.values.get(name) {
                Some(value) => out.push_str(value),
                None if name == "dir" => out.push_str(&dir.display().to_string()),
                None => out.push_str(&ports.entry(name.to_string()).or_insert_with(free_port).to_string()),
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }
}

/// The length of the placeholder name at the start of `s` (0: none).
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_')).map_or(s.len(), |(i, _)| i)
}

impl From<&str> for Yaml {
    fn from(text: &str) -> Yaml {
        Yaml::new(text)
    }
}

impl From<String> for Yaml {
    fn from(text: String) -> Yaml {
        Yaml::new(&text)
    }
}

#[test]
fn placeholders_become_values_ports_and_the_dir() {
    let mut ports = HashMap::new();
    let yaml =
        Yaml::new("a: \"127.0.0.1:$web\"\nb: $web\nc: $hash\nd: $dir/x\ne: \"${KEEP}\"\nf: \"^/x$\"\ng: $ca$client\n")
            .set("hash", "$2b$08$abcdef")
            .set("ca", "ca.pem")
            .set("client", ", cert: c.pem");
    let text = yaml.render(&mut ports, Path::new("/tmp/t"));
    let expected = "a: \"127.0.0.1:PORT\"\nb: PORT\nc: $2b$08$abcdef\nd: /tmp/t/x\ne: \"${KEEP}\"\nf: \"^/x$\"\ng: ca.pem, cert: c.pem\n";
    assert_eq!(text, expected.replace("PORT", &ports["web"].to_string()));
    assert_eq!(ports.len(), 1, "{ports:?}");
}
