//! Entry points for the fuzz targets (`tests/fuzz/`) and their regression tests
//! (`tests/it/fuzz_corpus.rs`): each takes arbitrary bytes, runs the real code on them and panics
//! when an invariant breaks. Not a public API (hidden from the docs): the functions exist so that
//! `cargo fuzz`, the corpus replay and the `proptest` properties drive one code path.
//!
//! | entry point   | what it runs                                                  | what must hold                       |
//! |---------------|---------------------------------------------------------------|--------------------------------------|
//! | [`config`]    | `config::load_str` on any text, then the route tables         | an error or a config, never a panic; |
//! |               |                                                               | positions inside the text            |
//! | [`path`]      | `canonical::canonical_target_bytes` on any request target     | the result is canonical: idempotent, |
//! |               |                                                               | borrowed on a second pass, no dot    |
//! |               |                                                               | segments, `//` or encoded separators |
//! | [`route`]     | routes and a request made from the bytes; the request read by | the indexed router agrees with a     |
//! |               | Pingora, canonicalized as `request_filter` does, then routed  | scan of every route in rank order    |
//! | [`chain`]     | any bytes read by Pingora as a request on `tests/fuzz/chain.yaml`| a route behind `api_key` never      |
//! |               | (every built-in filter), through the listener's and the route's | continues without a consumer       |
//! |               | chains                                                        |                                      |
//!
//! Every entry point returns quietly on input the real code refuses (bytes Pingora cannot read
//! as a request, a config with errors): a refusal is a correct answer.

mod chain;
mod config;
mod path;
mod route;

pub use chain::chain;
pub use config::config;
pub use path::path;
pub use route::route;

use pingora::proxy::Session;
use std::io::Cursor;

/// A Pingora HTTP/1 session that has read the request in `raw`, as `request_filter` gets it; `None`
/// when Pingora refuses the bytes (as it would answer 400 or close the connection).
async fn session(raw: &[u8]) -> Option<Session> {
    let mut session = Session::new_h1(Box::new(Cursor::new(raw.to_vec())));
    matches!(session.read_request().await, Ok(true)).then_some(session)
}

/// Runs `f` on this thread's single-threaded Tokio runtime (one per thread, so the tests'
/// threads and a fuzzer's loop each reuse theirs).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread Tokio runtime builds: it needs no OS resources beyond a timer");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// Reads the fuzz input a byte or a short slice at a time, with zeros once it is used up, so
/// that every input decodes to something.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// One of `choices`.
    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }

    /// Up to 15 raw bytes.
    fn slice(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte() % 16).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        s
    }
}
