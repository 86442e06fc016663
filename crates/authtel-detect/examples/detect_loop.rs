//! The detect bench's loops without criterion, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/detect_loop login 20000
//! ```
//!
//! Cases: `login` (a failed login span through the five login detectors), `noop` (the same
//! span with one no-op handler), `event` (one failed-login event, a single `auth.login.stop`
//! with outcome failure, through the five detectors), `event_noop` (the same event with one
//! no-op handler), `verdict` (a verdict with penalties in the box), `hashmap` (the
//! verdict's baseline, one `HashMap<String, u64>` lookup). Run each at two iteration counts
//! and divide the difference of the totals by the difference of the counts: that is the
//! cost of one iteration, without the setup.

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::hint::black_box;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::registry::{self, handler_fn};
use common::{KEYS, Traffic, login_detectors};

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "login".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    // The global registry, as the bench uses (a scoped one costs a thread-local more).
    let mut traffic = Traffic::new();
    let detectors = login_detectors();
    match case.as_str() {
        "login" => {
            detectors.attach_global().expect("nothing else is attached");
            for _ in 0..n {
                black_box(traffic.failed_login());
            }
        }
        "event" => {
            detectors.attach_global().expect("nothing else is attached");
            for _ in 0..n {
                traffic.failed_login_event();
            }
        }
        "noop" | "event_noop" => {
            registry::attach(
                "noop",
                &AUTH_LOGIN,
                handler_fn(|r| {
                    black_box(r.event);
                }),
            )
            .expect("nothing else is attached");
            if case == "noop" {
                for _ in 0..n {
                    black_box(traffic.failed_login());
                }
            } else {
                for _ in 0..n {
                    traffic.failed_login_event();
                }
            }
        }
        "verdict" => {
            traffic.penalise(&detectors);
            for _ in 0..n {
                let (ip, user) = traffic.next_attempt();
                black_box(detectors.verdict(black_box(ip), black_box(user)));
            }
        }
        "hashmap" => {
            let map: HashMap<String, u64> = traffic.users.iter().map(|u| (u.clone(), 1)).collect();
            for j in 0..n {
                black_box(
                    map.get(black_box(traffic.users[j % KEYS].as_str()))
                        .copied(),
                );
            }
        }
        other => {
            panic!("unknown case {other:?}: login, noop, event, event_noop, verdict or hashmap")
        }
    }
}
