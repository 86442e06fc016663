//! MFA fatigue and code guessing: many push challenges to one user, denials followed by an
//! approval (the user gave in), many failed one-time codes.

use std::sync::Arc;

use authtel_core::catalogue::MFA_VERIFY;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{Shared, Sliding, dedupe, ms, outcome};
use crate::config::MfaConfig;
use crate::reasons;
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};

/// Per user.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MfaState {
    challenges: Sliding,
    codes: Sliding,
    /// First denial of the current run plus one (0: none).
    deny_start: u64,
    denials: u32,
    last_push_signal: u64,
    last_deny_signal: u64,
    last_code_signal: u64,
}

/// The MFA detector. Hears `mfa.verify.start` (a push challenge when its method is a push
/// method) and `mfa.verify.stop` (denied, failed or succeeded).
#[derive(Debug)]
pub struct MfaFatigue {
    shared: Arc<Shared>,
    config: MfaConfig,
    users: Table<MfaState>,
}

/// Whether a stop is a push denial: outcome `denied`, or a failure whose reason says so.
fn is_denial(record: &EventRecord<'_>) -> bool {
    match outcome(record) {
        Some(Outcome::Denied) => true,
        Some(Outcome::Failure) => record
            .metadata
            .get_reason()
            .is_some_and(|r| reasons::DENIED.contains(&r)),
        _ => false,
    }
}

impl MfaFatigue {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: MfaConfig,
        users: Table<MfaState>,
    ) -> MfaFatigue {
        MfaFatigue {
            shared,
            config,
            users,
        }
    }

    pub(crate) fn tables(&self) -> [TableStats; 1] {
        [self.users.stats()]
    }

    fn is_push(&self, record: &EventRecord<'_>) -> bool {
        record
            .metadata
            .get_method()
            .is_some_and(|m| self.config.push_methods.iter().any(|p| p == m))
    }

    fn signal<'a>(&self, record: &EventRecord<'a>, rule: Rule) -> Signal<'a> {
        Signal::new(
            event_of(DetectorKind::Mfa, rule),
            DetectorKind::Mfa,
            rule,
            SignalKey::new(KeyKind::Identifier)
                .user(record.metadata.get_user_id())
                .ip(record.metadata.get_client_ip()),
            self.config.mode,
        )
        .method(record.metadata.get_method())
    }

    fn challenge(&self, record: &EventRecord<'_>, user: u64, now: u64) {
        let c = &self.config;
        let window = ms(c.push_window);
        let (count, fire) = self.users.with(user, |s, _, _| {
            let n = s.challenges.add(now, window);
            (
                n,
                n >= c.push_threshold && dedupe(&mut s.last_push_signal, now, window),
            )
        });
        if fire {
            self.shared.count_signal(DetectorKind::Mfa);
            self.signal(record, Rule::PushBombing)
                .counts(count.into(), c.push_threshold.into(), c.push_window)
                .emit();
        }
    }

    fn answer(&self, record: &EventRecord<'_>, user: u64, now: u64) {
        let c = &self.config;
        let deny_window = ms(c.deny_window);
        let code_window = ms(c.code_window);
        let denial = is_denial(record);
        let code_failure =
            !denial && outcome(record) == Some(Outcome::Failure) && !self.is_push(record);
        let success = outcome(record) == Some(Outcome::Success);
        if !(denial || code_failure || success) {
            return;
        }
        let fired = self.users.with(user, |s, _, _| {
            let run_over = s.deny_start != 0 && now.saturating_sub(s.deny_start - 1) > deny_window;
            if run_over {
                s.deny_start = 0;
                s.denials = 0;
            }
            if denial {
                if s.deny_start == 0 {
                    s.deny_start = now + 1;
                }
                s.denials = s.denials.saturating_add(1);
                None
            } else if code_failure {
                let n = s.codes.add(now, code_window);
                (n >= c.code_threshold && dedupe(&mut s.last_code_signal, now, code_window))
                    .then_some((Rule::CodeGuessing, n))
            } else {
                let denials = std::mem::take(&mut s.denials);
                s.deny_start = 0;
                (denials >= c.denials_before_accept
                    && dedupe(&mut s.last_deny_signal, now, deny_window))
                .then_some((Rule::DenyThenAccept, denials))
            }
        });
        if let Some((rule, count)) = fired {
            let (threshold, window) = match rule {
                Rule::CodeGuessing => (c.code_threshold, c.code_window),
                _ => (c.denials_before_accept, c.deny_window),
            };
            self.shared.count_signal(DetectorKind::Mfa);
            self.signal(record, rule)
                .counts(count.into(), threshold.into(), window)
                .emit();
        }
    }
}

impl Handler for MfaFatigue {
    fn handle(&self, record: &EventRecord<'_>) {
        let is_start = std::ptr::eq(record.event, MFA_VERIFY.start());
        if !is_start && !std::ptr::eq(record.event, MFA_VERIFY.stop()) {
            return;
        }
        let mut keys = self.shared.keys(record);
        let Some(user) = keys.user() else { return };
        if is_start {
            if self.is_push(record) {
                self.challenge(record, user, keys.now());
            }
        } else {
            self.answer(record, user, keys.now());
        }
    }
}
