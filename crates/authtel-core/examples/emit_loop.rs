//! The emit bench's handler cases and the span's clock baseline as plain loops, without
//! criterion, for counting instructions:
//!
//! ```text
//! cargo build --release -p authtel-core --example emit_loop
//! valgrind --tool=callgrind target/release/examples/emit_loop event 100000
//! valgrind --tool=callgrind target/release/examples/emit_loop event 200000
//! ```
//!
//! Run each mode at two counts; the difference divided by the difference in count is the
//! cost of one iteration. Modes: `event` (`event/one_noop_handler`: a signal with a user id
//! through one no-op handler on the global registry), `span`
//! (`span/one_handler_start_stop`), `clocks` (its baseline, `Instant::now` and `elapsed`).

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{self, handler_fn};
use authtel_core::telemetry::{self, Measurements};
use common::user_id;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "event".to_owned());
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let noop = handler_fn(|r| {
        black_box(r.event);
    });
    match mode.as_str() {
        "event" => {
            registry::attach("loop-noop", &catalogue::SECURITY_LOCKOUT, noop)
                .expect("nothing else attaches in this process");
            for _ in 0..count {
                telemetry::event(
                    black_box(&catalogue::SECURITY_LOCKOUT),
                    Measurements::new().count(1),
                    Metadata::new().user_id(user_id()),
                );
            }
        }
        "span" => {
            registry::attach("loop-noop", &catalogue::AUTH_LOGIN, noop)
                .expect("nothing else attaches in this process");
            for _ in 0..count {
                black_box(telemetry::span(
                    black_box(&catalogue::AUTH_LOGIN),
                    Metadata::new().user_id(user_id()),
                    || black_box(true),
                ));
            }
        }
        "clocks" => {
            for _ in 0..count {
                let t = Instant::now();
                black_box(t.elapsed());
            }
        }
        other => {
            eprintln!("unknown mode {other:?}: event, span or clocks");
            std::process::exit(2);
        }
    }
}
