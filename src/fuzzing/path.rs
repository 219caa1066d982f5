//! The path target: any request target through the canonical path.

use crate::canonical::path::strip_absolute_form;
use crate::canonical::{canonical_path, canonical_path_bytes, canonical_target_bytes};
use std::borrow::Cow;

/// Canonicalizes `data` as a request target and checks that the answer is canonical.
pub fn path(data: &[u8]) {
    let target = strip_absolute_form(data);
    let Ok(canonical) = canonical_target_bytes(target) else {
        return;
    };
    let q = canonical.iter().position(|&b| b == b'?').unwrap_or(canonical.len());
    let (p, query) = canonical.split_at(q);
    // The query is kept byte for byte.
    let raw_q = target.iter().position(|&b| b == b'?').unwrap_or(target.len());
    assert_eq!(query, &target[raw_q..], "the query changed");
    // The path is ASCII, rooted (or `*`), without what canonicalization removes.
    assert!(p.is_ascii(), "non-ASCII canonical path {p:?}");
    let text = std::str::from_utf8(p).expect("ASCII is UTF-8");
    assert!(text == "*" || text.starts_with('/'), "not rooted: {text:?}");
    if text != "*" {
        assert!(!text.contains("//"), "duplicate slash in {text:?}");
        for seg in text.split('/').skip(1) {
            assert!(seg != "." && seg != "..", "dot segment in {text:?}");
            assert!(!seg.starts_with(".;") && !seg.starts_with("..;"), "dot-params segment in {text:?}");
        }
        let upper = text.to_ascii_uppercase();
        for bad in ["%2F", "%5C", "%00", "%3B", ";"] {
            assert!(!upper.contains(bad), "{bad} in {text:?}");
        }
        assert!(!text.bytes().any(|b| b == b'\\' || b.is_ascii_control() || b == b' '), "raw byte in {text:?}");
    }
    // Idempotent, and recognised as canonical by the fast scan (borrowed).
    match canonical_target_bytes(&canonical) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, &canonical[..], "second pass changed the target"),
        Ok(Cow::Owned(again)) => panic!("second pass rewrote {canonical:?} to {again:?}"),
        Err(e) => panic!("second pass refused {canonical:?}: {e}"),
    }
    // The text and byte entry points agree.
    let raw_path = &target[..raw_q];
    if let Ok(s) = std::str::from_utf8(raw_path) {
        let a = canonical_path(s).map(Cow::into_owned);
        let b = canonical_path_bytes(raw_path).map(Cow::into_owned);
        assert_eq!(a, b, "canonical_path and canonical_path_bytes disagree");
    }
}
