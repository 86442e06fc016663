//! Refresh-token reuse: a refresh on a session the detector saw revoked (a logout, a
//! session deletion), or a refresh the application itself refused as reused or revoked.
//!
//! Sessions are keyed by `session_id` (the session's or token family's opaque id, never
//! the token). Revoked sessions are remembered for `remember`, within the table's bound.

use std::sync::Arc;

use authtel_core::catalogue::{AUTH_LOGOUT, JWT_REFRESH, SESSION_DELETE};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{Shared, dedupe, ms, outcome};
use crate::config::RefreshReuseConfig;
use crate::reasons;
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};

/// Per session: when it was revoked, how often it was presented since.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Revoked {
    /// Revocation time plus one (0: not revoked, only reported).
    revoked_at: u64,
    presented: u32,
    last_signal: u64,
}

/// The refresh-reuse detector. Hears `session.delete.stop` and `auth.logout.stop`
/// (successful ones revoke their `session_id`) and `jwt.refresh.stop`.
#[derive(Debug)]
pub struct RefreshReuse {
    shared: Arc<Shared>,
    config: RefreshReuseConfig,
    sessions: Table<Revoked>,
}

impl RefreshReuse {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: RefreshReuseConfig,
        sessions: Table<Revoked>,
    ) -> RefreshReuse {
        RefreshReuse {
            shared,
            config,
            sessions,
        }
    }

    pub(crate) fn tables(&self) -> [TableStats; 1] {
        [self.sessions.stats()]
    }

    fn refresh(&self, record: &EventRecord<'_>, session: &str) {
        let c = &self.config;
        let fp = self.shared.hasher.session(session);
        let now = self.shared.now();
        let window = ms(c.window);
        let remember = ms(c.remember);
        let reported = matches!(outcome(record), Some(Outcome::Failure | Outcome::Denied))
            && record
                .metadata
                .get_reason()
                .is_some_and(|r| reasons::REFRESH_REUSE.contains(&r));
        let check = |s: &mut Revoked| {
            let revoked = s.revoked_at != 0 && now.saturating_sub(s.revoked_at - 1) <= remember;
            if !(revoked || reported) {
                return None;
            }
            s.presented = s.presented.saturating_add(1);
            let rule = if revoked {
                Rule::RevokedSession
            } else {
                Rule::ReportedReuse
            };
            dedupe(&mut s.last_signal, now, window).then_some((rule, s.presented))
        };
        let fired = if reported {
            self.sessions.with(fp, |s, _, _| check(s))
        } else {
            self.sessions.with_existing(fp, check).flatten()
        };
        if let Some((rule, presented)) = fired {
            self.shared.count_signal(DetectorKind::RefreshReuse);
            Signal::new(
                event_of(DetectorKind::RefreshReuse, rule),
                DetectorKind::RefreshReuse,
                rule,
                SignalKey::new(KeyKind::Session)
                    .session(Some(session))
                    .user(record.metadata.get_user_id())
                    .ip(record.metadata.get_client_ip()),
                c.mode,
            )
            .counts(presented.into(), 1, c.window)
            .emit();
        }
    }
}

impl Handler for RefreshReuse {
    fn handle(&self, record: &EventRecord<'_>) {
        let Some(session) = record.metadata.get_session_id() else {
            return;
        };
        if std::ptr::eq(record.event, JWT_REFRESH.stop()) {
            self.refresh(record, session);
        } else if (std::ptr::eq(record.event, SESSION_DELETE.stop())
            || std::ptr::eq(record.event, AUTH_LOGOUT.stop()))
            && outcome(record) == Some(Outcome::Success)
        {
            let now = self.shared.now();
            let fp = self.shared.hasher.session(session);
            self.sessions.with(fp, |s, _, _| {
                if s.revoked_at == 0 {
                    s.revoked_at = now + 1;
                }
            });
        }
    }
}
