//! Runs a [`Program`] over a JSON body in one pass, without building the document: a cursor
//! ([`super::scan`], which checks the syntax of everything it reads or skips) walks the body once
//! and the output is written as it goes. A value no edit goes into is skipped and copied as the
//! raw text it came as, never parsed into a tree; a level an edit goes into is walked from the
//! same cursor, so no byte of the body is read twice.
//!
//! An object level whose edits are only removes and walks into keys that are there is streamed:
//! each member is dropped, walked into or copied as it is read, and runs of untouched members
//! (written `"key":value`, as they would be written anew) are copied as one span. A level with a
//! rename or a set, which depend on which keys the object has, is read into a list first: runs
//! of members no edit names as spans, the named ones as entries (key and raw text, or the
//! rewritten text of a value an edit goes into); the edits are made on that list, in order, and
//! it is written out. Which values to walk into is decided as each key is read (see
//! [`first_descent`]): a rename onto the key from one further on can make that walk wasted,
//! never wrong, and a value the edits end up asking for differently is rewritten from its text.

use super::program::{Op, Program};
use super::scan::{Located, RawKey, ScanError, Scanned, Scanner};
use std::borrow::Cow;
use std::ptr;

/// Runs `program` over the JSON document `body` (the whole body, checked to be one JSON value
/// with nothing but whitespace after it) and returns the new document, or why it is not JSON.
pub fn run<'a>(program: &'a Program, body: &'a str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut walk = Walk { body, cursor: Scanner::new(body), pool: Vec::new() };
    match walk.document(program, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => Err(Located(&e, body.as_bytes()).to_string()),
    }
}

/// The cursor over one document, and lists of pieces to reuse.
struct Walk<'a> {
    body: &'a str,
    cursor: Scanner<'a>,
    pool: Vec<Vec<Piece<'a>>>,
}

/// A part of an object being edited.
enum Piece<'a> {
    /// Members no edit names, written as `"key":value` with commas between: copied as they are.
    Members(usize, usize),
    /// A member an edit names (or that must be written anew).
    Entry(Entry<'a>),
}

/// One key of an object being edited, and its value.
struct Entry<'a> {
    key: Cow<'a, str>,
    value: Value<'a>,
}

/// The value of an entry.
enum Value<'a> {
    /// JSON text: raw from the body, or a `set`'s.
    Text(Cow<'a, str>),
    /// JSON text written by a walk (pieces of the body and of `set`s, so UTF-8).
    Written(Vec<u8>),
    /// A value from the body already walked with `program` (the descent an edit will ask for),
    /// with its raw text in case the edits end up asking for something else.
    Walked { program: &'a Program, text: Vec<u8>, raw: &'a str },
}

impl<'a> Walk<'a> {
    /// The whole document: one value, then nothing but whitespace.
    fn document(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        let first = self.cursor.peek()?;
        self.value(program, first, out)?;
        self.cursor.finish()
    }

    /// Runs `program` on the value at the cursor (whose first byte is `first`), writing it to `out`.
    fn value(&mut self, program: &'a Program, first: u8, out: &mut Vec<u8>) -> Scanned<()> {
        match first {
            b'{' => self.object(program, out),
            b'[' => self.array(program, out),
            _ => {
                out.extend_from_slice(self.skip(first)?.as_bytes());
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
    fn array(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        let each = program.ops.iter().find_map(|op| match op {
            Op::Each(each) => Some(each),
            _ => None,
        });
        out.push(b'[');
        let mut next = self.cursor.first_item()?;
        let mut first = true;
        while let Some(b) = next {
            if !first {
                out.push(b',');
            }
            first = false;
            match each {
                Some(each) => self.value(each, b, out)?,
                None => out.extend_from_slice(self.skip(b)?.as_bytes()),
            }
            next = self.cursor.next_item()?;
        }
        out.push(b']');
        Ok(())
    }

    /// An object: its members read, edited in order and written.
    fn object(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        if !program.lists {
            return self.stream(program, out);
        }
        let mut pieces = self.pool.pop().unwrap_or_default();
        let read = self.members(program, &mut pieces);
        let edited = read.and_then(|()| program.ops.iter().try_for_each(|op| edit(op, &mut pieces)));
        if edited.is_ok() {
            self.write(&pieces, out);
        }
        pieces.clear();
        self.pool.push(pieces);
        edited
    }

    /// An object whose edits need no list of its members (see [`Program::lists`]): each member
    /// written (or dropped, or walked into) as it is read; runs of untouched ones copied as one
    /// span (skipped by the scanner in one go, [`Scanner::plain_run`]).
    #[inline(never)]
    fn stream(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        let body = self.body;
        out.push(b'{');
        let mut first = true;
        let mut run: Option<(usize, usize)> = None;
        let flush = |run: &mut Option<(usize, usize)>, first: &mut bool, out: &mut Vec<u8>| {
            if let Some((from, to)) = run.take() {
                if !std::mem::take(first) {
                    out.push(b',');
                }
                out.extend_from_slice(&body.as_bytes()[from..to]);
            }
        };
        // Most keys are told apart from all the ones the edits name by their length alone.
        let lengths = program.lengths;
        let mut next = self.cursor.first_key()?;
        while let Some(raw) = next {
            let value = self.cursor.peek()?;
            let start = self.cursor.pos();
            // Written anew it would be `"key":value`, as it is: copied, with its neighbours.
            let verbatim = !raw.escaped && start == raw.end + 2;
            if verbatim && lengths & 1 << (raw.end - raw.start).min(63) == 0 {
                let (to, after) = self.cursor.plain_run(lengths)?;
                extend(&mut run, raw.start - 1, to, body, |run| flush(run, &mut first, out));
                next = after;
                continue;
            }
            let decoded = if raw.escaped { Some(decode(body, &raw)?) } else { None };
            let name = decoded.as_deref().map_or(&body.as_bytes()[raw.start..raw.end], str::as_bytes);
            let mut removed = false;
            let mut walk = None;
            if lengths & 1 << name.len().min(63) != 0 {
                for op in &program.ops {
                    match op {
                        Op::Remove(k) if k.as_bytes() == name => removed = true,
                        Op::Key { key: k, program } if k.as_bytes() == name => walk = walk.or(Some(program)),
                        _ => {}
                    }
                }
            }
            if removed {
                self.cursor.skip(value)?;
            } else if walk.is_none() && verbatim {
                self.cursor.skip(value)?;
                let to = self.cursor.pos();
                extend(&mut run, raw.start - 1, to, body, |run| flush(run, &mut first, out));
            } else {
                flush(&mut run, &mut first, out);
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                push_key(out, decoded.as_deref().unwrap_or(&body[raw.start..raw.end]));
                out.push(b':');
                match walk {
                    Some(sub) => self.value(sub, value, out)?,
                    None => out.extend_from_slice(self.skip(value)?.as_bytes()),
                }
            }
            next = self.cursor.next_key()?;
        }
        flush(&mut run, &mut first, out);
        out.push(b'}');
        Ok(())
    }

    /// Reads the object at the cursor into `pieces`: the members an edit names as entries (walking
    /// into the values an edit goes into), runs of the others as spans of the body.
    #[inline(never)]
    fn members(&mut self, program: &'a Program, pieces: &mut Vec<Piece<'a>>) -> Scanned<()> {
        let body = self.body;
        let mut next = self.cursor.first_key()?;
        while let Some(raw) = next {
            let first = self.cursor.peek()?;
            let start = self.cursor.pos();
            // Written anew, a member is `"key":value`: one like that no edit names is copied.
            let verbatim = !raw.escaped && start == raw.end + 2;
            let plain = &body.as_bytes()[raw.start..raw.end];
            if verbatim && !program.ops.iter().any(|op| op.touches(plain)) {
                self.cursor.skip(first)?;
                let (from, to) = (raw.start - 1, self.cursor.pos());
                match pieces.last_mut() {
                    Some(Piece::Members(_, end)) if from == *end + 1 && body.as_bytes()[*end] == b',' => *end = to,
                    _ => pieces.push(Piece::Members(from, to)),
                }
            } else {
                let key = self.key(&raw)?;
                let value = match first_descent(program, &key, pieces) {
                    Some(sub) => {
                        // About the size it will be when it is most of the body (no regrowing).
                        let mut text = Vec::with_capacity((body.len() - start).min(1 << 16));
                        self.value(sub, first, &mut text)?;
                        Value::Walked { program: sub, text, raw: &body[start..self.cursor.pos()] }
                    }
                    None => Value::Text(Cow::Borrowed(self.skip(first)?)),
                };
                pieces.push(Piece::Entry(Entry { key, value }));
            }
            next = self.cursor.next_key()?;
        }
        Ok(())
    }

    /// Writes an object's pieces.
    fn write(&self, pieces: &[Piece<'a>], out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match piece {
                Piece::Members(start, end) => out.extend_from_slice(&self.body.as_bytes()[*start..*end]),
                Piece::Entry(e) => {
                    push_key(out, &e.key);
                    out.push(b':');
                    out.extend_from_slice(match &e.value {
                        Value::Text(text) => text.as_bytes(),
                        Value::Written(text) => text,
                        // Walked into for an edit that in the end did not reach it: as it came.
                        Value::Walked { raw, .. } => raw.as_bytes(),
                    });
                }
            }
        }
        out.push(b'}');
    }

    /// A key as a string: borrowed from the body when it has no escapes, else decoded.
    #[inline(always)]
    fn key(&self, raw: &RawKey) -> Scanned<Cow<'a, str>> {
        let body: &'a str = self.body;
        if !raw.escaped {
            return Ok(Cow::Borrowed(&body[raw.start..raw.end]));
        }
        decode(body, raw).map(Cow::Owned)
    }
}

/// A key with escapes, decoded. With its quotes, by serde_json: the escapes are checked, and a
/// lone surrogate refused, as before.
#[cold]
fn decode(body: &str, raw: &RawKey) -> Scanned<String> {
    serde_json::from_str(&body[raw.start - 1..raw.end + 1])
        .map_err(|_| ScanError::at("invalid escape in a key", raw.start))
}

/// Adds the members `from..to` of the body to the pending run: joined to it when only a `,`
/// is between them, else after the run is flushed.
#[inline(always)]
fn extend(
    run: &mut Option<(usize, usize)>,
    from: usize,
    to: usize,
    body: &str,
    flush: impl FnOnce(&mut Option<(usize, usize)>),
) {
    match run {
        Some((_, end)) if from == *end + 1 && body.as_bytes()[*end] == b',' => *end = to,
        _ => {
            flush(run);
            *run = Some((from, to));
        }
    }
}

/// The entries among an object's pieces.
fn entries<'p, 'a>(pieces: &'p mut [Piece<'a>]) -> impl Iterator<Item = &'p mut Entry<'a>> {
    pieces.iter_mut().filter_map(|p| match p {
        Piece::Entry(e) => Some(e),
        Piece::Members(..) => None,
    })
}

/// The program that the edits will first run on the value of `key` as it came (the pieces
/// before it being `seen`), if any: the edits followed in order as they apply to this one key.
/// Exact except when a rename onto its name comes from a key further on (not seen yet), which
/// would drop it; then the walk is wasted, never wrong.
fn first_descent<'a>(program: &'a Program, key: &str, seen: &[Piece<'_>]) -> Option<&'a Program> {
    let seen = |name: &str| seen.iter().any(|p| matches!(p, Piece::Entry(e) if e.key == name));
    let mut name = key;
    for op in &program.ops {
        match op {
            Op::Remove(k) | Op::Set { key: k, .. } if **k == *name => return None,
            Op::Rename { from, to } if from != to && **from == *name => name = to,
            Op::Rename { from, to } if from != to && **to == *name && seen(from) => return None,
            Op::Key { key: k, program } if **k == *name => return Some(program),
            _ => {}
        }
    }
    None
}

/// The JSON text `text` (already checked) with `program` run on it.
fn rewrite(program: &Program, text: &str) -> Scanned<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 16);
    Walk { body: text, cursor: Scanner::new(text), pool: Vec::new() }.document(program, &mut out)?;
    Ok(out)
}

/// Makes one edit on an object's entries (the members no edit names are never touched). A key
/// present more than once is edited everywhere.
fn edit<'a>(op: &'a Op, pieces: &mut Vec<Piece<'a>>) -> Scanned<()> {
    let named = |p: &Piece<'_>, key: &str| matches!(p, Piece::Entry(e) if e.key == key);
    match op {
        Op::Remove(key) => pieces.retain(|p| !named(p, key)),
        Op::Rename { from, to } => {
            if from != to && pieces.iter().any(|p| named(p, from)) {
                pieces.retain(|p| !named(p, to));
                for e in entries(pieces).filter(|e| e.key == **from) {
                    e.key = Cow::Borrowed(to);
                }
            }
        }
        Op::Set { key, json } => {
            let mut found = false;
            for e in entries(pieces).filter(|e| e.key == **key) {
                e.value = Value::Text(Cow::Borrowed(json));
                found = true;
            }
            if !found {
                pieces.push(Piece::Entry(Entry { key: Cow::Borrowed(key), value: Value::Text(Cow::Borrowed(json)) }));
            }
        }
        Op::Key { key, program } => {
            let mut found = false;
            for e in entries(pieces).filter(|e| e.key == **key) {
                let text = match std::mem::replace(&mut e.value, Value::Text(Cow::Borrowed(""))) {
                    Value::Walked { program: walked, text, .. } if ptr::eq(walked, program) => text,
                    Value::Walked { raw, .. } => rewrite(program, raw)?,
                    Value::Text(text) => rewrite(program, &text)?,
                    Value::Written(text) => {
                        let text = std::str::from_utf8(&text).expect("a walk writes UTF-8 (pieces of the body, sets)");
                        rewrite(program, text)?
                    }
                };
                e.value = Value::Written(text);
                found = true;
            }
            if !found && program.creates {
                let created = Value::Written(rewrite(program, "{}")?);
                pieces.push(Piece::Entry(Entry { key: Cow::Borrowed(key), value: created }));
            }
        }
        Op::Each(_) => {}
    }
    Ok(())
}

/// Writes `key` as a JSON string: as it is when it needs no escapes (most keys), else escaped.
fn push_key(out: &mut Vec<u8>, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.push(b'"');
    } else {
        // Serializing a string to JSON cannot fail.
        out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
    }
}
