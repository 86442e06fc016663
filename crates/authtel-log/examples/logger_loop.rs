//! The logger bench's signal case and its baseline as plain loops, without criterion, for
//! counting instructions:
//!
//! ```text
//! cargo build --release -p authtel-log --example logger_loop
//! valgrind --tool=callgrind target/release/examples/logger_loop case 1000
//! valgrind --tool=callgrind target/release/examples/logger_loop baseline 1000
//! ```
//!
//! Run each at two counts; the difference divided by the difference in count is the cost
//! of one line. `case` is `authtel_default_logger_signal`, `baseline` is
//! `baseline:tracing_fmt_json`, `span` and `span_baseline` the span-stop pair; the same
//! subscriber as the bench (`tracing_subscriber::fmt` JSON into `io::sink()`).

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::registry::Registry;
use authtel_core::telemetry;
use authtel_log::{Logger, LoggerOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "case".to_owned());
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let dispatch = common::json_subscriber(std::io::sink, true);
    let registry = Registry::new();
    Logger::build(LoggerOptions::new())
        .attach_to(&registry)
        .expect("a fresh registry has no logger yet");
    tracing::dispatcher::with_default(&dispatch, || {
        let _scope = registry.enter();
        for _ in 0..count {
            match mode.as_str() {
                "case" => common::authtel_signal(),
                "baseline" => common::tracing_signal(),
                "span" => {
                    let meta = common::login_metadata();
                    let _ = black_box(telemetry::span(&AUTH_LOGIN, meta, || {
                        Ok::<_, ()>(black_box(1))
                    }));
                }
                "span_baseline" => common::tracing_span_stop(black_box(0.0123)),
                other => panic!("unknown mode {other}: case, baseline, span, span_baseline"),
            }
        }
    });
}
