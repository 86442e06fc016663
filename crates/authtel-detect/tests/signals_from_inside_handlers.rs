//! Detectors raise their signals from inside their own handler. The registry supports that
//! (a nested emit goes to the registry the handler runs in, on both scoped and global
//! registries), and the detectors emit only after releasing their locks, so a sink that
//! hears a signal may call straight back into the detectors (a verdict) without deadlock.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use authtel_core::catalogue::{AUTH_LOGIN, Category};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{self, Registry, handler_fn};
use authtel_core::telemetry;
use authtel_detect::{DetectConfig, Detectors, Verdict};

fn fail(user: &str, ip: IpAddr) {
    let guard = telemetry::start(&AUTH_LOGIN, Metadata::new().user_id(user).client_ip(ip));
    guard.stop(Outcome::Failure);
}

/// What the sink saw: each signal's name and the verdict it got.
type Seen = Arc<Mutex<Vec<(String, Verdict)>>>;

/// A sink that, for each signal, records its name and the verdict it gets back from the
/// detectors for the signal's address.
fn sink(detectors: &Detectors) -> (Seen, impl authtel_core::registry::Handler) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (d, s) = (detectors.clone(), seen.clone());
    let handler = handler_fn(move |r| {
        let verdict = d.verdict(r.metadata.get_client_ip(), r.metadata.get_user_id());
        s.lock().unwrap().push((r.event.name().to_owned(), verdict));
    });
    (seen, handler)
}

#[test]
fn on_a_scoped_registry_signals_reach_other_handlers_which_may_ask_for_verdicts() {
    let detectors = Detectors::new(DetectConfig::default()).unwrap();
    let registry = Registry::new();
    detectors.attach(&registry).unwrap();
    let (seen, handler) = sink(&detectors);
    registry
        .attach("sink", Category::Security, handler)
        .unwrap();
    let _scope = registry.enter();
    let ip: IpAddr = "198.51.100.23".parse().unwrap();
    for _ in 0..10 {
        fail("u_1", ip);
    }
    let seen = seen.lock().unwrap();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["security.brute_force", "security.brute_force"],
        "{seen:?}"
    );
    // The penalty is in place before the signal goes out.
    assert!(
        seen.iter().all(|(_, v)| matches!(v, Verdict::Block(_))),
        "{seen:?}"
    );
    assert!(registry.handlers().iter().all(|h| h.failures == 0));
}

#[test]
fn on_the_global_registry_too() {
    let detectors = Detectors::new(DetectConfig::default()).unwrap();
    detectors.attach_global().unwrap();
    let (seen, handler) = sink(&detectors);
    registry::attach("detect-test-global-sink", Category::Security, handler).unwrap();
    // Another thread, in no scope: the production path through the thread's cached snapshot.
    std::thread::spawn(|| {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..10 {
            fail("u_2", ip);
        }
    })
    .join()
    .unwrap();
    registry::detach("detect-test-global-sink").unwrap();
    detectors.detach(Registry::global()).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|(_, v)| matches!(v, Verdict::Block(_))),
        "{seen:?}"
    );
    assert!(registry::handlers().iter().all(|h| h.failures == 0));
}

#[test]
fn attaching_twice_fails_and_leaves_nothing_half_attached() {
    let detectors = Detectors::new(DetectConfig::default()).unwrap();
    let registry = Registry::new();
    registry
        .attach("authtel-detect.mfa", Category::Security, handler_fn(|_| {}))
        .unwrap();
    assert!(detectors.attach(&registry).is_err());
    assert_eq!(registry.handlers().len(), 1, "{:?}", registry.handlers());
}
