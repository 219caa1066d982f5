//! The cost of `json_transform` on a 10 KB JSON body (an object with a 75-element `items`
//! array), through the filter's real phases: the response header, then the body's one chunk
//! (`response_body`, end of stream), with the edits a user would write (remove at the top, in a
//! nested object and in every element, a rename, two sets). Target: under 20 us.
//!
//! `dom_roundtrip` is the floor of the obvious design, for comparison: the same body parsed
//! into a `serde_json::Value` and written back, with no edit at all. The filter reads the body
//! once (`apply.rs` over `scan.rs` and `skip.rs`): values no edit reaches are checked and copied as raw text,
//! the levels an edit reaches are walked from the same cursor, never parsed into a tree.
//!
//! Run: `cargo bench --bench json_transform -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-12-02 by the machine's clock, `--profile floor`). The main figure is
//! the instruction count under callgrind (Ir), which does not depend on the load:
//! `valgrind --tool=callgrind BIN --bench --profile-time 3 json_transform/response_10k`, the
//! inclusive Ir of `JsonTransform::response_body` (`request_body` for request_10k) divided by
//! its calls; dom_roundtrip is one iteration (parse, write, drop):
//!
//! ```text
//!                 serde_json RawValue   one pass        session 6 (automaton for skipped
//!                 per level (185d2ab)   (579995e)       containers, run loop, no second copy)
//! response_10k    926,309 Ir a call     225,676         148,875  (-34.0%; 6.2x fewer than 185d2ab)
//! request_10k     923,468               223,799         146,965  (-34.3%)
//!
//!                 jemalloc (fc05dcc)    automaton inline in the run loop (f4fa6f2)
//! response_10k    147,497               140,664  (-4.6%)
//! request_10k     145,988               139,151  (-4.7%)
//! dom_roundtrip   about 1,538,000 (serde_json's, unchanged)
//! ```
//!
//! Session 6's per-call split of response_10k (self Ir): the streamed element objects 89,000,
//! their skipped `dims`/`tags` containers 35,200, UTF-8 check 4,700, memcpy 4,900 (was 13,500:
//! the walked `items` text is no longer copied into the output), malloc/free ~8,900. The
//! response header phase (`JsonTransform::response`, not in the figure above) is ~2,600 Ir.
//! No criterion timings were taken for session 6 (the integrator runs them on a quiet machine).
//!
//! Criterion times for the one-pass build, back to back, load average 1.8-2.0 on the 2-core VM
//! (so noisy: the same binary moved by a third between runs): response_10k 22.3 / 29.6 us
//! (before: 79.1 / 103.8 us), request_10k 24.8 / 24.4 us (before: 131.3 us), dom_roundtrip
//! 205-236 us.
//!
//! The routines free the edited body inside the timed part (as the proxy does once it is sent):
//! criterion keeps a batch's outputs until the batch ends, which put every 10 KB body in fresh
//! pages (measured that way, the one-pass build gave 42-59 us for response_10k, against 22-30
//! us with the body freed; the figures for the old build above are with the body freed too).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico_filters::{registry, testkit, Filter, ResponseHeader};
use std::hint::black_box;
use std::sync::Arc;

/// The allocator the daemon runs the filter on (`src/main.rs`), so the edited body's buffer
/// costs here what it costs there.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const EDITS: &str = r#"{request: {remove: [debug, "items[].secret"], rename: {userName: user_name},
                                  set: {"meta.source": gateway}},
                       response: {remove: [password, "internal.cost", "items[].secret"], rename: {id: user_id},
                                  set: {api_version: "2", "meta.via": portico}}}"#;

/// About 10 KB of JSON.
fn body() -> Bytes {
    let items: Vec<_> = (0..75)
        .map(|i| {
            serde_json::json!({"sku": format!("SKU-{i:05}"), "name": format!("Item number {i}"), "qty": i % 7 + 1,
                               "price": 12.5 + i as f64, "secret": "s3cr3t", "tags": ["a", "b", "c"],
                               "dims": {"w": 10, "h": 20, "d": 30}})
        })
        .collect();
    let doc = serde_json::json!({"id": 42, "userName": "ann", "password": "hunter2", "debug": true,
                                 "internal": {"cost": 12, "team": "core"}, "items": items});
    let text = doc.to_string();
    assert!((9_000..12_000).contains(&text.len()), "the body is about 10 KB: {}", text.len());
    Bytes::from(text)
}

fn filter() -> Arc<dyn Filter> {
    let value = serde_yaml::from_str(EDITS).expect("the bench's YAML is valid");
    registry::build("json_transform", value, &testkit::context()).expect("the bench's config is valid")
}

fn bench(c: &mut Criterion) {
    let f = filter();
    let body = body();
    let mut group = c.benchmark_group("json_transform");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    // The request phase, outside the timed part: it notes the client for the response header.
    let request = |raw: &str| {
        let mut request = runtime.block_on(testkit::TestRequest::from_bytes(raw.as_bytes())).expect("a request");
        runtime.block_on(f.request(&mut request.session, &mut request.ctx)).expect("runs");
        request.ctx
    };
    group.bench_function("response_10k", |b| {
        b.iter_batched(
            || {
                let mut resp = ResponseHeader::build(200, None).expect("a status");
                resp.insert_header("content-type", "application/json").expect("a header");
                resp.insert_header("content-length", body.len()).expect("a header");
                (request("GET /users/7 HTTP/1.1\r\nHost: h\r\n\r\n"), resp, Some(body.clone()))
            },
            |(mut ctx, mut resp, mut chunk)| {
                f.response(&mut resp, &mut ctx).expect("runs");
                f.response_body(&mut chunk, true, &mut ctx).expect("runs");
                assert!(chunk.as_ref().is_some_and(|c| c.len() < body.len()), "the body was edited");
                // The edited body is freed here, as the proxy frees it once sent: criterion keeps
                // a batch's outputs until the batch ends, which would put each body in fresh pages.
                black_box(chunk.map(|c| c.len()))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("request_10k", |b| {
        let raw = format!("POST /orders HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len());
        b.iter_batched(
            || (request(&raw), Some(body.clone())),
            |(mut ctx, mut chunk)| {
                let _ = f.request_body(chunk.as_ref(), true, &mut ctx);
                f.edit_request_body(&mut chunk, true, &mut ctx).expect("runs");
                assert!(chunk.as_ref().is_some_and(|c| c.len() < body.len()), "the body was edited");
                black_box(chunk.map(|c| c.len()))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("dom_roundtrip", |b| {
        b.iter(|| {
            let doc: serde_json::Value = serde_json::from_slice(black_box(&body)).expect("JSON");
            black_box(serde_json::to_vec(&doc).expect("writes"))
        })
    });
    group.finish();
}

/// The benchmark group (a module, since `criterion_group!` defines an undocumented function).
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
criterion_main!(group::benches);
