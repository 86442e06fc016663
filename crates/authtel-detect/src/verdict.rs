//! Verdicts: what the detectors recommend for the next attempt of an address and account.
//!
//! Detectors in enforce mode put keys in a penalty box (an address blocked by the ladder, an
//! account slowed down by its failures); [`Detectors::verdict`](crate::Detectors::verdict)
//! looks the attempt's keys up there. Monitor mode never puts anything there, so its
//! verdicts are always [`Verdict::Allow`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::keys::tagged;
use crate::table::{Table, TableStats};

/// What the application should do with the next attempt.
///
/// ```
/// use authtel_detect::Verdict;
/// use std::time::Duration;
/// let v = Verdict::Block(Duration::from_secs(60));
/// assert!(!v.is_allow());
/// assert_eq!(v.retry_after(), Some(Duration::from_secs(60)));
/// assert_eq!(Verdict::Allow.retry_after(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Let the attempt through only after this long (answer slowly, or refuse with
    /// `Retry-After` until then): Keycloak's temporary wait.
    SlowDown(Duration),
    /// Refuse attempts for this long: a lockout.
    Block(Duration),
}

impl Verdict {
    /// Whether the attempt may go ahead now.
    pub fn is_allow(self) -> bool {
        self == Verdict::Allow
    }

    /// How long until the attempt may go ahead, for a `Retry-After` header.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Verdict::Allow => None,
            Verdict::SlowDown(d) | Verdict::Block(d) => Some(d),
        }
    }

    /// The stronger of two verdicts: a block over a slow-down over allow, the longer wait
    /// between two of a kind.
    #[must_use]
    pub fn max(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Block(a), Block(b)) => Block(a.max(b)),
            (Block(a), _) | (_, Block(a)) => Block(a),
            (SlowDown(a), SlowDown(b)) => SlowDown(a.max(b)),
            (SlowDown(a), Allow) | (Allow, SlowDown(a)) => SlowDown(a),
            (Allow, Allow) => Allow,
        }
    }
}

/// The key kinds a penalty can be on, as tags mixed into the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PenaltyKey {
    Ip = 1,
    Prefix = 2,
    Identifier = 3,
    Pair = 4,
}

/// A penalty: until when, and whether it blocks or slows down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Penalty {
    until_ms: u64,
    block: bool,
}

/// Slots of the penalty hints.
pub(crate) const HINTS: usize = 16_384;

/// The penalty box: keys with a penalty, bounded like every table.
///
/// Beside the table, a fixed array of hints: each key maps to one slot, which holds the
/// latest end of any penalty imposed on a key of that slot. A verdict looks a key up in the
/// table only when its slot's end is still ahead, so during an attack by a few addresses
/// the verdicts of everyone else cost loads, not locks. Hints clear themselves as time
/// passes; a shared slot only sends a verdict to the table needlessly.
#[derive(Debug)]
pub(crate) struct PenaltyBox {
    table: Option<Table<Penalty>>,
    hints: Box<[AtomicU64]>,
    /// The latest end of any penalty ever imposed: before it passes there may be one to find,
    /// after it there is none, and a verdict costs one load.
    horizon: AtomicU64,
    /// The same per key kind ([`PenaltyKey`] order): a verdict hashes and looks up only the
    /// kinds that may have a penalty running (during a brute-force attack, no network).
    kinds: [AtomicU64; 4],
}

impl PenaltyBox {
    pub(crate) fn new(table: Option<Table<Penalty>>) -> PenaltyBox {
        let hints = if table.is_some() { HINTS } else { 0 };
        PenaltyBox {
            table,
            hints: (0..hints).map(|_| AtomicU64::new(0)).collect(),
            horizon: AtomicU64::new(0),
            kinds: Default::default(),
        }
    }

    /// Penalises `fp` (a digest of kind `key`) until `now + for_`, unless it already has a
    /// longer one of the same strength; a block replaces a slow-down.
    pub(crate) fn impose(&self, key: PenaltyKey, fp: u64, now: u64, for_: Duration, block: bool) {
        let Some(table) = &self.table else { return };
        let until = now.saturating_add(for_.as_millis() as u64);
        let fp = tagged(fp, key as u8);
        self.hint(fp).fetch_max(until, Ordering::Relaxed);
        table.with(fp, |p, _, _| {
            let active = p.until_ms > now;
            if !active || (block && !p.block) {
                *p = Penalty {
                    until_ms: until,
                    block,
                };
            } else if block == p.block {
                p.until_ms = p.until_ms.max(until);
            }
        });
        self.kinds[key as usize - 1].fetch_max(until, Ordering::Relaxed);
        self.horizon.fetch_max(until, Ordering::Relaxed);
    }

    fn hint(&self, tagged: u64) -> &AtomicU64 {
        &self.hints[(tagged >> 32) as usize % HINTS]
    }

    /// Clears the penalty of `fp` (a success of an account ends its slow-down).
    pub(crate) fn lift(&self, key: PenaltyKey, fp: u64, now: u64) {
        if self.horizon.load(Ordering::Relaxed) <= now {
            return;
        }
        if let Some(table) = &self.table {
            table.with_existing(tagged(fp, key as u8), |p| *p = Penalty::default());
        }
    }

    /// Whether any penalty was ever imposed (one load, no clock read).
    #[inline]
    pub(crate) fn ever_imposed(&self) -> bool {
        self.horizon.load(Ordering::Relaxed) != 0
    }

    /// Whether a penalty on a key of kind `key` may still be running at `now` (one load).
    #[inline]
    pub(crate) fn may_run_on(&self, key: PenaltyKey, now: u64) -> bool {
        self.kinds[key as usize - 1].load(Ordering::Relaxed) > now
    }

    /// The strongest penalty among `keys` still running at `now`.
    #[cfg(test)]
    pub(crate) fn check(&self, now: u64, keys: &[(PenaltyKey, Option<u64>)]) -> Verdict {
        self.check_since(now, || now, keys)
    }

    /// The strongest penalty among `keys` still running now, where `seen` is a time no later
    /// than now and `clock` reads now. A key whose hint slot ended by `seen` is skipped
    /// without reading the clock; the clock is read once, for the first key that may have a
    /// penalty running.
    #[inline]
    pub(crate) fn check_since(
        &self,
        seen: u64,
        mut clock: impl FnMut() -> u64,
        keys: &[(PenaltyKey, Option<u64>)],
    ) -> Verdict {
        if self.horizon.load(Ordering::Relaxed) <= seen {
            return Verdict::Allow;
        }
        let Some(table) = &self.table else {
            return Verdict::Allow;
        };
        let mut now = None;
        let mut verdict = Verdict::Allow;
        for &(key, fp) in keys {
            let Some(fp) = fp else { continue };
            let fp = tagged(fp, key as u8);
            let hint = self.hint(fp).load(Ordering::Relaxed);
            if hint <= seen {
                continue;
            }
            let now = *now.get_or_insert_with(&mut clock);
            if hint <= now {
                continue;
            }
            if let Some(p) = table.get(fp)
                && p.until_ms > now
            {
                let left = Duration::from_millis(p.until_ms - now);
                verdict = verdict.max(if p.block {
                    Verdict::Block(left)
                } else {
                    Verdict::SlowDown(left)
                });
            }
        }
        verdict
    }

    pub(crate) fn stats(&self) -> Option<TableStats> {
        self.table.as_ref().map(Table::stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed() -> PenaltyBox {
        PenaltyBox::new(Table::new("penalties", 1 << 16, 0))
    }

    #[test]
    fn the_strongest_running_penalty_wins() {
        let b = boxed();
        let s = Duration::from_secs;
        b.impose(PenaltyKey::Identifier, 7, 0, s(60), false);
        b.impose(PenaltyKey::Ip, 9, 0, s(10), true);
        let keys = [
            (PenaltyKey::Ip, Some(9)),
            (PenaltyKey::Identifier, Some(7)),
            (PenaltyKey::Pair, None),
        ];
        assert_eq!(b.check(0, &keys), Verdict::Block(s(10)));
        assert_eq!(b.check(10_000, &keys), Verdict::SlowDown(s(50)));
        assert_eq!(b.check(60_000, &keys), Verdict::Allow);
        // The same digest under another kind is another key.
        assert_eq!(b.check(0, &[(PenaltyKey::Prefix, Some(9))]), Verdict::Allow);
    }

    #[test]
    fn a_block_replaces_a_slow_down_and_lift_clears() {
        let b = boxed();
        let s = Duration::from_secs;
        b.impose(PenaltyKey::Identifier, 1, 0, s(600), false);
        b.impose(PenaltyKey::Identifier, 1, 0, s(5), true);
        let keys = [(PenaltyKey::Identifier, Some(1))];
        assert_eq!(b.check(0, &keys), Verdict::Block(s(5)));
        b.lift(PenaltyKey::Identifier, 1, 0);
        assert_eq!(b.check(0, &keys), Verdict::Allow);
    }

    #[test]
    fn verdicts_order() {
        let s = Duration::from_secs;
        assert_eq!(
            Verdict::Allow.max(Verdict::SlowDown(s(1))),
            Verdict::SlowDown(s(1))
        );
        assert_eq!(
            Verdict::Block(s(1)).max(Verdict::SlowDown(s(9))),
            Verdict::Block(s(1))
        );
        assert_eq!(
            Verdict::Block(s(1)).max(Verdict::Block(s(9))),
            Verdict::Block(s(9))
        );
    }
}
