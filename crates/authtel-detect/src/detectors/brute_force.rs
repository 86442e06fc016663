//! Brute force: failed logins per address and account (Auth0), per account (Keycloak's
//! growing wait), per address (Rauthy's ladder).

use std::sync::Arc;
use std::time::Duration;

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{
    AddressState, LoginDetector, Shared, Sliding, dedupe, handle_alone, ms, ms_or_zero, penalty_due,
};
use crate::config::{BruteForceConfig, Mode};
use crate::keys::{RecordKeys, piece};
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
    /// The rung reached and the one to impose, as places in the configuration's ladder.
    rung: Option<usize>,
    impose: Option<usize>,
}

/// Per address and account: failures since the last success, in the window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PairState {
    failures: Sliding,
    last_signal: u64,
    imposed_until: u64,
}

/// Addresses whose pair counts an account's entry keeps.
pub(crate) const PAIRS: usize = 2;

/// One pair count in an account's entry: the address (its digest's [`piece`]; zero: the
/// slot is free) and its state.
#[derive(Clone, Copy, Debug, Default)]
struct PairSlot {
    address: u32,
    state: PairState,
}

/// Per account: failures since the last success (Keycloak's counter), and the pair rule's
/// counts for the [`PAIRS`] addresses failing most against it.
///
/// The pairs live in the account's entry, so a failure looks up one table for both rules
/// instead of two. An address not held takes the slot with fewer failures in the window (a
/// free slot has none), and of two with as many, the one taken last: churn from many addresses,
/// each failing once or twice, replaces itself, while the address hammering the account
/// keeps its count and reaches the threshold. When more than [`PAIRS`] addresses each fail repeatedly, those that lose their
/// slot are still counted by the address rule and the account rule.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdentifierState {
    failures: u32,
    /// Last failure plus one (0: none).
    last_failure: u64,
    last_signal: u64,
    imposed_until: u64,
    pairs: [PairSlot; PAIRS],
    /// The pair slot taken last.
    newest: u8,
}

impl IdentifierState {
    /// The pair state of `address` (its digest's [`piece`]), taking a slot for it
    /// if it has none.
    fn pair(&mut self, address: u32, now: u64, window: u64) -> &mut PairState {
        let i = match self.held(address) {
            Some(i) => i,
            None => {
                let newest = usize::from(self.newest);
                // Fewer failures first; of equals, the slot taken last.
                // A free slot holds the default state, which counts none; a slot last used
                // windows ago counts none either.
                let rank = |i: usize| {
                    let count = self.pairs[i].state.failures.count_now(now, window);
                    (count, i != newest)
                };
                let i = (1..PAIRS).fold(0, |low, i| if rank(i) < rank(low) { i } else { low });
                self.pairs[i] = PairSlot {
                    address,
                    state: PairState::default(),
                };
                self.newest = i as u8;
                i
            }
        };
        &mut self.pairs[i].state
    }

    /// The pair state of `address` if the account holds one.
    fn held_pair(&mut self, address: u32) -> Option<&mut PairState> {
        self.held(address).map(|i| &mut self.pairs[i].state)
    }

    /// The slot of `address`, if it has one.
    fn held(&self, address: u32) -> Option<usize> {
        self.pairs.iter().position(|p| p.address == address)
    }
}

/// The configuration's durations in milliseconds, the unit its state counts in: converted
/// once when the detector is built, not on every failure.
#[derive(Debug)]
struct Millis {
    ip_window: u64,
    pair_window: u64,
    pair_block: u64,
    /// The ladder's rungs as (failures, block), in the configuration's (ascending) order.
    ladder: Box<[(u32, u64)]>,
    identifier_reset: u64,
    quick_check: u64,
    wait_increment: u64,
    max_wait: u64,
    min_quick_wait: u64,
}

impl Millis {
    fn of(c: &BruteForceConfig) -> Millis {
        Millis {
            ip_window: ms(c.ip_window),
            pair_window: ms(c.ip_identifier_window),
            pair_block: ms(c.ip_identifier_block),
            ladder: c
                .ip_ladder
                .iter()
                .map(|r| (r.failures, ms(r.block)))
                .collect(),
            identifier_reset: ms(c.identifier_failure_reset),
            quick_check: ms_or_zero(c.quick_login_check),
            wait_increment: ms_or_zero(c.identifier_wait_increment),
            max_wait: ms_or_zero(c.identifier_max_wait),
            min_quick_wait: ms_or_zero(c.min_quick_login_wait),
        }
    }

    /// How long an account must wait after `failures` failures (Keycloak's rule: one
    /// increment per `factor` failures, up to the longest wait), in milliseconds.
    fn wait_after(&self, failures: u32, factor: u32) -> u64 {
        // Below one step there is no wait to compute (and no division to pay).
        let steps = if failures < factor {
            0
        } else {
            failures / factor
        };
        self.wait_increment
            .saturating_mul(steps.into())
            .min(self.max_wait)
    }
}

/// The brute-force detector. Hears `auth.login.stop`: failures count, a success resets the
/// account's and the pair's counts, and the address's (or, with `ip_reset_on_success`
/// off, forgives one of its failures).
#[derive(Debug)]
pub struct BruteForce {
    shared: Arc<Shared>,
    config: BruteForceConfig,
    ms: Millis,
    ip: Arc<Table<AddressState>>,
    identifier: Table<IdentifierState>,
}

impl BruteForce {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: BruteForceConfig,
        ip: Arc<Table<AddressState>>,
        identifier: Table<IdentifierState>,
    ) -> BruteForce {
        BruteForce {
            shared,
            ms: Millis::of(&config),
            config,
            ip,
            identifier,
        }
    }

    /// Its own tables (the address table, shared with spraying, is reported once by
    /// [`Detectors::stats`](crate::Detectors::stats)).
    pub(crate) fn tables(&self) -> [TableStats; 1] {
        [self.identifier.stats()]
    }

    /// Starts loading the index slot a failure of this record probes in its own table (the
    /// account's, which holds the pairs too), see [`Table::prefetch`].
    #[inline]
    pub(crate) fn prefetch(&self, keys: &mut RecordKeys<'_, '_>) {
        if let Some(user) = keys.user() {
            self.identifier.prefetch(user);
        }
    }

    /// One more failure from an address, on its state (under the address table's lock).
    pub(crate) fn ip_step(&self, s: &mut IpState, now: u64) -> IpStep {
        let c = &self.config;
        let window = self.ms.ip_window;
        let count = s.failures.add(now, window);
        let rung = self.ms.ladder.iter().rposition(|r| count >= r.0);
        let enforce = self.enforce();
        let impose = rung
            .filter(|&i| enforce && penalty_due(&mut s.imposed_until, now, self.ms.ladder[i].1));
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
            if let Some(i) = impose {
                self.shared
                    .penalties
                    .impose(PenaltyKey::Ip, ip, now, c.ip_ladder[i].block, true);
            }
            if signal_now {
                let (action, penalty) = rung.map_or((Action::None, Duration::ZERO), |i| {
                    (Action::Block, c.ip_ladder[i].block)
                });
                raised[0] = Some(
                    signal(KeyKind::Ip)
                        .counts(count.into(), limit.into(), c.ip_window)
                        .action(action, penalty),
                );
            }
        }

        if let Some(user) = keys.user() {
            let m = &self.ms;
            let factor = c.identifier_failure_factor;
            let enforce = self.enforce();
            let address = keys.ip().map(piece);
            // One lookup of the account for both rules: its pair with the address, then its
            // own count.
            let (pair_step, (failures, wait, signal_now, impose)) =
                self.identifier.with(user, |s, _, _| {
                    let pair = address.map(|a| {
                        let p = s.pair(a, now, m.pair_window);
                        let count = p.failures.add(now, m.pair_window);
                        let over = count >= c.ip_identifier_threshold;
                        let impose =
                            over && enforce && penalty_due(&mut p.imposed_until, now, m.pair_block);
                        (
                            count,
                            over && dedupe(&mut p.last_signal, now, m.pair_window),
                            impose,
                        )
                    });
                    let previous = s.last_failure.checked_sub(1);
                    if previous.is_some_and(|t| now.saturating_sub(t) > m.identifier_reset) {
                        s.failures = 0;
                    }
                    let quick_retry = m.quick_check != 0
                        && previous.is_some_and(|t| now.saturating_sub(t) < m.quick_check);
                    s.failures = s.failures.saturating_add(1);
                    s.last_failure = now + 1;
                    let mut wait = m.wait_after(s.failures, factor);
                    if quick_retry {
                        wait = wait.max(m.min_quick_wait);
                    }
                    let over = s.failures >= factor;
                    let impose =
                        wait != 0 && enforce && penalty_due(&mut s.imposed_until, now, wait);
                    let signal_now = over && dedupe(&mut s.last_signal, now, m.identifier_reset);
                    (
                        pair,
                        (s.failures, Duration::from_millis(wait), signal_now, impose),
                    )
                });
            if let Some((count, pair_signal, pair_impose)) = pair_step {
                // The pair's digest (the penalty box's key) only when there is a penalty.
                if pair_impose && let Some(pair) = keys.pair() {
                    self.shared.penalties.impose(
                        PenaltyKey::Pair,
                        pair,
                        now,
                        c.ip_identifier_block,
                        true,
                    );
                }
                if pair_signal {
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
            let window = self.ms.ip_window;
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
        if let Some(user) = keys.user() {
            let address = keys.ip().map(piece);
            self.identifier.with_existing(user, |s| {
                s.failures = 0;
                s.last_failure = 0;
                s.imposed_until = 0;
                // The pair of this address starts again; the account's others keep counting.
                if let Some(p) = address.and_then(|a| s.held_pair(a)) {
                    p.failures.reset();
                    p.imposed_until = 0;
                }
            });
            if let Some(pair) = keys.pair() {
                self.shared.penalties.lift(PenaltyKey::Pair, pair, now);
            }
            self.shared
                .penalties
                .lift(PenaltyKey::Identifier, user, now);
        }
    }

    /// How long an account must wait after `failures` failures (Keycloak's rule).
    #[cfg(test)]
    pub(crate) fn wait_after(config: &BruteForceConfig, failures: u32) -> Duration {
        let wait = Millis::of(config).wait_after(failures, config.identifier_failure_factor);
        Duration::from_millis(wait)
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
