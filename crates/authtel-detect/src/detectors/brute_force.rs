//! Brute force: failed logins per address and account (Auth0), per account (Keycloak's
//! growing wait), per address (Rauthy's ladder).

use std::sync::Arc;
use std::time::Duration;

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{AddressState, LoginDetector, Shared, Sliding, dedupe, handle_alone, ms, penalty_due};
use crate::config::{BruteForceConfig, Mode, Rung};
use crate::keys::RecordKeys;
use crate::signal::{Action, DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};
use crate::verdict::PenaltyKey;

/// Per address: failures (a success clears them, or forgives one) and the last signal. It
/// lives in the address's [`AddressState`], beside password spraying's set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IpState {
    failures: Sliding,
    last_signal: u64,
    imposed_until: u64,
}

/// What a failure did to its address's count: the windowed count, whether to signal, the
/// ladder's rung reached, the rung to (re)impose.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpStep {
    count: u32,
    signal_now: bool,
    rung: Option<Rung>,
    impose: Option<Rung>,
}

/// Per address and account: failures since the last success, in the window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PairState {
    failures: Sliding,
    last_signal: u64,
    imposed_until: u64,
}

/// Per account: failures since the last success (Keycloak's counter).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdentifierState {
    failures: u32,
    /// Last failure plus one (0: none).
    last_failure: u64,
    last_signal: u64,
    imposed_until: u64,
}

/// The brute-force detector. Hears `auth.login.stop`: failures count, a success resets the
/// account's and the pair's counts, and the address's (or, with `ip_reset_on_success`
/// off, forgives one of its failures).
#[derive(Debug)]
pub struct BruteForce {
    shared: Arc<Shared>,
    config: BruteForceConfig,
    ip: Arc<Table<AddressState>>,
    pair: Table<PairState>,
    identifier: Table<IdentifierState>,
}

impl BruteForce {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: BruteForceConfig,
        ip: Arc<Table<AddressState>>,
        pair: Table<PairState>,
        identifier: Table<IdentifierState>,
    ) -> BruteForce {
        BruteForce {
            shared,
            config,
            ip,
            pair,
            identifier,
        }
    }

    /// Its own tables (the address table, shared with spraying, is reported once by
    /// [`Detectors::stats`](crate::Detectors::stats)).
    pub(crate) fn tables(&self) -> [TableStats; 2] {
        [self.pair.stats(), self.identifier.stats()]
    }

    /// Starts loading the index slots a failure of this record probes in its own tables
    /// (the pair's and the account's), see [`Table::prefetch`].
    #[inline]
    pub(crate) fn prefetch(&self, keys: &mut RecordKeys<'_, '_>) {
        if let Some(user) = keys.user() {
            self.identifier.prefetch(user);
        }
        if let Some(pair) = keys.pair() {
            self.pair.prefetch(pair);
        }
    }

    /// One more failure from an address, on its state (under the address table's lock).
    pub(crate) fn ip_step(&self, s: &mut IpState, now: u64) -> IpStep {
        let c = &self.config;
        let window = ms(c.ip_window);
        let count = s.failures.add(now, window);
        let rung = c
            .ip_ladder
            .iter()
            .rev()
            .find(|r| count >= r.failures)
            .copied();
        let enforce = self.enforce();
        let impose = rung.filter(|r| enforce && penalty_due(&mut s.imposed_until, now, r.block));
        let signal_now = count >= c.ip_signal_threshold && dedupe(&mut s.last_signal, now, window);
        IpStep {
            count,
            signal_now,
            rung,
            impose,
        }
    }

    fn enforce(&self) -> bool {
        self.config.mode == Mode::Enforce
    }

    /// A failed login. `ip_step` is the address's step when the caller took it already
    /// (the login handler, with spraying's, in one lookup of the address).
    pub(crate) fn failure(
        &self,
        record: &EventRecord<'_>,
        keys: &mut RecordKeys<'_, '_>,
        ip_step: Option<IpStep>,
    ) {
        let c = &self.config;
        let now = keys.now();
        let meta = record.metadata;
        let signal = |kind: KeyKind| {
            Signal::new(
                event_of(DetectorKind::BruteForce, Rule::Failures),
                DetectorKind::BruteForce,
                Rule::Failures,
                SignalKey::new(kind)
                    .user(meta.get_user_id().filter(|_| kind != KeyKind::Ip))
                    .ip(meta.get_client_ip().filter(|_| kind != KeyKind::Identifier)),
                c.mode,
            )
        };
        let mut raised: [Option<Signal<'_>>; 3] = [None, None, None];

        if let Some(ip) = keys.ip() {
            let limit = c.ip_signal_threshold;
            let IpStep {
                count,
                signal_now,
                rung,
                impose,
            } = ip_step.unwrap_or_else(|| {
                self.ip
                    .with(ip, |a, _, _| self.ip_step(&mut a.brute_force, now))
            });
            if let Some(rung) = impose {
                self.shared
                    .penalties
                    .impose(PenaltyKey::Ip, ip, now, rung.block, true);
            }
            if signal_now {
                let (action, penalty) =
                    rung.map_or((Action::None, Duration::ZERO), |r| (Action::Block, r.block));
                raised[0] = Some(
                    signal(KeyKind::Ip)
                        .counts(count.into(), limit.into(), c.ip_window)
                        .action(action, penalty),
                );
            }
        }

        if let Some(pair) = keys.pair() {
            let window = ms(c.ip_identifier_window);
            let enforce = self.enforce();
            let (count, signal_now, impose) = self.pair.with(pair, |s, _, _| {
                let count = s.failures.add(now, window);
                let over = count >= c.ip_identifier_threshold;
                let impose = over
                    && enforce
                    && penalty_due(&mut s.imposed_until, now, c.ip_identifier_block);
                (
                    count,
                    over && dedupe(&mut s.last_signal, now, window),
                    impose,
                )
            });
            if impose {
                self.shared.penalties.impose(
                    PenaltyKey::Pair,
                    pair,
                    now,
                    c.ip_identifier_block,
                    true,
                );
            }
            if signal_now {
                raised[1] = Some(
                    signal(KeyKind::IpIdentifier)
                        .counts(
                            count.into(),
                            c.ip_identifier_threshold.into(),
                            c.ip_identifier_window,
                        )
                        .action(Action::Block, c.ip_identifier_block),
                );
            }
        }

        if let Some(user) = keys.user() {
            let reset = ms(c.identifier_failure_reset);
            let quick = ms(c.quick_login_check);
            let enforce = self.enforce();
            let (failures, wait, signal_now, impose) = self.identifier.with(user, |s, _, _| {
                let previous = s.last_failure.checked_sub(1);
                if previous.is_some_and(|t| now.saturating_sub(t) > reset) {
                    s.failures = 0;
                }
                let quick_retry = !c.quick_login_check.is_zero()
                    && previous.is_some_and(|t| now.saturating_sub(t) < quick);
                s.failures = s.failures.saturating_add(1);
                s.last_failure = now + 1;
                // Below one step there is no wait to compute (and no division to pay).
                let steps = if s.failures < c.identifier_failure_factor {
                    0
                } else {
                    s.failures / c.identifier_failure_factor
                };
                let mut wait = (c.identifier_wait_increment * steps).min(c.identifier_max_wait);
                if quick_retry {
                    wait = wait.max(c.min_quick_login_wait);
                }
                let over = s.failures >= c.identifier_failure_factor;
                let impose =
                    !wait.is_zero() && enforce && penalty_due(&mut s.imposed_until, now, wait);
                let signal_now = over && dedupe(&mut s.last_signal, now, reset);
                (s.failures, wait, signal_now, impose)
            });
            if impose {
                self.shared
                    .penalties
                    .impose(PenaltyKey::Identifier, user, now, wait, false);
            }
            if signal_now {
                raised[2] = Some(
                    signal(KeyKind::Identifier)
                        .counts(
                            failures.into(),
                            c.identifier_failure_factor.into(),
                            c.identifier_failure_reset,
                        )
                        .action(Action::SlowDown, wait),
                );
            }
        }

        for s in raised.iter().flatten() {
            self.shared.count_signal(DetectorKind::BruteForce);
            s.emit();
        }
    }

    fn success(&self, keys: &mut RecordKeys<'_, '_>) {
        let c = &self.config;
        let now = keys.now();
        if let Some(ip) = keys.ip() {
            let window = ms(c.ip_window);
            let reset = c.ip_reset_on_success;
            self.ip.with_existing(ip, |a| {
                let s = &mut a.brute_force;
                if reset {
                    s.failures.reset();
                } else {
                    s.failures.forgive(now, window);
                }
            });
        }
        if let Some(pair) = keys.pair() {
            self.pair.with_existing(pair, |s| {
                s.failures.reset();
                s.imposed_until = 0;
            });
            self.shared.penalties.lift(PenaltyKey::Pair, pair, now);
        }
        if let Some(user) = keys.user() {
            self.identifier.with_existing(user, |s| {
                s.failures = 0;
                s.last_failure = 0;
                s.imposed_until = 0;
            });
            self.shared
                .penalties
                .lift(PenaltyKey::Identifier, user, now);
        }
    }

    /// How long an account must wait after `failures` failures (Keycloak's rule).
    #[cfg(test)]
    pub(crate) fn wait_after(config: &BruteForceConfig, failures: u32) -> Duration {
        (config.identifier_wait_increment * (failures / config.identifier_failure_factor))
            .min(config.identifier_max_wait)
    }
}

impl LoginDetector for BruteForce {
    fn hears(&self, outcome: Outcome) -> bool {
        matches!(outcome, Outcome::Failure | Outcome::Success)
    }

    fn login(&self, record: &EventRecord<'_>, outcome: Outcome, keys: &mut RecordKeys<'_, '_>) {
        match outcome {
            Outcome::Failure => self.failure(record, keys, None),
            Outcome::Success => self.success(keys),
            _ => {}
        }
    }
}

impl Handler for BruteForce {
    fn handle(&self, record: &EventRecord<'_>) {
        handle_alone(self, &self.shared, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycloak_wait_grows_by_increment_per_factor_up_to_the_max() {
        let c = BruteForceConfig::default();
        let m = Duration::from_secs(60);
        assert_eq!(BruteForce::wait_after(&c, 29), Duration::ZERO);
        assert_eq!(BruteForce::wait_after(&c, 30), m);
        assert_eq!(BruteForce::wait_after(&c, 95), 3 * m);
        assert_eq!(BruteForce::wait_after(&c, 10_000), 15 * m);
    }
}
