//! Verdicts follow the ladders: Auth0's 10 per address and account, Rauthy's per-address
//! steps, Keycloak's growing wait per account; successes reset; monitor mode never blocks.

use std::net::IpAddr;
use std::time::Duration;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Registry;
use authtel_core::telemetry;
use authtel_detect::clock::ManualClock;
use authtel_detect::{DetectConfig, Detectors, Mode, Verdict};

fn login(user: Option<&str>, ip: &str, ok: bool) {
    let ip: IpAddr = ip.parse().unwrap();
    let mut meta = Metadata::new().client_ip(ip).method("password");
    if let Some(u) = user {
        meta = meta.user_id(u);
    }
    let guard = telemetry::start(&AUTH_LOGIN, meta);
    guard.stop(if ok {
        Outcome::Success
    } else {
        Outcome::Failure
    });
}

fn setup(config: DetectConfig) -> (Registry, Detectors, ManualClock) {
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(1_000_000));
    let detectors = Detectors::builder()
        .with_config(config)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let registry = Registry::new();
    detectors.attach(&registry).unwrap();
    (registry, detectors, clock)
}

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn the_address_ladder_blocks_for_longer_at_each_step() {
    let (registry, d, clock) = setup(DetectConfig::default());
    let _scope = registry.enter();
    let ip: IpAddr = "198.51.100.23".parse().unwrap();
    // Failures against unknown accounts count only for the address.
    for i in 1..=25u32 {
        login(None, "198.51.100.23", false);
        clock.advance(S(2));
        let v = d.verdict(Some(ip), None);
        let expected = match i {
            0..=6 => None,
            7..=9 => Some(S(60)),
            10..=14 => Some(S(600)),
            15..=19 => Some(S(900)),
            20..=24 => Some(S(3600)),
            _ => Some(S(86_400)),
        };
        match expected {
            None => assert_eq!(v, Verdict::Allow, "after {i} failures"),
            Some(block) => {
                let Verdict::Block(left) = v else {
                    panic!("after {i} failures: {v:?}")
                };
                // Refreshed by further failures once an eighth of it has passed.
                assert!(
                    left <= block && left >= block - block / 8 - S(2),
                    "after {i}: {left:?}"
                );
            }
        }
    }
    // Another address is not affected.
    assert_eq!(
        d.verdict(Some("198.51.100.24".parse().unwrap()), None),
        Verdict::Allow
    );
}

#[test]
fn ten_failures_of_one_account_from_one_address_block_the_pair() {
    let mut config = DetectConfig::default();
    // Keep the address ladder out of the way.
    config.brute_force.ip_ladder[0].failures = 50;
    config.brute_force.ip_ladder = vec![config.brute_force.ip_ladder[0]];
    let (registry, d, clock) = setup(config);
    let _scope = registry.enter();
    let ip: IpAddr = "203.0.113.5".parse().unwrap();
    for _ in 0..9 {
        login(Some("u_1"), "203.0.113.5", false);
        clock.advance(S(5));
    }
    assert_eq!(d.verdict(Some(ip), Some("u_1")), Verdict::Allow);
    login(Some("u_1"), "203.0.113.5", false);
    assert_eq!(d.verdict(Some(ip), Some("u_1")), Verdict::Block(S(3600)));
    // The same account from elsewhere, and another account from here, go ahead.
    assert_eq!(
        d.verdict(Some("203.0.113.6".parse().unwrap()), Some("u_1")),
        Verdict::Allow
    );
    assert_eq!(d.verdict(Some(ip), Some("u_2")), Verdict::Allow);
    clock.advance(S(3600));
    assert_eq!(d.verdict(Some(ip), Some("u_1")), Verdict::Allow);
}

#[test]
fn an_account_waits_longer_every_thirty_failures_and_a_success_resets_it() {
    let mut config = DetectConfig::default();
    config.brute_force.ip_ladder = vec![authtel_detect::Rung {
        failures: 10_000,
        block: S(1),
    }];
    config.brute_force.ip_identifier_threshold = 10_000;
    let (registry, d, clock) = setup(config);
    let _scope = registry.enter();
    // From many addresses, slowly: only the account's counter grows.
    for i in 0..29u32 {
        login(Some("u_victim"), &format!("192.0.2.{}", i + 1), false);
        clock.advance(S(5));
    }
    assert_eq!(d.verdict(None, Some("u_victim")), Verdict::Allow);
    login(Some("u_victim"), "192.0.2.200", false);
    assert_eq!(d.verdict(None, Some("u_victim")), Verdict::SlowDown(S(60)));
    for _ in 0..30 {
        clock.advance(S(5));
        login(Some("u_victim"), "192.0.2.201", false);
    }
    assert_eq!(d.verdict(None, Some("u_victim")), Verdict::SlowDown(S(120)));
    login(Some("u_victim"), "192.0.2.202", true);
    assert_eq!(d.verdict(None, Some("u_victim")), Verdict::Allow);
}

#[test]
fn two_failures_within_a_second_slow_the_account_down() {
    let (registry, d, clock) = setup(DetectConfig::default());
    let _scope = registry.enter();
    login(Some("u_fast"), "192.0.2.1", false);
    clock.advance(Duration::from_millis(400));
    login(Some("u_fast"), "192.0.2.1", false);
    assert_eq!(d.verdict(None, Some("u_fast")), Verdict::SlowDown(S(60)));
}

#[test]
fn monitor_mode_never_blocks() {
    let (registry, d, clock) = setup(DetectConfig::default().with_mode(Mode::Monitor));
    let _scope = registry.enter();
    let ip: IpAddr = "198.51.100.23".parse().unwrap();
    for i in 0..100 {
        login(Some(&format!("u_{}", i % 3)), "198.51.100.23", false);
        clock.advance(Duration::from_millis(300));
        assert_eq!(d.verdict(Some(ip), Some("u_0")), Verdict::Allow);
    }
    assert!(
        d.stats().signals.iter().any(|(_, n)| *n > 0),
        "signals are still raised"
    );
}

#[test]
fn verdicts_without_penalties_cost_a_load() {
    let (_registry, d, _clock) = setup(DetectConfig::default());
    assert_eq!(d.verdict(None, None), Verdict::Allow);
    assert_eq!(
        d.verdict(Some("::1".parse().unwrap()), Some("u")),
        Verdict::Allow
    );
}

#[test]
fn on_the_system_clock_a_penalty_never_looks_longer_than_it_is() {
    // The system clock reads the coarse kernel clock (a tick behind at most) while a span
    // stop carries its exact instant: a wait imposed at that instant must not be reported
    // as a few milliseconds more than the wait (a `Retry-After` of 61 for a minute).
    let detectors = Detectors::new(DetectConfig::default()).unwrap();
    let registry = Registry::new();
    detectors.attach(&registry).unwrap();
    let _scope = registry.enter();
    let wait = DetectConfig::default().brute_force.min_quick_login_wait;
    for n in 0..200 {
        let user = format!("u_{n}");
        // Two failures under a second apart: the quick-login check's wait.
        login(Some(&user), "192.0.2.10", false);
        login(Some(&user), "192.0.2.10", false);
        let v = detectors.verdict(None, Some(&user));
        let left = v.retry_after().unwrap_or_else(|| panic!("{user}: {v:?}"));
        assert!(left <= wait, "{user}: {left:?} left of a {wait:?} wait");
        assert!(left > wait - S(5), "{user}: {left:?}");
    }
}
