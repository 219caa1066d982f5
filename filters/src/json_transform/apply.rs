//! Runs a [`Program`] over a JSON body in one pass, without building the document: a cursor
//! ([`super::scan`], which checks the syntax of everything it reads or skips) walks the body once
//! and the output is written as it goes. A value no edit goes into is skipped and copied as the
//! raw text it came as, never parsed into a tree; a level an edit goes into is walked from the
//! same cursor, so no byte of the body is read twice.
//!
//! An object level with edits is read into a list of keys and values first (raw text, or the
//! rewritten text of a value an edit goes into), since a rename or set there depends on which
//! keys the object has; the edits are then made on that list, and it is written out. Which
//! values to walk into is decided as each key is read (see [`first_descent`]); in the rare case
//! where a later key changes that (a rename onto this key from one further on), the value is
//! read again from its raw text, which gives the same result.

use super::program::{Op, Program};
use super::scan::{Located, RawKey, ScanError, Scanned, Scanner};
use std::borrow::Cow;
use std::ptr;

/// Runs `program` over the JSON document `body` (the whole body, checked to be one JSON value
/// with nothing but whitespace after it) and returns the new document, or why it is not JSON.
pub fn run<'a>(program: &'a Program, body: &'a str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len() + 64);
    let mut walk = Walk { body, cursor: Scanner::new(body), pool: Vec::new() };
    match walk.document(program, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => Err(Located(&e, body.as_bytes()).to_string()),
    }
}

/// The cursor over one document, and entry lists to reuse.
struct Walk<'a> {
    body: &'a str,
    cursor: Scanner<'a>,
    pool: Vec<Vec<Entry<'a>>>,
}

/// One key of an object being edited, and its value.
struct Entry<'a> {
    key: Cow<'a, str>,
    value: Value<'a>,
    /// Where `"key":value` is in the body, while it is untouched and written there exactly as it
    /// would be written anew (no escapes in the key, no whitespace around the colon): then it is
    /// copied as it is, together with its untouched neighbours.
    member: Option<(usize, usize)>,
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
    fn document(&mut self, program: &'a Program, out: &mut String) -> Scanned<()> {
        let first = self.cursor.peek()?;
        self.value(program, first, out)?;
        self.cursor.finish()
    }

    /// Runs `program` on the value at the cursor (whose first byte is `first`), writing it to `out`.
    fn value(&mut self, program: &'a Program, first: u8, out: &mut String) -> Scanned<()> {
        match first {
            b'{' => self.object(program, out),
            b'[' => self.array(program, out),
            _ => {
                out.push_str(self.skip(first)?);
                Ok(())
            }
        }
    }

    /// Checks the value at the cursor and returns its raw text.
    fn skip(&mut self, first: u8) -> Scanned<&'a str> {
        let start = self.cursor.pos();
        self.cursor.skip(first)?;
        let body: &'a str = self.body;
        Ok(&body[start..self.cursor.pos()])
    }

    /// An array: every element through the program's `[]` edits, if any, else as it is.
    fn array(&mut self, program: &'a Program, out: &mut String) -> Scanned<()> {
        let each = program.ops.iter().find_map(|op| match op {
            Op::Each(each) => Some(each),
            _ => None,
        });
        out.push('[');
        let mut next = self.cursor.first_item()?;
        let mut first = true;
        while let Some(b) = next {
            if !first {
                out.push(',');
            }
            first = false;
            match each {
                Some(each) => self.value(each, b, out)?,
                None => out.push_str(self.skip(b)?),
            }
            next = self.cursor.next_item()?;
        }
        out.push(']');
        Ok(())
    }

    /// An object: its entries read, edited in order and written.
    fn object(&mut self, program: &'a Program, out: &mut String) -> Scanned<()> {
        let mut entries = self.pool.pop().unwrap_or_default();
        let read = self.entries(program, &mut entries);
        let edited = read.and_then(|()| program.ops.iter().try_for_each(|op| edit(op, &mut entries)));
        if edited.is_ok() {
            self.write(&entries, out);
        }
        entries.clear();
        self.pool.push(entries);
        edited
    }

    /// Writes an object's entries; untouched ones that were next to each other in the body (with
    /// just a comma between) as one copy of its text.
    fn write(&self, entries: &[Entry<'a>], out: &mut String) {
        let body = self.body;
        out.push('{');
        let mut run: Option<(usize, usize)> = None;
        for (i, e) in entries.iter().enumerate() {
            if let (Some((start, end)), Some(r)) = (e.member, &mut run) {
                if start == r.1 + 1 && body.as_bytes()[r.1] == b',' {
                    r.1 = end;
                    continue;
                }
            }
            if let Some((start, end)) = run.take() {
                out.push_str(&body[start..end]);
            }
            if i > 0 {
                out.push(',');
            }
            if e.member.is_some() {
                run = e.member;
                continue;
            }
            push_key(out, &e.key);
            out.push(':');
            out.push_str(match &e.value {
                Value::Text(text) => text,
                // Walked into for an edit that in the end did not reach it: as it came.
                Value::Walked { raw, .. } => raw,
            });
        }
        if let Some((start, end)) = run {
            out.push_str(&body[start..end]);
        }
        out.push('}');
    }

    /// Reads the object at the cursor into `entries`, walking into the values edits go into.
    fn entries(&mut self, program: &'a Program, entries: &mut Vec<Entry<'a>>) -> Scanned<()> {
        let mut next = self.cursor.first_key()?;
        while let Some(raw) = next {
            let key = self.key(&raw)?;
            let first = self.cursor.peek()?;
            let start = self.cursor.pos();
            let (value, member) = match first_descent(program, &key, entries) {
                Some(sub) => {
                    let mut text = String::new();
                    self.value(sub, first, &mut text)?;
                    (Value::Walked { program: sub, text, raw: &self.body[start..self.cursor.pos()] }, None)
                }
                None => {
                    let value = Value::Text(Cow::Borrowed(self.skip(first)?));
                    let verbatim = !raw.escaped && start == raw.end + 2;
                    (value, verbatim.then(|| (raw.start - 1, self.cursor.pos())))
                }
            };
            entries.push(Entry { key, value, member });
            next = self.cursor.next_key()?;
        }
        Ok(())
    }

    /// A key as a string: borrowed from the body when it has no escapes, else decoded.
    fn key(&self, raw: &RawKey) -> Scanned<Cow<'a, str>> {
        let body: &'a str = self.body;
        if !raw.escaped {
            return Ok(Cow::Borrowed(&body[raw.start..raw.end]));
        }
        // With its quotes: the escapes are checked, and a lone surrogate refused, as before.
        serde_json::from_str(&body[raw.start - 1..raw.end + 1])
            .map(Cow::Owned)
            .map_err(|_| ScanError::at("invalid escape in a key", raw.start))
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

/// The JSON text `text` (already checked) with `program` run on it.
fn rewrite(program: &Program, text: &str) -> Scanned<String> {
    let mut out = String::with_capacity(text.len() + 16);
    Walk { body: text, cursor: Scanner::new(text), pool: Vec::new() }.document(program, &mut out)?;
    Ok(out)
}

/// Makes one edit on an object's entries. A key present more than once is edited everywhere.
fn edit<'a>(op: &'a Op, entries: &mut Vec<Entry<'a>>) -> Scanned<()> {
    match op {
        Op::Remove(key) => entries.retain(|e| e.key != **key),
        Op::Rename { from, to } => {
            if from != to && entries.iter().any(|e| e.key == **from) {
                entries.retain(|e| e.key != **to);
                for e in entries.iter_mut().filter(|e| e.key == **from) {
                    e.key = Cow::Borrowed(to);
                    e.member = None;
                }
            }
        }
        Op::Set { key, json } => {
            let mut found = false;
            for e in entries.iter_mut().filter(|e| e.key == **key) {
                e.value = Value::Text(Cow::Borrowed(json));
                e.member = None;
                found = true;
            }
            if !found {
                let value = Value::Text(Cow::Borrowed(json));
                entries.push(Entry { key: Cow::Borrowed(key), value, member: None });
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
                e.member = None;
                found = true;
            }
            if !found && program.creates {
                let created = Value::Text(Cow::Owned(rewrite(program, "{}")?));
                entries.push(Entry { key: Cow::Borrowed(key), value: created, member: None });
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
