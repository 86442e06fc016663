//! Brute force's pair rule (Auth0's 10 failures per address and account) with its counts kept
//! in the account's entry: the address hammering an account keeps its count through churn
//! from other addresses, a success restarts only its own pair, and addresses that lose
//! their slot are still stopped by the address rule.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, Measurements};
use authtel_detect::{DetectConfig, Rung, Verdict};
use authtel_testing::Capture;

const S: fn(u64) -> Duration = Duration::from_secs;

fn login(user: &str, ip: &str, outcome: Outcome) {
    let ip: IpAddr = ip.parse().unwrap();
    let meta = Metadata::new()
        .user_id(user)
        .client_ip(ip)
        .method("password")
        .outcome(outcome);
    telemetry::event(AUTH_LOGIN.stop(), Measurements::new(), meta);
}

fn fail(user: &str, ip: &str) {
    login(user, ip, Outcome::Failure);
}

/// Only the pair rule: the address ladder and the account's wait out of reach.
fn pair_rule_only() -> DetectConfig {
    let mut config = DetectConfig::default();
    config.brute_force.ip_ladder = vec![Rung {
        failures: 10_000,
        block: S(1),
    }];
    config.brute_force.ip_signal_threshold = 10_000;
    config.brute_force.identifier_failure_factor = 10_000;
    config.brute_force.quick_login_check = Duration::ZERO;
    config
}

/// The pair signals the capture saw, as (client_ip, count).
fn pair_signals(capture: &Capture) -> Vec<(String, String)> {
    capture
        .events()
        .iter()
        .filter(|e| e.field("detector") == Some("brute_force"))
        .filter(|e| e.field("key_kind") == Some("ip_identifier"))
        .map(|e| {
            (
                e.field("client_ip").unwrap_or("-").to_owned(),
                e.field("count").unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn the_address_hammering_an_account_keeps_its_count_through_churn() {
    let (capture, d, clock) = support::captured(pair_rule_only());
    let _scope = capture.enter();
    // Between each of the attacker's failures, three addresses seen once each fail too: a
    // slot kept for the most recent addresses would lose the attacker's count every time.
    for i in 0..10u32 {
        fail("u_1", "203.0.113.5");
        for j in 0..3 {
            fail("u_1", &format!("198.51.100.{}", i * 3 + j + 1));
        }
        clock.advance(S(5));
    }
    assert_eq!(
        pair_signals(&capture),
        vec![("203.0.113.5".to_owned(), "10".to_owned())]
    );
    assert_eq!(
        d.verdict(ip("203.0.113.5"), Some("u_1")),
        Verdict::Block(S(3600) - S(5))
    );
    assert_eq!(d.verdict(ip("198.51.100.30"), Some("u_1")), Verdict::Allow);
}

#[test]
fn a_success_restarts_its_own_pair_and_not_the_accounts_others() {
    let (capture, d, _clock) = support::captured(pair_rule_only());
    let _scope = capture.enter();
    for _ in 0..9 {
        fail("u_1", "203.0.113.5");
        fail("u_1", "203.0.113.6");
    }
    login("u_1", "203.0.113.5", Outcome::Success);
    fail("u_1", "203.0.113.5");
    fail("u_1", "203.0.113.6");
    assert_eq!(
        pair_signals(&capture),
        vec![("203.0.113.6".to_owned(), "10".to_owned())]
    );
    assert_eq!(d.verdict(ip("203.0.113.5"), Some("u_1")), Verdict::Allow);
    assert_eq!(
        d.verdict(ip("203.0.113.6"), Some("u_1")),
        Verdict::Block(S(3600))
    );
}

#[test]
fn addresses_beyond_the_slots_are_stopped_by_the_address_rule() {
    // Defaults: three addresses taking turns against one account, ten failures each. The
    // account keeps two pair counts, so one address loses its slot over and over; the
    // address ladder (7 failures: one minute, 10: ten minutes) still blocks every one.
    let (capture, d, clock) = support::captured(DetectConfig::default());
    let _scope = capture.enter();
    let addresses = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    for _ in 0..10 {
        for a in addresses {
            fail("u_1", a);
        }
        clock.advance(S(1));
    }
    let pairs = pair_signals(&capture);
    assert!(!pairs.is_empty() && pairs.len() < 3, "{pairs:?}");
    for a in addresses {
        let v = d.verdict(ip(a), Some("u_1"));
        let Verdict::Block(left) = v else {
            panic!("{a}: {v:?}")
        };
        assert!(left >= S(600) - S(10), "{a}: {v:?}");
        // Blocked as an address too, whatever account it tries next.
        assert!(
            matches!(d.verdict(ip(a), Some("u_2")), Verdict::Block(_)),
            "{a}"
        );
    }
}

#[test]
fn an_old_count_does_not_keep_its_slot_from_two_addresses_failing_now() {
    // An address failed nine times two days ago (the pair window is 24 h): its count is
    // gone, so two addresses hammering the account now share both slots and are blocked.
    let (capture, d, clock) = support::captured(pair_rule_only());
    let _scope = capture.enter();
    for _ in 0..9 {
        fail("u_1", "203.0.113.5");
    }
    clock.advance(S(2 * 86_400));
    for _ in 0..10 {
        fail("u_1", "203.0.113.6");
        fail("u_1", "203.0.113.7");
        clock.advance(S(1));
    }
    let mut pairs = pair_signals(&capture);
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("203.0.113.6".to_owned(), "10".to_owned()),
            ("203.0.113.7".to_owned(), "10".to_owned())
        ]
    );
    for a in ["203.0.113.6", "203.0.113.7"] {
        assert!(
            matches!(d.verdict(ip(a), Some("u_1")), Verdict::Block(_)),
            "{a}"
        );
    }
}
