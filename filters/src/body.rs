//! What the filters that read whole bodies (`json_transform`, `json_schema`) share: holding a
//! body's chunks back until it is whole, up to a size, and per-request state kept per filter
//! instance (two such filters on one chain, the listener's and the route's, each keep their own).

use crate::RequestCtx;
use bytes::{Bytes, BytesMut};

/// Chunks of one body held back until the body is whole.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    buf: BytesMut,
    first: Option<Bytes>,
    max: usize,
}

/// What holding one more chunk gave.
pub(crate) enum Hold {
    /// The body goes on; nothing to send yet.
    More,
    /// The body is whole (possibly empty): here it is.
    Whole(Bytes),
    /// The body went over the size: everything held so far, to send on as it is.
    Overflow(Bytes),
}

impl Held {
    /// Holds up to `max` bytes.
    pub(crate) fn new(max: usize) -> Held {
        Held { buf: BytesMut::new(), first: None, max }
    }

    /// Takes one chunk (`None` when the body phase has no data this time) and says what to do.
    pub(crate) fn push(&mut self, chunk: Option<&Bytes>, end: bool) -> Hold {
        if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
            // One chunk is kept as it is (no copy); a second starts the buffer.
            match self.first.take() {
                None if self.buf.is_empty() => self.first = Some(chunk.clone()),
                first => {
                    if let Some(first) = first {
                        self.buf.extend_from_slice(&first);
                    }
                    self.buf.extend_from_slice(chunk);
                }
            }
        }
        if self.len() > self.max {
            return Hold::Overflow(self.take());
        }
        if end {
            Hold::Whole(self.take())
        } else {
            Hold::More
        }
    }

    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.buf.len()
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.buf).freeze(),
        }
    }
}

/// Per-request state of type `T` for each filter instance that keeps one, keyed by the
/// instance's address (filters live as long as the config the request runs on).
#[derive(Clone)]
struct Slots<T>(Vec<(usize, T)>);

/// The state filter `owner` keeps for this request, if it put one.
pub(crate) fn slot<'c, T: Clone + Send + Sync + 'static>(
    ctx: &'c mut RequestCtx,
    owner: &impl Sized,
) -> Option<&'c mut T> {
    let id = owner as *const _ as usize;
    let slots = ctx.state.get_mut::<Slots<T>>()?;
    slots.0.iter_mut().find(|(o, _)| *o == id).map(|(_, t)| t)
}

/// Puts (or replaces) the state filter `owner` keeps for this request.
pub(crate) fn put<T: Clone + Send + Sync + 'static>(ctx: &mut RequestCtx, owner: &impl Sized, value: T) {
    let id = owner as *const _ as usize;
    match ctx.state.get_mut::<Slots<T>>() {
        Some(slots) => match slots.0.iter_mut().find(|(o, _)| *o == id) {
            Some((_, t)) => *t = value,
            None => slots.0.push((id, value)),
        },
        None => {
            ctx.state.insert(Slots(vec![(id, value)]));
        }
    }
}

/// The declared `Content-Length` of a message, if any and readable.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_whole_or_too_big() {
        let mut held = Held::new(6);
        assert!(matches!(held.push(Some(&Bytes::from_static(b"abc")), false), Hold::More));
        assert!(matches!(held.push(None, false), Hold::More));
        match held.push(Some(&Bytes::from_static(b"de")), true) {
            Hold::Whole(b) => assert_eq!(b, "abcde"),
            _ => panic!("expected the whole body"),
        }
        let mut held = Held::new(4);
        assert!(matches!(held.push(Some(&Bytes::from_static(b"abc")), false), Hold::More));
        match held.push(Some(&Bytes::from_static(b"de")), false) {
            Hold::Overflow(b) => assert_eq!(b, "abcde", "everything held so far goes on"),
            _ => panic!("expected an overflow"),
        }
        assert!(matches!(Held::new(4).push(None, true), Hold::Whole(b) if b.is_empty()));
    }

    #[test]
    fn each_filter_keeps_its_own_slot() {
        let (a, b) = (1u8, 2u8);
        let mut ctx = RequestCtx::default();
        put(&mut ctx, &a, 10u32);
        put(&mut ctx, &b, 20u32);
        put(&mut ctx, &a, 11u32);
        assert_eq!(slot::<u32>(&mut ctx, &a).copied(), Some(11));
        assert_eq!(slot::<u32>(&mut ctx, &b).copied(), Some(20));
        assert_eq!(slot::<u64>(&mut ctx, &a), None);
    }
}
