//! Password spraying: one address, or one /24 (/48) network, failing logins against many
//! distinct accounts.
//!
//! Each key keeps the set of accounts that failed from it since its window began (the
//! first failure), as 32-bit pieces of the accounts' keyed digests, up to the threshold:
//! exact counting, so the same traffic gives the same signals whatever the hash key. (Two
//! accounts sharing a piece undercount by one: about t²/2³³ for a set of t, 10⁻⁷ at 40.)
//! The first [`INLINE`] pieces live in the key's entry, the rest in its table's arena: most
//! addresses fail against one or two accounts, and their logins then read no arena memory.

use std::sync::Arc;

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{AddressState, LoginDetector, Shared, dedupe, handle_alone, ms, penalty_due};
use crate::config::{Mode, SprayingConfig};
use crate::keys::{RecordKeys, piece};
use crate::signal::{Action, DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};
use crate::verdict::PenaltyKey;

/// Pieces of a set held in the entry itself; the arena holds the rest (threshold − 2).
pub(crate) const INLINE: usize = 2;

/// Per address (in its [`AddressState`], beside brute force's count) or network: when its
/// window began, how many accounts its set holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SetState {
    /// Window start plus one (0: never used).
    start: u64,
    len: u32,
    /// The set's first pieces.
    first: [u32; INLINE],
    last_signal: u64,
    imposed_until: u64,
}

/// What adding an account to a set did: the set's size, whether to signal, whether to
/// (re)impose the block.
pub(crate) type SetStep = (u32, bool, bool);

/// The spraying detector. Hears failed `auth.login.stop`s that name an account.
#[derive(Debug)]
pub struct PasswordSpraying {
    shared: Arc<Shared>,
    config: SprayingConfig,
    /// The window and the block in milliseconds, converted once.
    window_ms: u64,
    block_ms: u64,
    ip: Arc<Table<AddressState>>,
    prefix: Table<SetState>,
}

impl PasswordSpraying {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: SprayingConfig,
        ip: Arc<Table<AddressState>>,
        prefix: Table<SetState>,
    ) -> PasswordSpraying {
        PasswordSpraying {
            shared,
            window_ms: ms(config.window),
            block_ms: ms(config.block),
            config,
            ip,
            prefix,
        }
    }

    /// Its own table (the address table, shared with brute force, is reported once by
    /// [`Detectors::stats`](crate::Detectors::stats)).
    pub(crate) fn tables(&self) -> [TableStats; 1] {
        [self.prefix.stats()]
    }

    /// Starts loading the index slot a failure of this record probes in the network table,
    /// see [`Table::prefetch`]: only when the failure names an account, as
    /// [`failure`](Self::failure) looks the network up only then (an unknown-account failure
    /// pays no network digest).
    #[inline]
    pub(crate) fn prefetch(&self, keys: &mut RecordKeys<'_, '_>) {
        if keys.user().is_some()
            && let Some(prefix) = keys.prefix()
        {
            self.prefix.prefetch(prefix);
        }
    }

    /// Adds the account to an address's set (under the address table's lock).
    pub(crate) fn ip_step(
        &self,
        s: &mut SetState,
        rest: &mut [u32],
        piece: u32,
        now: u64,
    ) -> SetStep {
        self.add(s, rest, piece, self.config.ip_threshold, now)
    }

    /// Adds the account to the set `s` (its first pieces) and `rest` (the others); the
    /// set's size, whether to signal, whether to (re)impose the block.
    fn add(
        &self,
        s: &mut SetState,
        rest: &mut [u32],
        piece: u32,
        threshold: u32,
        now: u64,
    ) -> SetStep {
        let window = self.window_ms;
        let enforce = self.config.mode == Mode::Enforce;
        if s.start == 0 || now.saturating_sub(s.start - 1) >= window {
            s.start = now + 1;
            s.len = 0;
        }
        let len = s.len as usize;
        let held = s.first[..len.min(INLINE)].contains(&piece)
            || (len > INLINE && rest[..len - INLINE].contains(&piece));
        // The arena has threshold − INLINE places, so the set holds `threshold` pieces.
        if !held && len < threshold as usize {
            match s.first.get_mut(len) {
                Some(place) => *place = piece,
                None => rest[len - INLINE] = piece,
            }
            s.len += 1;
        }
        let over = s.len >= threshold;
        let impose = over && enforce && penalty_due(&mut s.imposed_until, now, self.block_ms);
        (
            s.len,
            over && dedupe(&mut s.last_signal, now, window),
            impose,
        )
    }

    /// A failed login. `ip_step` is the address's step when the caller took it already
    /// (the login handler, with brute force's, in one lookup of the address).
    pub(crate) fn failure(
        &self,
        record: &EventRecord<'_>,
        keys: &mut RecordKeys<'_, '_>,
        ip_step: Option<SetStep>,
    ) {
        let c = &self.config;
        let (Some(user), Some(ip)) = (keys.user(), keys.ip()) else {
            return;
        };
        let Some(prefix) = keys.prefix() else { return };
        let now = keys.now();
        let piece = piece(user);
        let meta = record.metadata;
        let mut raised: [Option<Signal<'_>>; 2] = [None, None];
        for (i, (key, kind, threshold, penalty)) in [
            (ip, KeyKind::Ip, c.ip_threshold, PenaltyKey::Ip),
            (
                prefix,
                KeyKind::IpPrefix,
                c.prefix_threshold,
                PenaltyKey::Prefix,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let (count, signal_now, impose) = if i == 0 {
                ip_step.unwrap_or_else(|| {
                    self.ip.with(key, |a, rest, _| {
                        self.ip_step(&mut a.spraying, rest, piece, now)
                    })
                })
            } else {
                self.prefix
                    .with(key, |s, rest, _| self.add(s, rest, piece, threshold, now))
            };
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

impl LoginDetector for PasswordSpraying {
    fn hears(&self, outcome: Outcome) -> bool {
        outcome == Outcome::Failure
    }

    fn login(&self, record: &EventRecord<'_>, _: Outcome, keys: &mut RecordKeys<'_, '_>) {
        self.failure(record, keys, None);
    }
}

impl Handler for PasswordSpraying {
    fn handle(&self, record: &EventRecord<'_>) {
        handle_alone(self, &self.shared, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::verdict::PenaltyBox;

    #[test]
    fn sets_count_distinct_accounts_exactly_across_entry_and_arena() {
        let shared = Arc::new(Shared::new(
            Arc::new(ManualClock::new()),
            PenaltyBox::new(None),
            None,
        ));
        let threshold = 5;
        let config = SprayingConfig {
            mode: Mode::Monitor,
            ip_threshold: threshold,
            ..SprayingConfig::default()
        };
        let stride = threshold as usize - INLINE;
        let d = PasswordSpraying::new(
            shared,
            config,
            Arc::new(Table::new("a", 1 << 16, stride).unwrap()),
            Table::new("t", 1 << 16, stride).unwrap(),
        );
        let mut counts = Vec::new();
        // Accounts 1, 2 (held in the entry), 3, 4, 5 (the arena), each twice, then a sixth.
        for piece in [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6] {
            let (count, signal, impose) =
                d.ip.with(9, |a, rest, _| d.ip_step(&mut a.spraying, rest, piece, 0));
            assert!(!impose, "monitor mode imposes nothing");
            counts.push((count, signal));
        }
        let just_counts: Vec<u32> = counts.iter().map(|c| c.0).collect();
        assert_eq!(just_counts, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5]);
        // One signal, when the fifth distinct account failed.
        assert_eq!(counts.iter().filter(|c| c.1).count(), 1);
        assert!(counts[8].1);
    }
}
