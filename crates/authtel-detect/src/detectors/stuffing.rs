//! Credential stuffing: across all logins, a failure ratio far above the baseline, spread
//! over many accounts and addresses; or a burst of failures for accounts that do not exist.
//!
//! State is fixed-size: counters of the current window (windows are fixed, `window` long)
//! and two sets of the distinct accounts and addresses that failed in it (64-bit keyed
//! digests in fixed open-addressing tables, exact up to 3,072 each, saturating after).
//!
//! The baseline is a running average of the failure ratio of normal windows only: a window
//! that raised a signal, or whose ratio reached `min_failure_pct`, does not teach the
//! detector that attacks are normal (a slow spraying run would otherwise lift the baseline
//! until stuffing could never fire). The limit a window must reach is
//! `max(min_failure_pct, min(baseline × baseline_factor, 95))`.

use std::mem::size_of;
use std::sync::{Arc, Mutex};

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{LoginDetector, Shared, handle_alone, ms};
use crate::config::StuffingConfig;
use crate::keys::RecordKeys;
use crate::reasons;
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};

const SET_SLOTS: usize = 4096;
/// The most items a set counts exactly; it saturates there (¾ full keeps probes short).
const SET_MAX: u32 = (SET_SLOTS / 4 * 3) as u32;
/// The highest limit a baseline can push the ratio to: stuffing fails nearly every attempt.
const MAX_LIMIT_PCT: f64 = 95.0;

/// Bytes of the detector's state.
pub(crate) const FIXED_BYTES: usize = size_of::<Mutex<Window>>() + 2 * SET_SLOTS * size_of::<u64>();

/// Distinct digests seen in a window, exactly up to [`SET_MAX`].
#[derive(Clone, Debug)]
struct DistinctSet {
    slots: Box<[u64]>,
    len: u32,
}

impl Default for DistinctSet {
    fn default() -> Self {
        DistinctSet {
            slots: vec![0; SET_SLOTS].into_boxed_slice(),
            len: 0,
        }
    }
}

impl DistinctSet {
    fn insert(&mut self, fp: u64) {
        if self.len >= SET_MAX {
            return;
        }
        let fp = fp | 1;
        let mask = SET_SLOTS - 1;
        let mut i = fp as usize & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = fp;
                    self.len += 1;
                    return;
                }
                x if x == fp => return,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn len(&self) -> u64 {
        self.len.into()
    }

    fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    /// Which window (time / window length) these counts are of; `u64::MAX`: none yet.
    id: u64,
    /// The window's past-the-last millisecond (0 before the first), so a login in it needs
    /// no division.
    until: u64,
    attempts: u32,
    failures: u32,
    unknown: u32,
    identifiers: DistinctSet,
    ips: DistinctSet,
    ratio_signalled: bool,
    unknown_signalled: bool,
    /// Baseline failure ratio, in percent.
    baseline_pct: f64,
}

/// The credential-stuffing detector. Hears every `auth.login.stop`.
#[derive(Debug)]
pub struct CredentialStuffing {
    shared: Arc<Shared>,
    config: StuffingConfig,
    /// The window in milliseconds, converted once.
    window_ms: u64,
    window: Mutex<Window>,
}

impl CredentialStuffing {
    pub(crate) fn new(shared: Arc<Shared>, config: StuffingConfig) -> CredentialStuffing {
        let window = Window {
            id: u64::MAX,
            baseline_pct: f64::from(config.initial_baseline_pct),
            ..Window::default()
        };
        CredentialStuffing {
            shared,
            window_ms: ms(config.window),
            config,
            window: Mutex::new(window),
        }
    }

    /// The current baseline failure ratio, in percent.
    pub(crate) fn baseline_pct(&self) -> f64 {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .baseline_pct
    }

    fn observe(&self, record: &EventRecord<'_>, failed: bool, keys: &mut RecordKeys<'_, '_>) {
        let c = &self.config;
        let now = keys.now();
        let window = self.window_ms;
        let meta = record.metadata;
        let (user, ip) = if failed {
            (keys.user(), keys.ip())
        } else {
            (None, None)
        };
        let unknown =
            failed && (user.is_none() || meta.get_reason() == Some(reasons::UNKNOWN_USER));
        let mut raised: [Option<Signal<'_>>; 2] = [None, None];
        {
            let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            // Only forward: a login that reaches the lock late, stamped before this window
            // began (another thread's, or a span stop's exact instant beside the coarse
            // clock), counts in this window instead of restarting the one before and losing
            // this one's counts.
            // A window not begun yet has `until` 0.
            if now >= w.until {
                Self::close(&mut w, c);
                let id = now / window;
                w.id = id;
                w.until = (id * window).saturating_add(window);
                w.attempts = 0;
                w.failures = 0;
                w.unknown = 0;
                w.identifiers.clear();
                w.ips.clear();
                w.ratio_signalled = false;
                w.unknown_signalled = false;
            }
            w.attempts = w.attempts.saturating_add(1);
            if failed {
                w.failures = w.failures.saturating_add(1);
                if unknown {
                    w.unknown = w.unknown.saturating_add(1);
                }
                if let Some(user) = user {
                    w.identifiers.insert(user);
                }
                if let Some(ip) = ip {
                    w.ips.insert(ip);
                }
            }
            let global = || SignalKey::new(KeyKind::Global);
            if failed && !w.ratio_signalled && w.attempts >= c.min_attempts {
                let ratio = f64::from(w.failures) * 100.0 / f64::from(w.attempts);
                let limit = (w.baseline_pct * f64::from(c.baseline_factor))
                    .min(MAX_LIMIT_PCT)
                    .max(f64::from(c.min_failure_pct));
                let (ids, ips) = (w.identifiers.len(), w.ips.len());
                if ratio >= limit
                    && ids >= u64::from(c.min_distinct_identifiers)
                    && ips >= u64::from(c.min_distinct_ips)
                {
                    w.ratio_signalled = true;
                    raised[0] = Some(
                        Signal::new(
                            event_of(DetectorKind::CredentialStuffing, Rule::FailureRatio),
                            DetectorKind::CredentialStuffing,
                            Rule::FailureRatio,
                            global(),
                            c.mode,
                        )
                        .counts(ratio.floor() as u64, limit.ceil() as u64, c.window)
                        .extra("attempts", w.attempts.into())
                        .extra("baseline_pct", w.baseline_pct.round() as u64),
                    );
                }
            }
            if unknown && !w.unknown_signalled && w.unknown >= c.unknown_user_threshold {
                w.unknown_signalled = true;
                raised[1] = Some(
                    Signal::new(
                        event_of(DetectorKind::CredentialStuffing, Rule::UnknownUserBurst),
                        DetectorKind::CredentialStuffing,
                        Rule::UnknownUserBurst,
                        global(),
                        c.mode,
                    )
                    .counts(w.unknown.into(), c.unknown_user_threshold.into(), c.window)
                    .extra("attempts", w.attempts.into())
                    .extra("distinct_ips", w.ips.len()),
                );
            }
        }
        for s in raised.iter().flatten() {
            self.shared.count_signal(DetectorKind::CredentialStuffing);
            s.emit();
        }
    }

    /// Folds a finished window into the baseline, if it was normal (no signal, a ratio
    /// under `min_failure_pct`) and busy enough to mean something.
    fn close(w: &mut Window, c: &StuffingConfig) {
        if w.id == u64::MAX || w.ratio_signalled || w.unknown_signalled {
            return;
        }
        if w.attempts >= (c.min_attempts / 4).max(1) {
            let ratio = f64::from(w.failures) * 100.0 / f64::from(w.attempts);
            if ratio < f64::from(c.min_failure_pct) {
                w.baseline_pct = 0.8 * w.baseline_pct + 0.2 * ratio;
            }
        }
    }
}

impl LoginDetector for CredentialStuffing {
    fn hears(&self, outcome: Outcome) -> bool {
        matches!(outcome, Outcome::Failure | Outcome::Success)
    }

    fn login(&self, record: &EventRecord<'_>, outcome: Outcome, keys: &mut RecordKeys<'_, '_>) {
        self.observe(record, outcome == Outcome::Failure, keys);
    }
}

impl Handler for CredentialStuffing {
    fn handle(&self, record: &EventRecord<'_>) {
        handle_alone(self, &self.shared, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::mix;

    #[test]
    fn sets_count_exactly_then_saturate() {
        let mut s = DistinctSet::default();
        for i in 0..2000u64 {
            s.insert(mix(i));
            s.insert(mix(i));
        }
        assert_eq!(s.len(), 2000);
        for i in 0..10_000u64 {
            s.insert(mix(i));
        }
        assert_eq!(s.len(), u64::from(SET_MAX));
        s.clear();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_login_stamped_before_the_window_counts_in_it_instead_of_restarting_the_last() {
        use authtel_core::catalogue::AUTH_LOGIN;
        use authtel_core::metadata::Metadata;
        use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};

        use crate::clock::ManualClock;
        use crate::keys::RecordKeys;
        use crate::verdict::PenaltyBox;

        let shared = Arc::new(Shared::new(
            Arc::new(ManualClock::new()),
            PenaltyBox::new(None),
            None,
        ));
        let d = CredentialStuffing::new(shared.clone(), StuffingConfig::default());
        let window = ms(d.config.window);
        let numbers = Measurements::new();
        let meta = Metadata::new().outcome(Outcome::Failure);
        let record = EventRecord::signal(
            AUTH_LOGIN.stop(),
            SpanContext::child_of(None),
            &numbers,
            &meta,
        );
        let at = |now: u64| {
            d.observe(
                &record,
                true,
                &mut RecordKeys::new(&shared.hasher, now, &record),
            );
        };
        let second = 7 * window;
        for _ in 0..150 {
            at(second + 5);
        }
        // Late: stamped a millisecond before this window began (a coarse clock a tick
        // behind, or a thread that read the clock before the window turned).
        at(second - 1);
        for _ in 0..100 {
            at(second + 9);
        }
        let w = d.window.lock().unwrap();
        assert_eq!((w.id, w.attempts, w.unknown), (7, 251, 251));
    }
}
