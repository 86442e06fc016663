//! The scripted attacks and their text form (the committed `tests/corpus/attacks.tsv`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use authtel_core::outcome::Outcome;

use super::events::{Ev, Kind};
use super::world::{Net, addr};
use super::{DAY, EPOCH, HOUR, MINUTE, Rng, SECOND};

/// One scripted attack: its name and its events (a victim's ordinary history first).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) events: Vec<Ev>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid address")
}

/// A victim's ordinary history: `n` daily logins from home on one laptop.
fn history(out: &mut Vec<Ev>, user: &Arc<str>, city: usize, start: u64, n: u64) -> Arc<str> {
    let ua: Arc<str> = format!("ua/firefox/linux/{user}").into();
    for d in 0..n {
        out.push(Ev::login(
            start + d * DAY + 9 * HOUR,
            Some(user),
            addr(city, Net::IspA, 42, 7),
            &ua,
            true,
        ));
    }
    ua
}

/// The attack corpus. Each scenario starts at its own day so that no window spans two.
pub(crate) fn attacks(seed: u64) -> Vec<Scenario> {
    let mut rng = Rng::new(seed ^ 0x00A7_7AC4);
    let mut scenarios = Vec::new();
    let day = |n: u64| EPOCH + n * 10 * DAY;

    // Brute force on one account from one address: 40 passwords, one every 12 s.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_bf_victim".into();
        history(&mut ev, &victim, 0, day(0), 5);
        let t0 = day(0) + 6 * DAY;
        let ua: Arc<str> = "ua/python-requests/2.31".into();
        for i in 0..40 {
            ev.push(Ev::login(
                t0 + i * 12 * SECOND,
                Some(&victim),
                ip("198.51.100.23"),
                &ua,
                false,
            ));
        }
        scenarios.push(Scenario {
            name: "brute_force".into(),
            events: ev,
        });
    }

    // Spraying from one address across 500 accounts, one attempt each, every 6 s.
    {
        let mut ev = Vec::new();
        let t0 = day(1);
        let ua: Arc<str> = "ua/go-http-client/1.1".into();
        for i in 0..500 {
            let user: Arc<str> = format!("u_spray{i:03}").into();
            ev.push(Ev::login(
                t0 + i * 6 * SECOND,
                Some(&user),
                ip("203.0.113.66"),
                &ua,
                false,
            ));
        }
        scenarios.push(Scenario {
            name: "password_spraying".into(),
            events: ev,
        });
    }

    // Stuffing: 10,000 accounts from 2,000 botnet addresses (5 each, all in other /24s),
    // in 8 minutes inside one 10-minute window; 30% of the leaked accounts do not exist
    // here, 1% of the rest log in.
    {
        let mut ev = Vec::new();
        let t0 = day(2) + 30 * SECOND;
        let ips: Vec<IpAddr> = (0..2000u32)
            .map(|i| {
                IpAddr::V4(Ipv4Addr::new(
                    45,
                    (i / 200) as u8 + 1,
                    (i % 200) as u8,
                    rng.range(1, 255) as u8,
                ))
            })
            .collect();
        let ua: Arc<str> = "ua/chrome/windows/stuffer".into();
        for i in 0..10_000u64 {
            let t = t0 + i * 48;
            let from = ips[(i % 2000) as usize];
            if rng.chance(0.3) {
                ev.push(Ev::login(t, None, from, &ua, false));
            } else {
                let user: Arc<str> = format!("u_leak{i:05}").into();
                ev.push(Ev::login(t, Some(&user), from, &ua, rng.chance(0.01)));
            }
        }
        scenarios.push(Scenario {
            name: "credential_stuffing".into(),
            events: ev,
        });
    }

    // MFA push bombing: the attacker has the password; 12 pushes in 6 minutes, ten time out,
    // two are denied, then the worn-out user approves.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_mfa_victim".into();
        let t0 = day(3);
        let home = addr(1, Net::IspA, 42, 7);
        for i in 0..12u64 {
            let (outcome, reason) = match i {
                9 | 10 => (Outcome::Denied, Some("user_denied")),
                11 => (Outcome::Success, None),
                _ => (Outcome::Failure, Some("timeout")),
            };
            ev.push(Ev::mfa(
                t0 + i * 30 * SECOND,
                &victim,
                home,
                "push",
                outcome,
                reason,
            ));
        }
        scenarios.push(Scenario {
            name: "mfa_push_bombing".into(),
            events: ev,
        });
    }

    // TOTP guessing: eight wrong codes in four minutes.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_totp_victim".into();
        let t0 = day(4);
        for i in 0..8u64 {
            ev.push(Ev::mfa(
                t0 + i * 30 * SECOND,
                &victim,
                ip("198.51.100.80"),
                "totp",
                Outcome::Failure,
                Some("invalid_code"),
            ));
        }
        scenarios.push(Scenario {
            name: "totp_guessing".into(),
            events: ev,
        });
    }

    // A login from a new network on a new device, after five days of the usual.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_newip_victim".into();
        history(&mut ev, &victim, 2, day(5), 5);
        let ua: Arc<str> = "ua/chrome/windows/attacker".into();
        ev.push(Ev::login(
            day(5) + 5 * DAY + 3 * HOUR,
            Some(&victim),
            ip("185.220.101.7"),
            &ua,
            true,
        ));
        scenarios.push(Scenario {
            name: "new_ip_login".into(),
            events: ev,
        });
    }

    // Impossible travel: Berlin, then Sydney an hour later, same browser (a stolen session
    // cookie replayed with the victim's user agent).
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_travel_victim".into();
        let ua = history(&mut ev, &victim, 0, day(6), 3);
        let t = day(6) + 3 * DAY + 9 * HOUR;
        ev.push(Ev::login(
            t,
            Some(&victim),
            addr(0, Net::IspA, 42, 7),
            &ua,
            true,
        ));
        ev.push(Ev::login(
            t + HOUR,
            Some(&victim),
            addr(10, Net::Hotel, 9, 9),
            &ua,
            true,
        ));
        scenarios.push(Scenario {
            name: "impossible_travel".into(),
            events: ev,
        });
    }

    // Refresh reuse: a session is logged out and its refresh token replayed two hours later;
    // another session's rotated token is presented again (the application refuses it).
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_refresh_victim".into();
        let t0 = day(7);
        let home = addr(3, Net::IspA, 42, 7);
        for i in 1..=2 {
            ev.push(Ev::session_event(
                t0 + i * 15 * MINUTE,
                Kind::Refresh,
                &victim,
                home,
                "s_ref_a",
                Outcome::Success,
                None,
            ));
        }
        ev.push(Ev::session_event(
            t0 + HOUR,
            Kind::Logout,
            &victim,
            home,
            "s_ref_a",
            Outcome::Success,
            None,
        ));
        ev.push(Ev::session_event(
            t0 + 3 * HOUR,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_a",
            Outcome::Failure,
            Some("revoked"),
        ));
        ev.push(Ev::session_event(
            t0 + 3 * HOUR + MINUTE,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_a",
            Outcome::Failure,
            Some("revoked"),
        ));
        ev.push(Ev::session_event(
            t0 + 4 * HOUR,
            Kind::Refresh,
            &victim,
            home,
            "s_ref_b",
            Outcome::Success,
            None,
        ));
        ev.push(Ev::session_event(
            t0 + 4 * HOUR + 5 * MINUTE,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_b",
            Outcome::Failure,
            Some("reused"),
        ));
        scenarios.push(Scenario {
            name: "refresh_reuse".into(),
            events: ev,
        });
    }
    for s in &mut scenarios {
        s.events.sort_by_key(|e| e.t);
    }
    scenarios
}

/// The attack corpus as text: `# scenario <name>` lines, each followed by its events.
pub(crate) fn attacks_text(scenarios: &[Scenario]) -> String {
    let mut out = String::from(
        "# authtel-detect attack corpus, generated by tests/support/mod.rs from SEED; do not edit.\n\
         # Regenerate: AUTHTEL_BLESS=1 cargo test -p authtel-detect --test attack_corpus\n\
         # Fields: time_ms kind outcome user_id client_ip user_agent method reason session_id\n",
    );
    for s in scenarios {
        out.push_str(&format!("# scenario {}\n", s.name));
        for e in &s.events {
            out.push_str(&e.to_line());
            out.push('\n');
        }
    }
    out
}

pub(crate) fn parse_attacks(text: &str) -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# scenario ") {
            scenarios.push(Scenario {
                name: name.to_owned(),
                events: Vec::new(),
            });
        } else if !line.starts_with('#') && !line.is_empty() {
            scenarios
                .last_mut()
                .expect("a scenario line comes first")
                .events
                .push(Ev::from_line(line));
        }
    }
    scenarios
}
