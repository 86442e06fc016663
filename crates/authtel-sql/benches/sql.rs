//! Benches for authtel-sql (filled in below).
fn main() {}
