//! A validating cursor over JSON text (RFC 8259), for [`super::apply`]'s one pass: it steps
//! through objects and arrays, skips values it is not asked into (checking them, never building
//! them), and gives positions so that a skipped value's raw text can be copied as it came.
//!
//! It refuses what serde_json refuses: bad escapes, control characters in strings, numbers
//! outside the grammar (`01`, `1.`, `-`, `.5`), unclosed containers, trailing commas, anything
//! but whitespace after the document, and nesting deeper than serde_json's limit (so hostile
//! input cannot exhaust the stack).
//!
//! Where the instructions go: strings are checked 8 bytes at a time; a skipped container goes
//! through a table-driven automaton ([`super::skip`]; no recursion, no call per member); the
//! members of a level that streams are read by [`Scanner::plain_run`] without going back to the
//! caller for each one. The steps themselves are free functions over `(bytes, offset)`
//! ([`super::token`]), so the offset stays in a register.

use super::token::{colon, key, number, other, string, whitespace};
use std::fmt;

/// How many containers may be open at once: 127, as with serde_json (which refuses the 128th).
pub(super) const MAX_DEPTH: u32 = 127;

/// Why the text is not JSON, and where.
#[derive(Debug)]
pub struct ScanError {
    what: &'static str,
    at: usize,
}

impl ScanError {
    /// An error found outside the scanner (a key's escapes), at byte `at`.
    pub fn at(what: &'static str, at: usize) -> ScanError {
        ScanError { what, at }
    }
}

/// The text the error is about, to say where it is as a line and column.
pub struct Located<'a>(pub &'a ScanError, pub &'a [u8]);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let before = &self.1[..self.0.at.min(self.1.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        write!(f, "{} at line {line} column {column}", self.0.what)
    }
}

/// What a step of the scanner gives: its result, or why the text is not JSON.
pub type Scanned<T> = Result<T, ScanError>;

/// The error `what` at byte `at` (out of line: the hot paths only branch to it).
#[cold]
#[inline(never)]
pub(super) fn fail<T>(what: &'static str, at: usize) -> Scanned<T> {
    Err(ScanError { what, at })
}

pub(super) const EOF_OBJECT: &str = "EOF while parsing an object";
pub(super) const EOF_LIST: &str = "EOF while parsing a list";
pub(super) const EOF_VALUE: &str = "EOF while parsing a value";

/// Where [`Scanner::plain_run`] starts.
pub enum Start {
    /// On an object's `{`.
    Open,
    /// On the value of a member the level copies (right after its key's `:`), whose key's
    /// opening quote is at this offset.
    Value(usize),
    /// Just past the value of a member the level did not copy.
    After,
}

/// An object level that streams, as [`Scanner::plain_run`] reads through it.
pub trait Level {
    /// What becomes of the member whose key is `name` (`window`: the 8 bytes of the text from
    /// the key's start, when there are as many).
    fn named(&self, name: &[u8], window: Option<&[u8; 8]>) -> Named;
    /// Copies the members at `from..to` of the text as they are.
    fn copy(&mut self, from: usize, to: usize);
}

/// What an object level that streams does with a member, by its key (see [`Scanner::plain_run`]).
pub enum Named {
    /// Copies it as it is (when it is written as it would be written anew).
    Copied,
    /// Drops it.
    Dropped,
    /// Looks at it (walks into its value).
    Other,
}

/// The cursor: a position in the text and how many containers are open there.
pub struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

/// An object key as it is in the text: the range between its quotes, and whether it has escapes.
pub struct RawKey {
    /// The offset just past the opening quote.
    pub start: usize,
    /// The offset of the closing quote.
    pub end: usize,
    /// Whether the key has a backslash (then it must be decoded to be compared).
    pub escaped: bool,
}

impl<'a> Scanner<'a> {
    /// A cursor at the start of `text` (UTF-8 already checked: the scanner checks only JSON).
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { bytes: text.as_bytes(), pos: 0, depth: 0 }
    }

    /// Where the cursor is (a byte offset into the text).
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn error<T>(&self, what: &'static str) -> Scanned<T> {
        fail(what, self.pos)
    }

    /// The first byte of the next value (the cursor moved onto it, past whitespace).
    #[inline(always)]
    pub fn peek(&mut self) -> Scanned<u8> {
        self.peek_in(EOF_VALUE)
    }

    /// Nothing but whitespace is left.
    pub fn finish(&mut self) -> Scanned<()> {
        self.pos = whitespace(self.bytes, self.pos);
        if self.pos < self.bytes.len() {
            return self.error("trailing characters");
        }
        Ok(())
    }

    /// Checks the value at the cursor (whose first byte is `first`) and moves past it.
    #[inline(always)]
    pub fn skip(&mut self, first: u8) -> Scanned<()> {
        self.pos = match first {
            b'"' => string(self.bytes, self.pos + 1)?.0,
            b'-' | b'0'..=b'9' => number(self.bytes, self.pos)?,
            _ => other(self.bytes, self.pos, first, self.depth)?,
        };
        Ok(())
    }

    #[inline(always)]
    fn open(&mut self) -> Scanned<()> {
        if self.depth >= MAX_DEPTH {
            return self.error("recursion limit exceeded");
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// Opens the object at the cursor: its first key (the cursor past its `:`), or `None` when
    /// it is empty (the cursor past its `}`).
    #[inline(always)]
    pub fn first_key(&mut self) -> Scanned<Option<RawKey>> {
        self.open()?;
        if self.peek_in(EOF_OBJECT)? == b'}' {
            self.close();
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// After a value in an object: the next key, or `None` at its end.
    #[inline(always)]
    pub fn next_key(&mut self) -> Scanned<Option<RawKey>> {
        match self.peek_in(EOF_OBJECT)? {
            b',' => {
                self.pos = whitespace(self.bytes, self.pos + 1);
                self.key().map(Some)
            }
            b'}' => {
                self.close();
                Ok(None)
            }
            _ => self.error("expected `,` or `}`"),
        }
    }

    #[inline(always)]
    fn key(&mut self) -> Scanned<RawKey> {
        let (key, pos) = key(self.bytes, self.pos)?;
        self.pos = pos;
        Ok(key)
    }

    /// The members of an object level that streams, from the value of one it copies (the
    /// cursor on its first byte, right after its key's `:`; `from` is that key's opening
    /// quote): skips values, gives each run of members copied as they are to the level (the
    /// member's range and those after it as long as each follows the last value after a `,`
    /// alone, its key without escapes and its value right after its `:`), and skips the members
    /// the level drops. The level is asked only about keys whose length is among `lengths` (a
    /// bit each, 63 for any longer). Stops at a member to look at, which it gives as
    /// [`Scanner::next_key`] does, or at the object's end (`None`).
    #[inline(always)]
    pub fn plain_run(&mut self, start: Start, lengths: u64, level: &mut impl Level) -> Scanned<Option<RawKey>> {
        let bytes = self.bytes;
        let mut pos = self.pos;
        // The start of the run being skipped (none after a member dropped), and its end so far.
        let mut from = None;
        let mut end = 0;
        // Whether the cursor is at a key's first byte (`key`), else at a value to skip or (at
        // the start, `After`) just past one.
        let (mut at_key, mut key, mut skip) = (false, 0, true);
        match start {
            Start::Open => {
                self.open()?;
                pos = self.pos;
                if bytes.get(pos) != Some(&b'"') {
                    // Empty, or spaced: as `first_key` does it.
                    if self.peek_in(EOF_OBJECT)? == b'}' {
                        self.close();
                        return Ok(None);
                    }
                    return self.key().map(Some);
                }
                (at_key, key) = (true, pos + 1);
            }
            Start::Value(quote) => from = Some(quote),
            Start::After => skip = false,
        }
        loop {
            if !at_key {
                if skip {
                    let Some(&first) = bytes.get(pos) else {
                        return fail(EOF_VALUE, pos);
                    };
                    pos = match first {
                        b'"' => string(bytes, pos + 1)?.0,
                        b'-' | b'0'..=b'9' => number(bytes, pos)?,
                        // The automaton here, without a call; on a fault `other` says what it is.
                        b'{' | b'[' => match super::skip::container(bytes, pos, self.depth, MAX_DEPTH) {
                            Some(end) => end,
                            None => other(bytes, pos, first, self.depth)?,
                        },
                        _ => other(bytes, pos, first, self.depth)?,
                    };
                    if from.is_some() {
                        end = pos;
                    }
                }
                skip = true;
                if bytes.get(pos..pos + 2) != Some(b",\"") {
                    if let Some(from) = from {
                        level.copy(from, end);
                    }
                    self.pos = pos;
                    return self.next_key();
                }
                key = pos + 2;
            }
            at_key = false;
            let (close, escaped) = string(bytes, key)?;
            let length = close - 1 - key;
            let kind = match (escaped, lengths & 1 << length.min(63)) {
                (true, _) => Named::Other,
                (false, 0) => Named::Copied,
                (false, _) => level.named(&bytes[key..close - 1], bytes.get(key..).and_then(<[u8]>::first_chunk)),
            };
            match kind {
                Named::Copied if bytes.get(close) == Some(&b':') && bytes.get(close + 1).is_some_and(|&b| b > b' ') => {
                    from = from.or(Some(key - 1));
                    pos = close + 1;
                }
                Named::Dropped => {
                    if let Some(from) = from.take() {
                        level.copy(from, end);
                    }
                    pos = whitespace(bytes, colon(bytes, close)?);
                }
                _ => {
                    if let Some(from) = from {
                        level.copy(from, end);
                    }
                    // A member to look at: the cursor past its `:`, as `next_key` leaves it.
                    self.pos = colon(bytes, close)?;
                    return Ok(Some(RawKey { start: key, end: close - 1, escaped }));
                }
            }
        }
    }

    /// Opens the array at the cursor: the first byte of its first element, or `None` when it is
    /// empty (the cursor past its `]`).
    #[inline(always)]
    pub fn first_item(&mut self) -> Scanned<Option<u8>> {
        self.open()?;
        match self.peek_in(EOF_LIST)? {
            b']' => {
                self.close();
                Ok(None)
            }
            b => Ok(Some(b)),
        }
    }

    /// After an element: the first byte of the next one, or `None` at the array's end.
    #[inline(always)]
    pub fn next_item(&mut self) -> Scanned<Option<u8>> {
        match self.peek_in(EOF_LIST)? {
            b',' => {
                self.pos += 1;
                self.peek().map(Some)
            }
            b']' => {
                self.close();
                Ok(None)
            }
            _ => self.error("expected `,` or `]`"),
        }
    }

    #[inline(always)]
    fn close(&mut self) {
        self.pos += 1;
        self.depth -= 1;
    }

    /// The next byte past whitespace, or `what` at the end of the text.
    #[inline(always)]
    fn peek_in(&mut self, what: &'static str) -> Scanned<u8> {
        self.pos = whitespace(self.bytes, self.pos);
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.error(what),
        }
    }
}
