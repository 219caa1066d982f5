//! Paths (`meta.source`, `items[].price`) parsed once at config time and compiled into a
//! [`Program`]: a tree of edits, one level per object or array of the document, that
//! [`super::apply`] runs over a body in one pass.
//!
//! Edits run in the order the config gives them (every `remove`, then every `rename`, then every
//! `set`), each on the document as the earlier ones left it; the compiler keeps that order while
//! folding edits that go through the same key into one descent, so each level is walked into
//! once, however many edits it has (and the body itself is read once in all).

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// The value at this key of an object.
    Key(Box<str>),
    /// Every element of an array (`[]`).
    Each,
}

/// A parsed path: the steps to the object that holds the last key, and that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    steps: Vec<Step>,
    leaf: Box<str>,
}

impl Path {
    /// Parses `a.b`, `items[].field`, `[].id` (the elements of a body that is an array) or
    /// `matrix[][].x`. A path ends with a key; `[]` comes only right after a key or at the start.
    pub fn parse(path: &str) -> Result<Path, String> {
        if path.is_empty() {
            return Err("an empty path".into());
        }
        let mut steps = Vec::new();
        let segments: Vec<&str> = path.split('.').collect();
        for (i, segment) in segments.iter().enumerate() {
            let mut key = *segment;
            let mut each = 0;
            while let Some(rest) = key.strip_suffix("[]") {
                key = rest;
                each += 1;
            }
            if key.contains(['[', ']']) {
                return Err(format!("`{segment}`: brackets are only `[]` after a key"));
            }
            if key.is_empty() && (i > 0 || each == 0) {
                return Err(format!("`{path}`: an empty key"));
            }
            if !key.is_empty() {
                steps.push(Step::Key(key.into()));
            }
            steps.extend(std::iter::repeat_n(Step::Each, each));
        }
        match steps.pop() {
            Some(Step::Key(leaf)) => Ok(Path { steps, leaf }),
            _ => Err(format!("`{path}`: a path ends with a key, not `[]`")),
        }
    }
}

/// The edits for one value of the document, in order.
#[derive(Debug, Default)]
pub struct Program {
    pub(super) ops: Vec<Op>,
    /// Whether running it on a missing key is worth it: some `set` below would create the key.
    pub(super) creates: bool,
    /// Whether an object level must be read into a list before it is written: it has a rename,
    /// a set or a key to create, which depend on the other keys (else it is streamed).
    pub(super) lists: bool,
    /// The lengths of the keys this level's removes and walks name, a bit each (63 for any
    /// longer): a key whose bit is clear is none of them, told by its length alone.
    pub(super) lengths: u64,
    /// For each edit, the first 8 bytes of the key it names (zeros after a shorter key), to
    /// compare a key of up to 8 bytes in one step.
    pub(super) words: Vec<u64>,
}

/// One edit at one level.
#[derive(Debug)]
pub(super) enum Op {
    /// Drop this key of an object.
    Remove(Box<str>),
    /// Give this key another name (replacing any value already under the new name).
    Rename { from: Box<str>, to: Box<str> },
    /// Put this JSON text (serialized once, here) under the key, in place or appended.
    Set { key: Box<str>, json: Box<str> },
    /// Run a program on the value at this key (created as `{}` when missing and it creates).
    Key { key: Box<str>, program: Program },
    /// Run a program on every element of an array.
    Each(Program),
}

/// The first 8 bytes of `key` as a little-endian word, zeros after a shorter key.
fn word(key: &str) -> u64 {
    key.bytes().take(8).enumerate().fold(0, |w, (i, b)| w | u64::from(b) << (8 * i))
}

/// Whether `name` (a key in the body, `window` the 8 bytes from its start if there are as
/// many) is `key`, whose [`word`] is `word`: for keys of up to 8 bytes, one comparison.
#[inline(always)]
pub(super) fn same(key: &str, word: u64, name: &[u8], window: Option<&[u8; 8]>) -> bool {
    if key.len() != name.len() {
        return false;
    }
    match window {
        // Keys are never empty (paths have none), so the shift is 0 to 56.
        Some(window) if name.len() <= 8 => u64::from_le_bytes(*window) & u64::MAX >> (64 - 8 * name.len()) == word,
        _ => key.as_bytes() == name,
    }
}

impl Op {
    /// The key a remove or a walk names.
    fn key(&self) -> Option<&str> {
        match self {
            Op::Remove(k) | Op::Key { key: k, .. } => Some(k),
            _ => None,
        }
    }

    /// Whether this edit reads or writes the key `name` (an edit that does cannot be moved past
    /// another about the same key; a member no edit touches is copied as it is).
    pub(super) fn touches(&self, name: &[u8]) -> bool {
        match self {
            Op::Remove(k) | Op::Set { key: k, .. } | Op::Key { key: k, .. } => k.as_bytes() == name,
            Op::Rename { from, to } => from.as_bytes() == name || to.as_bytes() == name,
            Op::Each(_) => false,
        }
    }
}

/// What a path ends in.
pub enum Leaf {
    /// `remove`
    Remove,
    /// `rename` to this key
    Rename(Box<str>),
    /// `set` to this JSON value
    Set(serde_json::Value),
}

impl Program {
    /// Whether the program does nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds one edit after the ones added before.
    pub fn add(&mut self, path: &Path, leaf: Leaf) {
        self.add_steps(&path.steps, &path.leaf, leaf);
    }

    fn add_steps(&mut self, steps: &[Step], key: &str, leaf: Leaf) {
        self.add_op(steps, key, leaf);
        self.lists = self.ops.iter().any(|op| match op {
            Op::Remove(_) | Op::Each(_) => false,
            Op::Key { program, .. } => program.creates,
            Op::Rename { .. } | Op::Set { .. } => true,
        });
        self.lengths = self.ops.iter().fold(0, |m, op| match op {
            Op::Remove(k) | Op::Key { key: k, .. } => m | 1 << k.len().min(63),
            _ => m,
        });
        self.words = self.ops.iter().map(|op| op.key().map_or(0, word)).collect();
    }

    fn add_op(&mut self, steps: &[Step], key: &str, leaf: Leaf) {
        let Some((first, rest)) = steps.split_first() else {
            let op = match leaf {
                Leaf::Remove => Op::Remove(key.into()),
                Leaf::Rename(to) => Op::Rename { from: key.into(), to },
                Leaf::Set(value) => {
                    self.creates = true;
                    Op::Set { key: key.into(), json: value.to_string().into() }
                }
            };
            self.ops.push(op);
            return;
        };
        let sub = match first {
            Step::Key(k) => self.descent_into(k),
            Step::Each => self.descent_into_each(),
        };
        sub.add_steps(rest, key, leaf);
        // A key that a `set` below would create is created, through every level of objects
        // (arrays are not made up).
        let creates = sub.creates;
        if let Step::Key(_) = first {
            self.creates |= creates;
        }
    }

    /// The program of the last descent into key `k`, if no edit after it touches `k` (so the
    /// new edits can join it); else a new descent.
    fn descent_into(&mut self, k: &str) -> &mut Program {
        let mut found = None;
        for (i, op) in self.ops.iter().enumerate().rev() {
            if let Op::Key { key, .. } = op {
                if &**key == k {
                    found = Some(i);
                    break;
                }
            }
            if op.touches(k.as_bytes()) {
                break;
            }
        }
        let i = found.unwrap_or_else(|| {
            self.ops.push(Op::Key { key: k.into(), program: Program::default() });
            self.ops.len() - 1
        });
        match &mut self.ops[i] {
            Op::Key { program, .. } => program,
            _ => unreachable!("index {i} was found or pushed as a descent into a key"),
        }
    }

    /// The program run on every element. A value is an array or an object, never both, so the
    /// edits on keys in between never see the same value: every `[]` at a level can share one.
    fn descent_into_each(&mut self) -> &mut Program {
        let i = match self.ops.iter().rposition(|op| matches!(op, Op::Each(_))) {
            Some(i) => i,
            None => {
                self.ops.push(Op::Each(Program::default()));
                self.ops.len() - 1
            }
        };
        match &mut self.ops[i] {
            Op::Each(program) => program,
            _ => unreachable!("index {i} was found or pushed as a descent into elements"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Path {
        Path::parse(s).expect("a valid path")
    }

    #[test]
    fn paths_parse_into_steps() {
        assert_eq!(path("a"), Path { steps: vec![], leaf: "a".into() });
        assert_eq!(path("a.b"), Path { steps: vec![Step::Key("a".into())], leaf: "b".into() });
        assert_eq!(path("items[].id").steps, [Step::Key("items".into()), Step::Each]);
        assert_eq!(path("[].id").steps, [Step::Each]);
        assert_eq!(path("m[][].x").steps, [Step::Key("m".into()), Step::Each, Step::Each]);
        for bad in ["", "a.", ".a", "a..b", "items[]", "a[0].b", "a[x", "a.[].b", "[]"] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn edits_through_the_same_key_share_one_descent() {
        let mut p = Program::default();
        p.add(&path("a.x"), Leaf::Remove);
        p.add(&path("b"), Leaf::Remove);
        p.add(&path("a.y"), Leaf::Remove);
        assert_eq!(p.ops.len(), 2, "{:?}", p.ops);
        // A rename of `a` in between keeps them apart: the second `a` is the renamed one's.
        let mut p = Program::default();
        p.add(&path("a.x"), Leaf::Remove);
        p.add(&path("c"), Leaf::Rename("a".into()));
        p.add(&path("a.y"), Leaf::Remove);
        assert_eq!(p.ops.len(), 3, "{:?}", p.ops);
    }

    #[test]
    fn only_sets_create() {
        let mut p = Program::default();
        p.add(&path("meta.deep.x"), Leaf::Remove);
        assert!(!p.creates);
        p.add(&path("meta.deep.source"), Leaf::Set(serde_json::json!("gw")));
        assert!(p.creates);
        let mut p = Program::default();
        p.add(&path("items[].flag"), Leaf::Set(serde_json::json!(true)));
        assert!(!p.creates, "arrays are not created");
    }
}
