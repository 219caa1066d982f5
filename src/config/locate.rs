//! Maps YAML paths (`routes[2].upstream`) to line and column in the source, so that errors found
//! after parsing (unknown upstream, bad CIDR) still point into the file.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Where each path of a YAML document starts (1-based line and column).
#[derive(Debug, Default)]
pub struct Locations {
    spots: HashMap<String, (usize, usize)>,
}

impl Locations {
    /// Indexes `source`; a document that does not parse yields an empty index (serde_yaml
    /// reports the syntax error itself).
    pub fn index(source: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut walker, false).is_err() {
            return Locations::default();
        }
        Locations { spots: walker.spots }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(spot) = self.spots.get(p) {
                return Some(*spot);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    /// In a mapping: the key just read, if the next event is its value.
    Map { pending_key: Option<String> },
    /// In a sequence: the index of the next item.
    Seq { next: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<(Frame, String)>,
    spots: HashMap<String, (usize, usize)>,
}

impl Walker {
    /// The path of the node that this event starts, advancing the parent frame; `None` when the
    /// event is a mapping key.
    fn child_path(&mut self, ev: &Event, mark: Marker) -> Option<String> {
        let Some((frame, path)) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Map { pending_key } => match pending_key.take() {
                Some(key) => Some(if path.is_empty() { key } else { format!("{path}.{key}") }),
                None => {
                    let key = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => "?".to_string(),
                    };
                    let full = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    self.spots.insert(full, (mark.line(), mark.col() + 1));
                    *pending_key = Some(key);
                    None
                }
            },
            Frame::Seq { next } => {
                let p = format!("{path}[{next}]");
                *next += 1;
                self.spots.entry(p.clone()).or_insert((mark.line(), mark.col() + 1));
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(..) | Event::Alias(..) | Event::MappingStart(..) | Event::SequenceStart(..) => {
                let Some(path) = self.child_path(&ev, mark) else {
                    return;
                };
                match ev {
                    Event::MappingStart(..) => self.stack.push((Frame::Map { pending_key: None }, path)),
                    Event::SequenceStart(..) => self.stack.push((Frame::Seq { next: 0 }, path)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_items() {
        let src = "server:\n  threads: 2\nroutes:\n  - name: a\n    upstream: x\n  - name: b\n    match: {path: /b}\n";
        let loc = Locations::index(src);
        assert_eq!(loc.find("server.threads"), Some((2, 3)));
        assert_eq!(loc.find("routes[1].name"), Some((6, 5)));
        assert_eq!(loc.find("routes[0].upstream"), Some((5, 5)));
        assert_eq!(loc.find("routes[1].match.path"), Some((7, 13)));
        assert_eq!(loc.find("routes[1].match.nothing"), Some((7, 5)));
    }
}
