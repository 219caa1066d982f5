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

use super::list::{edit, first_descent, Entry, Piece, Value};
use super::program::{same, Op, Program};
use super::scan::{Level, Located, Named, RawKey, ScanError, Scanned, Scanner, Start};
use bytes::Bytes;
use std::borrow::Cow;

/// Runs `program` over the JSON document `body` (the whole body, checked to be one JSON value
/// with nothing but whitespace after it) and returns the new document, or why it is not JSON.
pub fn run<'a>(program: &'a Program, body: &'a str) -> Result<Bytes, String> {
    let mut out = Vec::new();
    let mut walk = Walk { body, cursor: Scanner::new(body), pool: Vec::new(), front: 0, scratch: Vec::new() };
    match walk.document(program, &mut out) {
        Ok(()) => Ok(Bytes::from(out).slice(walk.front..)),
        Err(e) => Err(Located(&e, body.as_bytes()).to_string()),
    }
}

/// The cursor over one document, and lists of pieces to reuse.
struct Walk<'a> {
    body: &'a str,
    cursor: Scanner<'a>,
    pool: Vec<Vec<Piece<'a>>>,
    /// Where the document starts in the output (after the room left before a value that the
    /// top-level object was then written around, see [`Walk::write_root`]).
    front: usize,
    /// An empty buffer to walk the next value of a listed level into.
    scratch: Vec<u8>,
}

impl<'a> Walk<'a> {
    /// The whole document: one value, then nothing but whitespace.
    fn document(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        let first = self.cursor.peek()?;
        if first == b'{' && program.lists {
            // Written into the buffer of its largest walked value, when it can be.
            self.listed(program, out, true)?;
        } else {
            out.reserve(self.body.len() + 64);
            self.value(program, first, out)?;
        }
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

    /// An object: streamed, or its members read, edited in order and written.
    fn object(&mut self, program: &'a Program, out: &mut Vec<u8>) -> Scanned<()> {
        match program.lists {
            false => self.stream(program, out),
            true => self.listed(program, out, false),
        }
    }

    /// An object read into a list, edited and written; `root` when it is the document (then
    /// the values walked at its level leave room before them, see [`Walk::write_root`]).
    fn listed(&mut self, program: &'a Program, out: &mut Vec<u8>, root: bool) -> Scanned<()> {
        let mut pieces = self.pool.pop().unwrap_or_default();
        let read = self.members(program, &mut pieces, root);
        let edited = read.and_then(|()| program.ops.iter().try_for_each(|op| edit(op, &mut pieces)));
        if edited.is_ok() {
            match root {
                true => self.write_root(&mut pieces, out),
                false => self.write(&pieces, out),
            }
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
        let mut level = Streamed { program, runs: Runs { body: body.as_bytes(), run: None, first: true }, out };
        // Most keys are told apart from all the ones the edits name by their length alone.
        let lengths = program.lengths;
        let mut next = self.cursor.plain_run(Start::Open, lengths, &mut level)?;
        while let Some(raw) = next {
            let value = self.cursor.peek()?;
            let start = self.cursor.pos();
            // Written anew it would be `"key":value`, as it is: copied, with its neighbours.
            let verbatim = !raw.escaped && start == raw.end + 2;
            let key = &body.as_bytes()[raw.start..raw.end];
            let window = body.as_bytes().get(raw.start..).and_then(<[u8]>::first_chunk);
            if verbatim && (lengths & 1 << key.len().min(63) == 0 || matches!(level.named(key, window), Named::Copied))
            {
                next = self.cursor.plain_run(Start::Value(raw.start - 1), lengths, &mut level)?;
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
                level.copy(raw.start - 1, to);
            } else {
                let out = &mut *level.out;
                level.runs.flush(out);
                if !std::mem::take(&mut level.runs.first) {
                    out.push(b',');
                }
                push_key(out, decoded.as_deref().unwrap_or(&body[raw.start..raw.end]));
                out.push(b':');
                match walk {
                    Some(sub) => self.value(sub, value, out)?,
                    None => out.extend_from_slice(self.skip(value)?.as_bytes()),
                }
            }
            next = self.cursor.plain_run(Start::After, lengths, &mut level)?;
        }
        level.runs.flush(level.out);
        level.out.push(b'}');
        Ok(())
    }

    /// Reads the object at the cursor into `pieces`: the members an edit names as entries (walking
    /// into the values an edit goes into), runs of the others as spans of the body.
    #[inline(never)]
    fn members(&mut self, program: &'a Program, pieces: &mut Vec<Piece<'a>>, root: bool) -> Scanned<()> {
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
                        let head = if root { headroom(&key, pieces) } else { 0 };
                        // Walked into a buffer about the size it will be when it is most of the
                        // body (no regrowing), kept for the next value when this one is small.
                        let size = head + (body.len() - start).min(1 << 16);
                        let mut text = std::mem::take(&mut self.scratch);
                        if text.capacity() < size {
                            // A new one (growing would copy the old one's bytes for nothing),
                            // with room for the values after this one to use it too.
                            text = Vec::with_capacity(size + 1024);
                        }
                        text.resize(head, 0);
                        self.value(sub, first, &mut text)?;
                        if text.len() < text.capacity() / 4 {
                            let small = text.clone();
                            text.clear();
                            self.scratch = std::mem::replace(&mut text, small);
                        }
                        Value::Walked { program: sub, text, head, raw: &body[start..self.cursor.pos()] }
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
            self.write_piece(piece, out);
        }
        out.push(b'}');
    }

    fn write_piece(&self, piece: &Piece<'a>, out: &mut Vec<u8>) {
        match piece {
            Piece::Members(start, end) => out.extend_from_slice(&self.body.as_bytes()[*start..*end]),
            Piece::Entry(e) => {
                push_key(out, &e.key);
                out.push(b':');
                out.extend_from_slice(e.value.text());
            }
        }
    }

    /// Writes the document's object around its largest value walked with room before it (the
    /// text before the value goes into that room, the rest after it): the value, most of the
    /// body as a rule, is not copied again. When the text before does not fit, as [`Walk::write`].
    fn write_root(&mut self, pieces: &mut [Piece<'a>], out: &mut Vec<u8>) {
        let largest = pieces
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Piece::Entry(Entry { value: Value::Written { text, head }, .. }) if *head > 0 => {
                    Some((i, text.len() - head))
                }
                _ => None,
            })
            .max_by_key(|&(_, len)| len);
        let Some((i, _)) = largest else {
            return self.write(pieces, out);
        };
        let mut before = Vec::with_capacity(64);
        before.push(b'{');
        for piece in &pieces[..i] {
            self.write_piece(piece, &mut before);
            before.push(b',');
        }
        let Piece::Entry(Entry { key, value: Value::Written { text, head } }) = &mut pieces[i] else {
            unreachable!("piece {i} was found as an entry written with room before it");
        };
        push_key(&mut before, key);
        before.push(b':');
        if before.len() > *head {
            return self.write(pieces, out);
        }
        let front = *head - before.len();
        let mut text = std::mem::take(text);
        text[front..*head].copy_from_slice(&before);
        for piece in &pieces[i + 1..] {
            text.push(b',');
            self.write_piece(piece, &mut text);
        }
        text.push(b'}');
        *out = text;
        self.front = front;
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

/// Room to leave before a value walked at the document's level, for the text that goes before it
/// (the `{`, the members before it, its key): twice that text as read, and some, so that renames
/// and sets seldom make it longer. None when that text is long (it is copied then).
fn headroom(key: &str, before: &[Piece<'_>]) -> usize {
    let members = before.iter().map(|p| match p {
        Piece::Members(start, end) => end - start + 1,
        Piece::Entry(e) => e.key.len() + 4 + e.value.text().len(),
    });
    let read = members.sum::<usize>() + key.len() + 4;
    if read > 4096 {
        return 0;
    }
    2 * read + 64
}

/// A streamed object level as the scanner reads through it: the edits' names, the runs of
/// members copied, the output.
struct Streamed<'p, 'b, 'o> {
    program: &'p Program,
    runs: Runs<'b>,
    out: &'o mut Vec<u8>,
}

impl Level for Streamed<'_, '_, '_> {
    #[inline(always)]
    fn named(&self, name: &[u8], window: Option<&[u8; 8]>) -> Named {
        let mut kind = Named::Copied;
        for (op, &word) in self.program.ops.iter().zip(&self.program.words) {
            match op {
                Op::Remove(k) if same(k, word, name, window) => return Named::Dropped,
                Op::Key { key: k, .. } if same(k, word, name, window) => kind = Named::Other,
                _ => {}
            }
        }
        kind
    }

    #[inline(always)]
    fn copy(&mut self, from: usize, to: usize) {
        self.runs.add(from, to, self.out);
    }
}

/// The members a streamed object level copies as they are: the run pending (members of the
/// body with only `,` between them), and whether nothing is written yet.
struct Runs<'b> {
    body: &'b [u8],
    run: Option<(usize, usize)>,
    first: bool,
}

impl Runs<'_> {
    /// Adds the members `from..to`: joined to the run pending when only a `,` is between them,
    /// else after it is written.
    #[inline(always)]
    fn add(&mut self, from: usize, to: usize, out: &mut Vec<u8>) {
        match &mut self.run {
            Some((_, end)) if from == *end + 1 && self.body[*end] == b',' => *end = to,
            _ => {
                self.flush(out);
                self.run = Some((from, to));
            }
        }
    }

    /// Writes the run pending, if any.
    #[inline(always)]
    fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some((from, to)) = self.run.take() {
            if !std::mem::take(&mut self.first) {
                out.push(b',');
            }
            out.extend_from_slice(&self.body[from..to]);
        }
    }
}

/// The JSON text `text` (already checked) with `program` run on it, as an entry's value.
pub(super) fn rewrite<'a>(program: &Program, text: &str) -> Scanned<Value<'a>> {
    let mut out = Vec::new();
    let mut walk = Walk { body: text, cursor: Scanner::new(text), pool: Vec::new(), front: 0, scratch: Vec::new() };
    walk.document(program, &mut out)?;
    Ok(Value::Written { text: out, head: walk.front })
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
