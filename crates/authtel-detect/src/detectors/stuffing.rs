//! Credential stuffing: across all logins, a failure ratio far above the baseline, spread
//! over many accounts and addresses; or a burst of failures for accounts that do not exist.
//!
//! State is fixed-size: counters of the current window (windows are fixed, `window` long)
//! and two 1024-bit linear-counting sketches of the distinct accounts and addresses that
//! failed in it. The baseline is a running average of the ratio of quiet windows only (a
//! window that raised a signal does not teach the detector that attacks are normal).

use std::mem::size_of;
use std::sync::{Arc, Mutex};

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{Shared, ms, outcome};
use crate::config::StuffingConfig;
use crate::keys::KeyCache;
use crate::reasons;
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};

const SKETCH_WORDS: usize = 16;
const SKETCH_BITS: f64 = (SKETCH_WORDS * 64) as f64;

/// Bytes of the detector's state.
pub(crate) const FIXED_BYTES: usize = size_of::<Mutex<Window>>();

/// A linear-counting sketch: distinct items ≈ −m·ln(zero bits / m).
#[derive(Clone, Copy, Debug, Default)]
struct Sketch([u64; SKETCH_WORDS]);

impl Sketch {
    fn insert(&mut self, fp: u64) {
        let bit = (fp >> 20) as usize % (SKETCH_WORDS * 64);
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn estimate(&self) -> u64 {
        let zeros: u32 = self.0.iter().map(|w| w.count_zeros()).sum();
        let zeros = f64::from(zeros.max(1));
        (-SKETCH_BITS * (zeros / SKETCH_BITS).ln()).round() as u64
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Window {
    /// Which window (time / window length) these counts are of; `u64::MAX`: none yet.
    id: u64,
    attempts: u32,
    failures: u32,
    unknown: u32,
    identifiers: Sketch,
    ips: Sketch,
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

    fn observe(&self, record: &EventRecord<'_>, failed: bool) {
        let c = &self.config;
        let now = self.shared.now();
        let id = now / ms(c.window);
        let keys = KeyCache::new(&self.shared.hasher, record);
        let meta = record.metadata;
        let unknown = failed
            && (keys.user().is_none() || meta.get_reason() == Some(reasons::UNKNOWN_USER));
        let mut raised: [Option<Signal<'_>>; 2] = [None, None];
        {
            let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if w.id != id {
                Self::close(&mut w, c);
                *w = Window {
                    id,
                    baseline_pct: w.baseline_pct,
                    ..Window::default()
                };
            }
            w.attempts = w.attempts.saturating_add(1);
            if failed {
                w.failures = w.failures.saturating_add(1);
                if unknown {
                    w.unknown = w.unknown.saturating_add(1);
                }
                if let Some(user) = keys.user() {
                    w.identifiers.insert(user);
                }
                if let Some(ip) = keys.ip() {
                    w.ips.insert(ip);
                }
            }
            let global = || {
                SignalKey::new(KeyKind::Global)
            };
            if failed && !w.ratio_signalled && w.attempts >= c.min_attempts {
                let ratio = f64::from(w.failures) * 100.0 / f64::from(w.attempts);
                let limit = (w.baseline_pct * f64::from(c.baseline_factor))
                    .max(f64::from(c.min_failure_pct));
                let (ids, ips) = (w.identifiers.estimate(), w.ips.estimate());
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
                    .extra("distinct_ips", w.ips.estimate()),
                );
            }
        }
        for s in raised.iter().flatten() {
            self.shared.count_signal(DetectorKind::CredentialStuffing);
            s.emit();
        }
    }

    /// Folds a finished window into the baseline, if it was quiet and busy enough to mean
    /// something.
    fn close(w: &mut Window, c: &StuffingConfig) {
        if w.id == u64::MAX || w.ratio_signalled || w.unknown_signalled {
            return;
        }
        if w.attempts >= (c.min_attempts / 4).max(1) {
            let ratio = f64::from(w.failures) * 100.0 / f64::from(w.attempts);
            w.baseline_pct = 0.8 * w.baseline_pct + 0.2 * ratio;
        }
    }
}

impl Handler for CredentialStuffing {
    fn handle(&self, record: &EventRecord<'_>) {
        if !std::ptr::eq(record.event, AUTH_LOGIN.stop()) {
            return;
        }
        match outcome(record) {
            Some(Outcome::Failure) => self.observe(record, true),
            Some(Outcome::Success) => self.observe(record, false),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::mix;

    #[test]
    fn sketch_estimates_distinct_counts() {
        for n in [10u64, 100, 500, 2000] {
            let mut s = Sketch::default();
            for i in 0..n {
                s.insert(mix(i));
                s.insert(mix(i));
            }
            let e = s.estimate() as f64;
            assert!((e - n as f64).abs() <= n as f64 * 0.15 + 2.0, "{n}: {e}");
        }
    }
}
