//! Runs a [`Program`] over a JSON body without building the document: each level the program
//! touches is read as its keys (or elements) and the raw text of their values, the edits are made
//! on that list, and it is written back; a value no edit goes into is copied as it came, never
//! parsed into a tree. Reading a level still checks the syntax of everything in it, so a body
//! that is not JSON is an error, as with a full parse.

use super::program::{Op, Program};
use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Runs `program` over the JSON document `body` (the whole body, checked to be one JSON value
/// with nothing but whitespace after it) and returns the new document.
pub fn run(program: &Program, body: &str) -> Result<String, serde_json::Error> {
    let mut out = String::with_capacity(body.len() + 64);
    let mut de = serde_json::Deserializer::from_str(body);
    let level = Level::read(&mut de)?;
    de.end()?;
    write(program, level, body, &mut out)?;
    Ok(out)
}

/// One value of the document as far as an edit needs it.
enum Level<'a> {
    /// An object: its keys and the raw text of their values, in order.
    Object(Vec<Entry<'a>>),
    /// An array: the raw text of its elements.
    Array(Vec<Cow<'a, str>>),
    /// Anything else, left as it is.
    Scalar,
}

/// One key of an object and its value's JSON text (raw from the body, or rewritten).
struct Entry<'a> {
    key: Cow<'a, str>,
    value: Cow<'a, str>,
}

impl<'a> Level<'a> {
    fn read(de: &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>) -> Result<Level<'a>, serde_json::Error> {
        de.deserialize_any(LevelVisitor)
    }

    /// Reads the value in `raw` (JSON text already checked by the level above).
    fn of(raw: &'a str) -> Result<Level<'a>, serde_json::Error> {
        Level::read(&mut serde_json::Deserializer::from_str(raw))
    }
}

/// Runs `program` on a value read as `level` (whose text is `raw`), writing the result to `out`.
fn write<'a>(program: &'a Program, level: Level<'a>, raw: &'a str, out: &mut String) -> Result<(), serde_json::Error> {
    match level {
        Level::Object(mut entries) => {
            for op in &program.ops {
                edit(op, &mut entries)?;
            }
            out.push('{');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_key(out, &e.key);
                out.push(':');
                out.push_str(&e.value);
            }
            out.push('}');
        }
        Level::Array(mut items) => {
            for op in &program.ops {
                if let Op::Each(each) = op {
                    for item in items.iter_mut() {
                        *item = Cow::Owned(rewrite(each, item)?);
                    }
                }
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(item);
            }
            out.push(']');
        }
        Level::Scalar => out.push_str(raw),
    }
    Ok(())
}

/// The value in `raw` with `program` run on it.
fn rewrite(program: &Program, raw: &str) -> Result<String, serde_json::Error> {
    let mut out = String::with_capacity(raw.len() + 16);
    write(program, Level::of(raw)?, raw, &mut out)?;
    Ok(out)
}

/// Makes one edit on an object's entries. A key present more than once is edited everywhere.
fn edit<'a>(op: &'a Op, entries: &mut Vec<Entry<'a>>) -> Result<(), serde_json::Error> {
    match op {
        Op::Remove(key) => entries.retain(|e| e.key != **key),
        Op::Rename { from, to } => {
            if from != to && entries.iter().any(|e| e.key == **from) {
                entries.retain(|e| e.key != **to);
                for e in entries.iter_mut().filter(|e| e.key == **from) {
                    e.key = Cow::Borrowed(to);
                }
            }
        }
        Op::Set { key, json } => {
            let mut found = false;
            for e in entries.iter_mut().filter(|e| e.key == **key) {
                e.value = Cow::Borrowed(json);
                found = true;
            }
            if !found {
                entries.push(Entry { key: Cow::Borrowed(key), value: Cow::Borrowed(json) });
            }
        }
        Op::Key { key, program } => {
            let mut found = false;
            for e in entries.iter_mut().filter(|e| e.key == **key) {
                e.value = Cow::Owned(rewrite(program, &e.value)?);
                found = true;
            }
            if !found && program.creates {
                entries.push(Entry { key: Cow::Borrowed(key), value: Cow::Owned(rewrite(program, "{}")?) });
            }
        }
        Op::Each(_) => {}
    }
    Ok(())
}

/// Writes `key` as a JSON string: as it is when it needs no escapes (most keys), else escaped.
fn push_key(out: &mut String, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        // Serializing a string to JSON cannot fail.
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
    }
}

// === impl Deserialize for a level ===

struct LevelVisitor;

impl<'de> Visitor<'de> for LevelVisitor {
    type Value = Level<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Level<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            entries.push(Entry { key, value: Cow::Borrowed(value.get()) });
        }
        Ok(Level::Object(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Level<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(Cow::Borrowed(item.get()));
        }
        Ok(Level::Array(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Level<'de>, E> {
        Ok(Level::Scalar)
    }
}

/// Reads an object key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}
