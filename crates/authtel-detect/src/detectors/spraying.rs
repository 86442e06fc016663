//! Password spraying: one address, or one /24 (/48) network, failing logins against many
//! distinct accounts.
//!
//! Each key keeps the set of accounts that failed from it since its window began (the
//! first failure), as 32-bit pieces of the accounts' keyed digests, up to the threshold:
//! exact counting, so the same traffic gives the same signals whatever the hash key. (Two
//! accounts sharing a piece undercount by one: about t²/2³³ for a set of t, 10⁻⁷ at 40.)

use std::sync::Arc;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{Shared, dedupe, ms, outcome, penalty_due};
use crate::config::{Mode, SprayingConfig};
use crate::keys::KeyCache;
use crate::signal::{Action, DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};
use crate::verdict::PenaltyKey;

/// Per address or network: when its window began, how many accounts its set holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SetState {
    /// Window start plus one (0: never used).
    start: u64,
    len: u32,
    last_signal: u64,
    imposed_until: u64,
}

/// The spraying detector. Hears failed `auth.login.stop`s that name an account.
#[derive(Debug)]
pub struct PasswordSpraying {
    shared: Arc<Shared>,
    config: SprayingConfig,
    ip: Table<SetState>,
    prefix: Table<SetState>,
}

impl PasswordSpraying {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: SprayingConfig,
        ip: Table<SetState>,
        prefix: Table<SetState>,
    ) -> PasswordSpraying {
        PasswordSpraying {
            shared,
            config,
            ip,
            prefix,
        }
    }

    pub(crate) fn tables(&self) -> [TableStats; 2] {
        [self.ip.stats(), self.prefix.stats()]
    }

    /// Adds the account to the key's set; the set's size, whether to signal, whether to
    /// (re)impose the block.
    fn count(
        &self,
        table: &Table<SetState>,
        key: u64,
        piece: u32,
        threshold: u32,
        now: u64,
    ) -> (u32, bool, bool) {
        let window = ms(self.config.window);
        let enforce = self.config.mode == Mode::Enforce;
        table.with(key, |s, set, _| {
            if s.start == 0 || now.saturating_sub(s.start - 1) >= window {
                s.start = now + 1;
                s.len = 0;
            }
            let held = &set[..s.len as usize];
            if !held.contains(&piece) && (s.len as usize) < set.len() {
                set[s.len as usize] = piece;
                s.len += 1;
            }
            let over = s.len >= threshold;
            let impose =
                over && enforce && penalty_due(&mut s.imposed_until, now, self.config.block);
            (
                s.len,
                over && dedupe(&mut s.last_signal, now, window),
                impose,
            )
        })
    }

    fn failure(&self, record: &EventRecord<'_>) {
        let c = &self.config;
        let mut keys = KeyCache::new(&self.shared, record);
        let (Some(user), Some(ip)) = (keys.user(), keys.ip()) else {
            return;
        };
        let Some(prefix) = keys.prefix() else { return };
        let now = keys.now();
        // Never zero, so an empty slot (0) is never mistaken for an account.
        let piece = (user >> 32) as u32 | 1;
        let meta = record.metadata;
        let mut raised: [Option<Signal<'_>>; 2] = [None, None];
        for (i, (table, key, kind, threshold, penalty)) in [
            (&self.ip, ip, KeyKind::Ip, c.ip_threshold, PenaltyKey::Ip),
            (
                &self.prefix,
                prefix,
                KeyKind::IpPrefix,
                c.prefix_threshold,
                PenaltyKey::Prefix,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let (count, signal_now, impose) = self.count(table, key, piece, threshold, now);
            if count < threshold {
                continue;
            }
            if impose {
                self.shared
                    .penalties
                    .impose(penalty, key, now, c.block, true);
            }
            if signal_now {
                raised[i] = Some(
                    Signal::new(
                        event_of(DetectorKind::PasswordSpraying, Rule::DistinctIdentifiers),
                        DetectorKind::PasswordSpraying,
                        Rule::DistinctIdentifiers,
                        SignalKey::new(kind).ip(meta.get_client_ip()),
                        c.mode,
                    )
                    .counts(count.into(), threshold.into(), c.window)
                    .action(Action::Block, c.block),
                );
            }
        }
        for s in raised.iter().flatten() {
            self.shared.count_signal(DetectorKind::PasswordSpraying);
            s.emit();
        }
    }
}

impl Handler for PasswordSpraying {
    fn handle(&self, record: &EventRecord<'_>) {
        if std::ptr::eq(record.event, AUTH_LOGIN.stop())
            && outcome(record) == Some(Outcome::Failure)
        {
            self.failure(record);
        }
    }
}
