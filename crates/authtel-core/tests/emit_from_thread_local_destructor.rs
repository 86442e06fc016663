//! An event or span end from a thread-local destructor, after the registry's own
//! thread-locals were destroyed, is delivered (to the global registry) instead of aborting the
//! process with "cannot access a Thread Local Storage value during or after destruction".
//!
//! The failure mode is an abort, so the scenario runs in a child process (this test binary
//! again, selected by an environment variable) and the parent checks how it exited.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{self, Registry, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};

const CHILD: &str = "AUTHTEL_TLS_DESTRUCTOR_CHILD";
static HEARD: AtomicU64 = AtomicU64::new(0);

/// Emits an event and runs a span when its thread-local slot is destroyed.
struct EmitsOnDrop;

impl Drop for EmitsOnDrop {
    fn drop(&mut self) {
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Measurements::new().count(1),
            Metadata::new().user_id("u_tls"),
        );
        telemetry::start(&catalogue::AUTH_LOGIN, Metadata::new()).stop(Outcome::Success);
        // A scope entered and left this late must not abort either.
        drop(Registry::new().enter());
    }
}

thread_local! {
    static FIRST: EmitsOnDrop = const { EmitsOnDrop };
    static LAST: EmitsOnDrop = const { EmitsOnDrop };
}

/// Registers `FIRST`'s destructor before the registry's thread-locals and `LAST`'s after them,
/// so whichever order the platform runs destructors in, one emit comes after they are gone.
fn child() {
    registry::attach(
        "count",
        Selection::All,
        handler_fn(|_| {
            HEARD.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    std::thread::spawn(|| {
        FIRST.with(|_| ());
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Measurements::new(),
            Metadata::new(),
        );
        drop(Registry::new().enter());
        LAST.with(|_| ());
    })
    .join()
    .unwrap();
    println!("heard {}", HEARD.load(Ordering::Relaxed));
}

#[test]
fn emits_from_thread_local_destructors_do_not_abort() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "emits_from_thread_local_destructors_do_not_abort",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child exited {:?}: {stderr}",
        out.status
    );
    // One event before the thread ended, then per destructor an event, a span start and stop.
    assert!(stdout.contains("heard 7"), "{stdout}\n{stderr}");
}
