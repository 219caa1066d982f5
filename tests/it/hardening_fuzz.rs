//! Issue 12, item 9: the fuzz targets in the normal suite. Every file the fuzzers found or kept
//! (`tests/fuzz/corpus/<target>/`, minimized with `cargo fuzz cmin`) is replayed through the same
//! entry points the fuzzers call (`portico::fuzzing`), and a `proptest` property per target runs
//! a few hundred generated inputs, which is how CI runs each target briefly. How to run the
//! fuzzers themselves: `tests/fuzz/README.md`.

use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// A fuzz target's entry point.
type Target = fn(&[u8]);

/// The targets, each with its entry point.
const TARGETS: &[(&str, Target)] = &[
    ("config", portico::fuzzing::config),
    ("path", portico::fuzzing::path),
    ("route", portico::fuzzing::route),
    ("chain", portico::fuzzing::chain),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target)
}

/// Every file of a target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("corpus file reads"))).collect()
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    for (target, run) in TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "tests/fuzz/corpus/{target} is empty");
        assert!(files.len() <= 500, "tests/fuzz/corpus/{target}: {} files, minimize it (README)", files.len());
        for (path, data) in files {
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        }
    }
}

/// Mutations of the shipped configs: a span cut out, or a YAML token put in.
fn mutated_config() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus("config").into_iter().map(|(_, d)| d).filter(|d| d.len() > 40).collect();
    let tokens = prop::sample::select(vec![
        &b"\n  - "[..],
        b": ",
        b"{",
        b"}",
        b"[",
        b"${X}",
        b"${X:-",
        b"*a",
        b"&a ",
        b"!!binary ",
        b"\t",
        b"'",
        b"\"",
        b"0x",
        b"-1",
        b"99999999999999999999",
        b"path_regex: \"(\"",
    ]);
    (prop::sample::select(seeds), any::<prop::sample::Index>(), 0..40usize, prop::option::of(tokens)).prop_map(
        |(seed, at, cut, token)| {
            let at = at.index(seed.len());
            let end = (at + cut).min(seed.len());
            let mut out = seed[..at].to_vec();
            out.extend_from_slice(token.unwrap_or_default());
            out.extend_from_slice(&seed[end..]);
            out
        },
    )
}

/// Request targets made of the pieces that matter to the canonical path.
fn pathish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        &b"/"[..],
        b"//",
        b".",
        b"..",
        b"%2e",
        b"%2E",
        b"%2f",
        b"%3b",
        b";",
        b"%",
        b"%61",
        b"%7E",
        b"?",
        b"#",
        b"\\",
        b"a",
        b"admin",
        b"\xc3\xa9",
        b"\x00",
        b"http://h",
        b"*",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// Raw requests on the chain target's routes, with the headers its filters read.
fn requestish() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::sample::select(vec![
        &b"GET /partners/x HTTP/1.1\r\n"[..],
        b"GET /keyed HTTP/1.1\r\n",
        b"POST /keyed HTTP/1.1\r\n",
        b"OPTIONS /keyed HTTP/1.1\r\n",
        b"GET /partners/../keyed HTTP/1.1\r\n",
        b"GET /partners/x?api_key=mobile-key HTTP/1.1\r\n",
        b"GET /ops/x HTTP/1.1\r\n",
        b"GET /api/x HTTP/1.1\r\n",
        b"GET http://a.example.com/api/x HTTP/1.1\r\n",
        b"GET / HTTP/1.0\r\n",
    ]);
    let header = prop::sample::select(vec![
        &b"Host: a.example.com\r\n"[..],
        b"Host: h\r\n",
        b"x-api-key: mobile-key\r\n",
        b"x-api-key: intern-key\r\n",
        b"x-api-key: \r\n",
        b"X-API-KEY: mobile-key\r\n",
        b"Authorization: Basic b3BzOmZ1enotcGFzc3dvcmQ=\r\n",
        b"Authorization: Basic Og==\r\n",
        b"Authorization: Bearer a.b.c\r\n",
        b"Origin: https://app.example\r\n",
        b"Access-Control-Request-Method: GET\r\n",
        b"Accept-Encoding: gzip, br\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"x-user-id: forged\r\n",
    ]);
    let body = prop::sample::select(vec![&b""[..], b"abc", b"0\r\n\r\n", b"3\r\nabc\r\n0\r\n\r\n"]);
    (line, prop::collection::vec(header, 0..6), body).prop_map(|(line, headers, body)| {
        let mut raw = line.to_vec();
        raw.extend(headers.concat());
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body);
        raw
    })
}

/// Cases per property: 300, or `PORTICO_FUZZ_CASES` for a longer run without cargo-fuzz.
fn cases() -> u32 {
    std::env::var("PORTICO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn config_target(data in mutated_config()) {
        portico::fuzzing::config(&data);
    }

    #[test]
    fn path_target(data in pathish()) {
        portico::fuzzing::path(&data);
    }

    #[test]
    fn route_target(data in prop::collection::vec(any::<u8>(), 0..96)) {
        portico::fuzzing::route(&data);
    }

    #[test]
    fn chain_target(data in requestish()) {
        portico::fuzzing::chain(&data);
    }
}
