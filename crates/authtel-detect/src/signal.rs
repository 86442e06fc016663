//! The signals detectors raise, and the typed fields each one carries.
//!
//! A signal is a catalogue event (`security.brute_force`, …) whose metadata says why, in
//! fields with closed value sets and numbers, never free text:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `detector` | [`DetectorKind`] | which detector raised it |
//! | `key_kind` | [`KeyKind`] | what it counted on: account, address, both, network, everything, session |
//! | `count` | integer | what it observed (failures, distinct accounts, challenges, km/h, …) |
//! | `threshold` | integer | the limit `count` reached |
//! | `window_secs` | integer | the window `count` was taken over |
//! | `mode` | [`Mode`](crate::Mode) | `enforce`, or `monitor` (verdicts stay allow) |
//! | `action` | [`Action`] | what the verdict does for the key: `none`, `slow_down`, `block` |
//! | `penalty_secs` | integer | for how long (with `slow_down` and `block`) |
//!
//! The rule that fired is the standard `reason` field ([`Rule`]); the key itself is in the
//! standard `user_id`, `client_ip`, `session_id` fields, and for a network in
//! `rate_limit_key` (`net:203.0.113.0/24`). Some rules add one or two numbers of their own
//! (`distance_km`, `attempts`, `baseline_pct`, …).
//!
//! One signal per rule and key per window: a thousand failed logins raise one
//! `security.brute_force` per key, not a thousand.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use authtel_core::catalogue::{self, Event};
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, Measurements};
use authtel_core::vocabulary::AuthMethod;

use crate::config::Mode;

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $text:literal, )* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value as it appears in the signal's metadata.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )*
                    _ => Err(UnknownValue { set: stringify!($name), value: s.chars().take(64).collect() }),
                }
            }
        }
    };
}

/// A field value outside its closed set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {set} value")]
pub struct UnknownValue {
    set: &'static str,
    value: String,
}

closed_set! {
    /// Which detector raised a signal.
    ///
    /// ```
    /// use authtel_detect::DetectorKind;
    /// assert_eq!("brute_force".parse::<DetectorKind>(), Ok(DetectorKind::BruteForce));
    /// ```
    DetectorKind {
        /// Failed logins per account, address, and address and account.
        BruteForce => "brute_force",
        /// One address or network failing against many accounts.
        PasswordSpraying => "password_spraying",
        /// A failure ratio or unknown-account burst across everything.
        CredentialStuffing => "credential_stuffing",
        /// Push bombing, deny-then-accept, one-time-code guessing.
        Mfa => "mfa",
        /// A login from a new network and device.
        NewLocation => "new_location",
        /// Two logins too far apart for the time between them.
        ImpossibleTravel => "impossible_travel",
        /// A revoked or rotated refresh token presented again.
        RefreshReuse => "refresh_reuse",
    }
}

closed_set! {
    /// What a detector counted on.
    KeyKind {
        /// One account (`user_id`).
        Identifier => "identifier",
        /// One client address (`client_ip`).
        Ip => "ip",
        /// One account from one address (`user_id` and `client_ip`).
        IpIdentifier => "ip_identifier",
        /// One network, /24 for IPv4 and /48 for IPv6 (`rate_limit_key`).
        IpPrefix => "ip_prefix",
        /// All traffic together.
        Global => "global",
        /// One session or refresh-token family (`session_id`).
        Session => "session",
    }
}

closed_set! {
    /// Which rule of a detector fired: the signal's `reason`.
    Rule {
        /// Failures over the threshold.
        Failures => "failures",
        /// Distinct accounts failing over the threshold.
        DistinctIdentifiers => "distinct_identifiers",
        /// The failure ratio far above the baseline.
        FailureRatio => "failure_ratio",
        /// Unknown-account failures over the threshold.
        UnknownUserBurst => "unknown_user_burst",
        /// Too many push challenges.
        PushBombing => "push_bombing",
        /// Push denials, then an approval.
        DenyThenAccept => "deny_then_accept",
        /// Too many failed one-time codes.
        CodeGuessing => "code_guessing",
        /// A new network and a new device at once.
        NewNetworkAndDevice => "new_network_and_device",
        /// A new network (with `require_both` off).
        NewNetwork => "new_network",
        /// A new device (with `require_both` off).
        NewDevice => "new_device",
        /// Faster than the speed limit between two logins.
        Speed => "speed",
        /// A refresh on a session the detector saw revoked.
        RevokedSession => "revoked_session",
        /// The application reported a reused or revoked refresh token.
        ReportedReuse => "reported_reuse",
    }
}

closed_set! {
    /// What the verdict does for the key after this signal.
    Action {
        /// Nothing: the signal is information.
        None => "none",
        /// Slow down: answer after a wait, or refuse until it passes.
        SlowDown => "slow_down",
        /// Block: refuse until the penalty passes.
        Block => "block",
    }
}

/// The key a signal is about, as the standard metadata fields carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignalKey<'a> {
    pub(crate) kind: KeyKind,
    pub(crate) user: Option<&'a str>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) session: Option<&'a str>,
}

impl<'a> SignalKey<'a> {
    pub(crate) fn new(kind: KeyKind) -> SignalKey<'a> {
        SignalKey {
            kind,
            user: None,
            ip: None,
            session: None,
        }
    }

    pub(crate) fn user(mut self, user: Option<&'a str>) -> Self {
        self.user = user;
        self
    }

    pub(crate) fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    pub(crate) fn session(mut self, session: Option<&'a str>) -> Self {
        self.session = session;
        self
    }
}

/// One signal, ready to emit. Built under a detector's lock, emitted after it is released.
#[derive(Clone, Debug)]
pub(crate) struct Signal<'a> {
    pub(crate) event: &'static Event,
    pub(crate) detector: DetectorKind,
    pub(crate) rule: Rule,
    pub(crate) key: SignalKey<'a>,
    pub(crate) method: Option<&'a str>,
    pub(crate) count: u64,
    pub(crate) threshold: u64,
    pub(crate) window: Duration,
    pub(crate) mode: Mode,
    pub(crate) action: Action,
    pub(crate) penalty: Duration,
    pub(crate) extra: [Option<(&'static str, u64)>; 2],
}

impl<'a> Signal<'a> {
    pub(crate) fn new(
        event: &'static Event,
        detector: DetectorKind,
        rule: Rule,
        key: SignalKey<'a>,
        mode: Mode,
    ) -> Signal<'a> {
        Signal {
            event,
            detector,
            rule,
            key,
            method: None,
            count: 0,
            threshold: 0,
            window: Duration::ZERO,
            mode,
            action: Action::None,
            penalty: Duration::ZERO,
            extra: [None, None],
        }
    }

    pub(crate) fn counts(mut self, count: u64, threshold: u64, window: Duration) -> Self {
        self.count = count;
        self.threshold = threshold;
        self.window = window;
        self
    }

    pub(crate) fn action(mut self, action: Action, penalty: Duration) -> Self {
        self.action = action;
        self.penalty = penalty;
        self
    }

    pub(crate) fn method(mut self, method: Option<&'a str>) -> Self {
        self.method = method;
        self
    }

    pub(crate) fn extra(mut self, key: &'static str, value: u64) -> Self {
        if let Some(slot) = self.extra.iter_mut().find(|s| s.is_none()) {
            *slot = Some((key, value));
        }
        self
    }

    /// Emits the signal to the thread's registry (the one whose handler is running). Called
    /// with no detector lock held, so a handler that hears it may call back into the
    /// detectors (a verdict) without deadlock.
    pub(crate) fn emit(&self) {
        let prefix;
        let mut meta = Metadata::new()
            .reason(self.rule.as_str())
            .with_extra("detector", self.detector.as_str())
            .with_extra("key_kind", self.key.kind.as_str())
            .with_extra("count", self.count)
            .with_extra("threshold", self.threshold)
            .with_extra("window_secs", self.window.as_secs())
            .with_extra("mode", self.mode.as_str());
        if let Some(user) = self.key.user {
            meta = meta.user_id(user);
        }
        if let Some(ip) = self.key.ip {
            meta = meta.client_ip(ip);
            if self.key.kind == KeyKind::IpPrefix {
                prefix = crate::keys::prefix_text(ip);
                meta = meta.rate_limit_key(&prefix);
            }
        }
        if self.key.kind == KeyKind::Global {
            meta = meta.rate_limit_key("global");
        }
        if let Some(session) = self.key.session {
            meta = meta.session_id(session);
        }
        if let Some(method) = self.method {
            // The method field takes only compile-time codes; an application's own code read
            // back from the triggering record travels as an extra field instead.
            meta = match AuthMethod::well_known(method) {
                Some(known) => meta.method(known),
                None => meta.with_extra("method_code", method),
            };
        }
        if self.action != Action::None {
            meta = meta
                .with_extra("action", self.action.as_str())
                .with_extra("penalty_secs", self.penalty.as_secs());
        } else {
            for (key, value) in self.extra.iter().flatten() {
                meta = meta.with_extra(key, *value);
            }
        }
        telemetry::event(self.event, Measurements::new().count(1), meta);
    }
}

/// The catalogue event of each rule's signal.
pub(crate) fn event_of(detector: DetectorKind, rule: Rule) -> &'static Event {
    match (detector, rule) {
        (DetectorKind::BruteForce, _) => &catalogue::SECURITY_BRUTE_FORCE,
        (DetectorKind::PasswordSpraying, _) => &catalogue::SECURITY_PASSWORD_SPRAYING,
        (DetectorKind::CredentialStuffing, _) => &catalogue::SECURITY_CREDENTIAL_STUFFING,
        (DetectorKind::Mfa, Rule::CodeGuessing) => &catalogue::SECURITY_MFA_GUESSING,
        (DetectorKind::Mfa, _) => &catalogue::SECURITY_MFA_FATIGUE,
        (DetectorKind::NewLocation, _) => &catalogue::SECURITY_SUSPICIOUS_LOGIN,
        (DetectorKind::ImpossibleTravel, _) => &catalogue::SECURITY_IMPOSSIBLE_TRAVEL,
        (DetectorKind::RefreshReuse, _) => &catalogue::SECURITY_REFRESH_TOKEN_REUSE,
    }
}

/// Every catalogue event a detector may raise.
///
/// ```
/// assert!(authtel_detect::signal_events().iter().any(|e| e.name() == "security.brute_force"));
/// ```
pub fn signal_events() -> [&'static Event; 8] {
    [
        &catalogue::SECURITY_BRUTE_FORCE,
        &catalogue::SECURITY_PASSWORD_SPRAYING,
        &catalogue::SECURITY_CREDENTIAL_STUFFING,
        &catalogue::SECURITY_MFA_FATIGUE,
        &catalogue::SECURITY_MFA_GUESSING,
        &catalogue::SECURITY_SUSPICIOUS_LOGIN,
        &catalogue::SECURITY_IMPOSSIBLE_TRAVEL,
        &catalogue::SECURITY_REFRESH_TOKEN_REUSE,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_round_trip() {
        for d in DetectorKind::ALL {
            assert_eq!(d.as_str().parse::<DetectorKind>(), Ok(*d));
        }
        for k in KeyKind::ALL {
            assert_eq!(k.as_str().parse::<KeyKind>(), Ok(*k));
        }
        for r in Rule::ALL {
            assert_eq!(r.as_str().parse::<Rule>(), Ok(*r));
        }
        assert!("nope".parse::<Action>().is_err());
    }

    #[test]
    fn no_field_name_reads_as_a_secret() {
        // The policy redacts secret-looking keys; none of ours may be one.
        for key in [
            "detector",
            "key_kind",
            "count",
            "threshold",
            "window_secs",
            "mode",
            "action",
            "penalty_secs",
            "distance_km",
            "attempts",
            "baseline_pct",
            "distinct_ips",
            "distinct_identifiers",
        ] {
            assert!(!authtel_core::metadata::key_names_secret(key), "{key}");
        }
    }
}
