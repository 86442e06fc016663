//! The detectors under logins from several threads at once, as a multi-threaded server sends
//! them: one signal per key and window however the failures interleave, no entry lost or
//! duplicated while the tables grow and their index hints move, verdicts right afterwards.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Barrier;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, Measurements};
use authtel_detect::clock::ManualClock;
use authtel_detect::{DetectConfig, Detectors, Verdict};
use authtel_testing::Capture;

const THREADS: u8 = 4;

fn failed_login(user: Option<&str>, ip: IpAddr) {
    let mut meta = Metadata::new()
        .client_ip(ip)
        .method("password")
        .outcome(Outcome::Failure);
    if let Some(user) = user {
        meta = meta.user_id(user);
    }
    telemetry::event(AUTH_LOGIN.stop(), Measurements::new(), meta);
}

fn setup() -> (Capture, Detectors, ManualClock) {
    support::captured(DetectConfig::default())
}

/// Each thread enters the capture's registry and runs `f(thread)`, all starting together.
fn on_threads(capture: &Capture, f: impl Fn(u8) + Sync) {
    let start = Barrier::new(usize::from(THREADS));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (f, start) = (&f, &start);
            s.spawn(move || {
                let _scope = capture.enter();
                start.wait();
                f(t);
            });
        }
    });
}

fn tally(capture: &Capture) -> BTreeMap<(String, String, String), usize> {
    support::tally(&support::signals(&capture.events()))
}

fn key(event: &str, rule: &str, kind: &str) -> (String, String, String) {
    (event.into(), rule.into(), kind.into())
}

#[test]
fn one_attack_from_four_threads_raises_each_signal_once() {
    let (capture, detectors, _clock) = setup();
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    // 4 x 40 = 160 failures of one account from one address, interleaved at random: over
    // the address's (10), the pair's (10) and the account's (30) thresholds, under
    // stuffing's 200 attempts; one account, so no spraying.
    on_threads(&capture, |_| {
        for _ in 0..40 {
            failed_login(Some("u_victim"), ip);
        }
    });
    let seen = tally(&capture);
    let brute = "security.brute_force";
    assert_eq!(
        seen,
        BTreeMap::from([
            (key(brute, "failures", "identifier"), 1),
            (key(brute, "failures", "ip"), 1),
            (key(brute, "failures", "ip_identifier"), 1),
        ]),
        "each key signals once per window, whichever thread crossed its threshold"
    );
    let blocked = |v: Verdict| matches!(v, Verdict::Block(_));
    assert!(blocked(detectors.verdict(Some(ip), Some("u_victim"))));
    assert!(blocked(detectors.verdict(Some(ip), None)));
    let other: IpAddr = "203.0.113.9".parse().unwrap();
    assert!(
        detectors
            .verdict(Some(other), Some("u_bystander"))
            .is_allow()
    );
}

#[test]
fn tables_grow_under_four_threads_without_losing_or_doubling_an_entry() {
    let (capture, detectors, _clock) = setup();
    const PER_THREAD: u16 = 5_000;
    let ip = |t: u8, i: u16| IpAddr::V4(Ipv4Addr::new(10, t, (i >> 8) as u8, i as u8));
    // Unknown-account failures from 20,000 distinct addresses, each thread its own: the
    // address table grows from empty while four threads insert into it.
    for _ in 0..2 {
        on_threads(&capture, |t| {
            for i in 0..PER_THREAD {
                failed_login(None, ip(t, i));
            }
        });
    }
    let stats = detectors.stats();
    let address = stats.tables.iter().find(|t| t.name == "address").unwrap();
    assert!(address.capacity > 20_000, "{address:?}");
    assert_eq!(
        (address.entries, address.evictions),
        (usize::from(THREADS) * usize::from(PER_THREAD), 0),
        "one entry per address, each found again by the second pass: {address:?}"
    );
    assert!(address.bytes <= address.budget_bytes, "{address:?}");
    // Two failures each is under every address threshold; the unknown-account burst is one
    // global signal, raised once.
    assert_eq!(
        tally(&capture),
        BTreeMap::from([(
            key(
                "security.credential_stuffing",
                "unknown_user_burst",
                "global"
            ),
            1
        )])
    );
    for t in 0..THREADS {
        assert!(detectors.verdict(Some(ip(t, 4_321)), None).is_allow());
    }
}
