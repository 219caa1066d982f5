//! Benchmark (filled in by the benchmarks change).
fn main() {}
