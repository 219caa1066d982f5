//! Fuzz target `chain`: see `portico::fuzzing::chain` for what it runs and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzzing::chain(data));
