//! The JSON-lines files non-criterion benches append their rows to, for `cargo xtask bench`
//! (see `xtask/src/bench.rs`): `$AUTHTEL_BENCH_DIR/<name>.jsonl`, or
//! `$CARGO_TARGET_DIR/authtel-bench/` (`target/authtel-bench/`) when run by hand.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;

/// Where bench rows go.
pub fn dir() -> PathBuf {
    std::env::var_os("AUTHTEL_BENCH_DIR").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
            PathBuf::from(target).join("authtel-bench")
        },
        PathBuf::from,
    )
}

/// Opens `<dir>/<file>` for appending, creating the directory.
///
/// ```
/// use std::io::Write;
/// let dir = std::env::temp_dir().join(format!("authtel-rows-doc-{}", std::process::id()));
/// // SAFETY (edition 2024 `set_var`): this doctest is single-threaded.
/// unsafe { std::env::set_var("AUTHTEL_BENCH_DIR", &dir) };
/// let mut rows = authtel_testing::bench_rows::append("doc.jsonl")?;
/// writeln!(rows, "{{\"case\": \"doc/row\", \"value\": 1}}")?;
/// assert!(std::fs::read_to_string(dir.join("doc.jsonl"))?.contains("doc/row"));
/// # std::fs::remove_dir_all(dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn append(file: &str) -> io::Result<File> {
    let dir = dir();
    std::fs::create_dir_all(&dir)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
}
