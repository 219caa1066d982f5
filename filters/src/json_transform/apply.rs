//! Runs a [`Program`] over a JSON body in one pass, without building the document: a cursor
//! (`jiter`, which checks the syntax of everything it reads or skips) walks the body once and
//! the output is written as it goes. A value no edit goes into is skipped and copied as the raw
//! text it came as, never parsed into a tree; a level an edit goes into is walked from the same
//! cursor, so no byte of the body is read twice.
//!
//! An object level with edits is read into a list of keys and values first (raw text, or the
//! rewritten text of a value an edit goes into), since a rename or set there depends on which
//! keys the object has; the edits are then made on that list, and it is written out. Which
//! values to walk into is decided as each key is read (see [`first_descent`]); in the rare case
//! where a later key changes that (a rename onto this key from one further on), the value is
//! read again from its raw text, which gives the same result.

use super::program::{Op, Program};
use jiter::{Jiter, Peek};
use std::borrow::Cow;
use std::ptr;

/// Runs `program` over the JSON document `body` (the whole body, checked to be one JSON value
/// with nothing but whitespace after it) and returns the new document, or why it is not JSON.
pub fn run<'a>(program: &'a Program, body: &'a str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len() + 64);
    let mut walk = Walk { body, cursor: Jiter::new(body.as_bytes()) };
    match walk.document(program, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => Err(e.description(&walk.cursor)),
    }
}

/// The cursor over one document.
struct Walk<'a> {
    body: &'a str,
    cursor: Jiter<'a>,
}

type Walked = Result<(), jiter::JiterError>;

/// One key of an object being edited, and its value.
struct Entry<'a> {
    key: Cow<'a, str>,
    value: Value<'a>,
}

/// The value of an entry.
enum Value<'a> {
    /// JSON text: raw from the body, a `set`'s, or rewritten.
    Text(Cow<'a, str>),
    /// A value from the body already walked with `program` (the descent an edit will ask for),
    /// with its raw text in case the edits end up asking for something else.
    Walked { program: &'a Program, text: String, raw: &'a str },
}

impl<'a> Walk<'a> {
    /// The whole document: one value, then nothing but whitespace.
    fn document(&mut self, program: &'a Program, out: &mut String) -> Walked {
        let peek = self.cursor.peek()?;
        self.value(program, peek, out)?;
        self.cursor.finish()
    }

    /// Runs `program` on the value at the cursor (whose first byte is `peek`), writing it to `out`.
    fn value(&mut self, program: &'a Program, peek: Peek, out: &mut String) -> Walked {
        match peek {
            Peek::Object => self.object(program, out),
            Peek::Array => self.array(program, out),
            _ => self.skip(peek, out),
        }
    }

    /// Copies the value at the cursor as it is, checking it.
    fn skip(&mut self, peek: Peek, out: &mut String) -> Walked {
        out.push_str(self.skip_raw(peek)?);
        Ok(())
    }

    /// Checks the value at the cursor and returns its raw text.
    fn skip_raw(&mut self, peek: Peek) -> Result<&'a str, jiter::JiterError> {
        let start = self.cursor.current_index();
        self.cursor.known_skip(peek)?;
        let body: &'a str = self.body;
        Ok(&body[start..self.cursor.current_index()])
    }

    /// An array: every element through the program's `[]` edits, if any, else as it is.
    fn array(&mut self, program: &'a Program, out: &mut String) -> Walked {
        let each = program.ops.iter().find_map(|op| match op {
            Op::Each(each) => Some(each),
            _ => None,
        });
        out.push('[');
        let mut next = self.cursor.known_array()?;
        let mut first = true;
        while let Some(peek) = next {
            if !first {
                out.push(',');
            }
            first = false;
            match each {
                Some(each) => self.value(each, peek, out)?,
                None => self.skip(peek, out)?,
            }
            next = self.cursor.array_step()?;
        }
        out.push(']');
        Ok(())
    }

    /// An object: its entries read, edited in order and written.
    fn object(&mut self, program: &'a Program, out: &mut String) -> Walked {
        let body = self.body;
        let mut entries: Vec<Entry<'a>> = Vec::new();
        let mut key = self.cursor.known_object()?.map(|k| borrow(body, k));
        while let Some(k) = key {
            let peek = self.cursor.peek()?;
            let value = match first_descent(program, &k, &entries) {
                Some(sub) => {
                    let start = self.cursor.current_index();
                    let mut text = String::new();
                    self.value(sub, peek, &mut text)?;
                    Value::Walked { program: sub, text, raw: &body[start..self.cursor.current_index()] }
                }
                None => Value::Text(Cow::Borrowed(self.skip_raw(peek)?)),
            };
            entries.push(Entry { key: k, value });
            key = self.cursor.next_key()?.map(|k| borrow(body, k));
        }
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
            out.push_str(match &e.value {
                Value::Text(text) => text,
                // Walked into for an edit that in the end did not reach it: the value as it came.
                Value::Walked { raw, .. } => raw,
            });
        }
        out.push('}');
        Ok(())
    }
}

/// The program that the edits will first run on the value of `key` as it came (the entries
/// before it being `seen`), if any: the edits followed in order as they apply to this one key.
/// Exact except when a rename onto its name comes from a key further on (not seen yet), which
/// would drop it; then the walk is wasted, never wrong.
fn first_descent<'a>(program: &'a Program, key: &str, seen: &[Entry<'_>]) -> Option<&'a Program> {
    let mut name = key;
    for op in &program.ops {
        match op {
            Op::Remove(k) | Op::Set { key: k, .. } if **k == *name => return None,
            Op::Rename { from, to } if from != to && **from == *name => name = to,
            Op::Rename { from, to } if from != to && **to == *name && seen.iter().any(|e| e.key == **from) => {
                return None
            }
            Op::Key { key: k, program } if **k == *name => return Some(program),
            _ => {}
        }
    }
    None
}

/// The key as `jiter` read it, borrowed from the body when it is a slice of it (no escapes).
fn borrow<'a>(body: &'a str, key: &str) -> Cow<'a, str> {
    let offset = (key.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    match body.get(offset..offset.wrapping_add(key.len())) {
        Some(slice) if ptr::eq(slice.as_ptr(), key.as_ptr()) => Cow::Borrowed(slice),
        _ => Cow::Owned(key.to_owned()),
    }
}

/// The JSON text `text` (already checked) with `program` run on it.
fn rewrite(program: &Program, text: &str) -> Result<String, jiter::JiterError> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut walk = Walk { body: text, cursor: Jiter::new(text.as_bytes()) };
    let peek = walk.cursor.peek()?;
    walk.value(program, peek, &mut out)?;
    Ok(out)
}

/// Makes one edit on an object's entries. A key present more than once is edited everywhere.
fn edit<'a>(op: &'a Op, entries: &mut Vec<Entry<'a>>) -> Walked {
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
                e.value = Value::Text(Cow::Borrowed(json));
                found = true;
            }
            if !found {
                entries.push(Entry { key: Cow::Borrowed(key), value: Value::Text(Cow::Borrowed(json)) });
            }
        }
        Op::Key { key, program } => {
            let mut found = false;
            for e in entries.iter_mut().filter(|e| e.key == **key) {
                let text = match std::mem::replace(&mut e.value, Value::Text(Cow::Borrowed(""))) {
                    Value::Walked { program: walked, text, .. } if ptr::eq(walked, program) => text,
                    Value::Walked { raw, .. } => rewrite(program, raw)?,
                    Value::Text(text) => rewrite(program, &text)?,
                };
                e.value = Value::Text(Cow::Owned(text));
                found = true;
            }
            if !found && program.creates {
                let created = Value::Text(Cow::Owned(rewrite(program, "{}")?));
                entries.push(Entry { key: Cow::Borrowed(key), value: created });
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
