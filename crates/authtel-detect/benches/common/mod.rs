//! The traffic the detect bench sends, shared with `examples/detect_loop.rs` (the same loops
//! for `valgrind --tool=callgrind`, which counts instructions whatever the machine's load).

#![allow(dead_code, unreachable_pub)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, EventRecord, Measurements, SpanContext};
use authtel_detect::{DetectConfig, Detectors, FixedGeo, GeoPoint, Mode};

/// Distinct accounts and addresses the traffic rotates over.
pub const KEYS: usize = 4096;

/// Accounts and addresses, rotating.
pub struct Traffic {
    pub users: Vec<String>,
    pub ips: Vec<IpAddr>,
    next: usize,
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic {
            users: (0..KEYS).map(|i| format!("u_{i:05}")).collect(),
            ips: (0..KEYS as u32)
                .map(|i| {
                    IpAddr::V4(Ipv4Addr::from(
                        0x0A00_0000 + i.wrapping_mul(2_654_435_761) % (1 << 24),
                    ))
                })
                .collect(),
            next: 0,
        }
    }

    /// One failed `auth.login` closure span on the current registry.
    pub fn failed_login(&mut self) -> bool {
        self.next = (self.next + 1) % KEYS;
        // Accounts and addresses rotate independently, so pairs vary too.
        let user = &self.users[self.next];
        let ip = self.ips[(self.next * 7) % KEYS];
        let meta = Metadata::new()
            .user_id(user)
            .client_ip(ip)
            .method("password");
        telemetry::span(black_box(&AUTH_LOGIN), meta, || black_box(false))
    }

    /// One failed-login event: a single `auth.login.stop` with outcome failure, as an
    /// application emits when it reports the login's end without a span.
    pub fn failed_login_event(&mut self) {
        self.next = (self.next + 1) % KEYS;
        let user = &self.users[self.next];
        let ip = self.ips[(self.next * 7) % KEYS];
        let meta = Metadata::new()
            .user_id(user)
            .client_ip(ip)
            .method("password")
            .outcome(Outcome::Failure);
        telemetry::event(black_box(AUTH_LOGIN.stop()), Measurements::new(), meta);
    }

    /// The next (address, account) a verdict is asked for.
    pub fn next_attempt(&mut self) -> (Option<IpAddr>, Option<&str>) {
        self.next = (self.next + 1) % KEYS;
        (
            Some(self.ips[(self.next * 7) % KEYS]),
            Some(self.users[self.next].as_str()),
        )
    }

    /// Penalises every tenth address (ten failures each, through the brute-force handler).
    pub fn penalise(&self, detectors: &Detectors) {
        let numbers = Measurements::new();
        let Some(bf) = detectors.brute_force() else {
            return;
        };
        for (n, ip) in self.ips.iter().enumerate().step_by(10) {
            let meta = Metadata::new()
                .user_id(&self.users[n])
                .client_ip(*ip)
                .outcome(Outcome::Failure);
            let record = EventRecord::signal(
                AUTH_LOGIN.stop(),
                SpanContext::child_of(None),
                &numbers,
                &meta,
            );
            for _ in 0..10 {
                authtel_core::registry::Handler::handle(bf, &record);
            }
        }
        assert!(!detectors.verdict(Some(self.ips[0]), None).is_allow());
    }
}

/// The detectors that hear logins: everything but MFA and refresh reuse.
pub fn login_detectors() -> Detectors {
    let mut config = DetectConfig::default();
    config.mfa.mode = Mode::Off;
    config.refresh_reuse.mode = Mode::Off;
    let geo = FixedGeo::new()
        .with_network("10.0.0.0/8", GeoPoint::new(52.5, 13.4, 25).with_asn(64_500))
        .expect("valid network");
    Detectors::builder()
        .with_config(config)
        .with_geo(geo)
        .build()
        .expect("valid configuration")
}
