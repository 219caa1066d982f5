//! An object level read into a list (the levels with a rename or a set, see
//! [`super::apply`]): its pieces, the edits made on them in order, and which values to walk
//! into as the keys are read.

use super::apply::rewrite;
use super::program::{Op, Program};
use super::scan::Scanned;
use std::borrow::Cow;
use std::ptr;

/// A part of an object being edited.
pub(super) enum Piece<'a> {
    /// Members no edit names, written as `"key":value` with commas between: copied as they are.
    Members(usize, usize),
    /// A member an edit names (or that must be written anew).
    Entry(Entry<'a>),
}

/// One key of an object being edited, and its value.
pub(super) struct Entry<'a> {
    pub(super) key: Cow<'a, str>,
    pub(super) value: Value<'a>,
}

/// The value of an entry.
pub(super) enum Value<'a> {
    /// JSON text: raw from the body, or a `set`'s.
    Text(Cow<'a, str>),
    /// JSON text written by a walk (pieces of the body and of `set`s, so UTF-8): `text[head..]`,
    /// the `head` bytes before it left free for what goes before it in the document (see
    /// `Walk::write_root`).
    Written { text: Vec<u8>, head: usize },
    /// A value from the body already walked with `program` (the descent an edit will ask for),
    /// written as `text[head..]`, with its raw text in case the edits end up asking for
    /// something else.
    Walked { program: &'a Program, text: Vec<u8>, head: usize, raw: &'a str },
}

impl Value<'_> {
    /// The JSON text this value is written as.
    pub(super) fn text(&self) -> &[u8] {
        match self {
            Value::Text(text) => text.as_bytes(),
            Value::Written { text, head } => &text[*head..],
            // Walked into for an edit that in the end did not reach it: as it came.
            Value::Walked { raw, .. } => raw.as_bytes(),
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
pub(super) fn first_descent<'a>(program: &'a Program, key: &str, seen: &[Piece<'_>]) -> Option<&'a Program> {
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

/// Makes one edit on an object's entries (the members no edit names are never touched). A key
/// present more than once is edited everywhere.
pub(super) fn edit<'a>(op: &'a Op, pieces: &mut Vec<Piece<'a>>) -> Scanned<()> {
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
                e.value = match std::mem::replace(&mut e.value, Value::Text(Cow::Borrowed(""))) {
                    Value::Walked { program: walked, text, head, .. } if ptr::eq(walked, program) => {
                        Value::Written { text, head }
                    }
                    Value::Walked { raw, .. } => rewrite(program, raw)?,
                    Value::Text(text) => rewrite(program, &text)?,
                    Value::Written { text, head } => {
                        let text =
                            std::str::from_utf8(&text[head..]).expect("a walk writes UTF-8 (pieces of the body, sets)");
                        rewrite(program, text)?
                    }
                };
                found = true;
            }
            if !found && program.creates {
                let created = rewrite(program, "{}")?;
                pieces.push(Piece::Entry(Entry { key: Cow::Borrowed(key), value: created }));
            }
        }
        Op::Each(_) => {}
    }
    Ok(())
}
