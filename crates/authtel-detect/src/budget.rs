//! How the memory bound is shared among the detectors' tables.
//!
//! Each table gets a fixed share (its weight over the weights of the enabled tables) of
//! what is left after the fixed-size state (credential stuffing's counters). A table never
//! allocates more than its share, so the sum never passes the bound.

use crate::config::{DetectConfig, Mode};
use crate::detectors::{
    AddressState, brute_force, mfa, new_location, refresh, spraying, stuffing, travel,
};
use crate::table::Table;
use crate::verdict::Penalty;

/// Every table, with its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableId {
    /// Per address: brute force's count and spraying's set together.
    Address,
    /// Per account: brute force's count and its pairs with addresses together.
    BruteForceIdentifier,
    SprayingPrefix,
    Mfa,
    NewLocation,
    Travel,
    RefreshReuse,
    Penalties,
}

const ALL: [TableId; 8] = [
    TableId::Address,
    TableId::BruteForceIdentifier,
    TableId::SprayingPrefix,
    TableId::Mfa,
    TableId::NewLocation,
    TableId::Travel,
    TableId::RefreshReuse,
    TableId::Penalties,
];

impl TableId {
    fn weight(self, c: &DetectConfig) -> usize {
        match self {
            // Brute force's 12 and spraying's 10 when both are on.
            TableId::Address => {
                let on = |m: Mode| usize::from(m != Mode::Off);
                on(c.brute_force.mode) * 12 + on(c.spraying.mode) * 10
            }
            // The account's 10 and its pairs' 12 (once a table of their own).
            TableId::BruteForceIdentifier => 22,
            TableId::SprayingPrefix => 6,
            TableId::Mfa => 8,
            TableId::NewLocation => 14,
            TableId::Travel => 8,
            TableId::RefreshReuse => 6,
            TableId::Penalties => 14,
        }
    }

    fn enabled(self, c: &DetectConfig) -> bool {
        let on = |m: Mode| m != Mode::Off;
        match self {
            TableId::Address => on(c.brute_force.mode) || on(c.spraying.mode),
            TableId::BruteForceIdentifier => on(c.brute_force.mode),
            TableId::SprayingPrefix => on(c.spraying.mode),
            TableId::Mfa => on(c.mfa.mode),
            TableId::NewLocation => on(c.new_location.mode),
            TableId::Travel => on(c.travel.mode),
            TableId::RefreshReuse => on(c.refresh_reuse.mode),
            TableId::Penalties => on(c.brute_force.mode) || on(c.spraying.mode),
        }
    }

    /// The `u32`s each entry carries beside its value.
    pub(crate) fn stride(self, c: &DetectConfig) -> usize {
        match self {
            // Spraying's set beyond its inline pieces, when spraying is on.
            TableId::Address if c.spraying.mode != Mode::Off => {
                (c.spraying.ip_threshold as usize).saturating_sub(spraying::INLINE)
            }
            TableId::SprayingPrefix => {
                (c.spraying.prefix_threshold as usize).saturating_sub(spraying::INLINE)
            }
            _ => 0,
        }
    }

    fn min_budget(self, c: &DetectConfig) -> usize {
        let stride = self.stride(c);
        match self {
            TableId::Address => Table::<AddressState>::min_budget(stride),
            TableId::BruteForceIdentifier => {
                Table::<brute_force::IdentifierState>::min_budget(stride)
            }
            TableId::SprayingPrefix => Table::<spraying::SetState>::min_budget(stride),
            TableId::Mfa => Table::<mfa::MfaState>::min_budget(stride),
            TableId::NewLocation => Table::<new_location::History>::min_budget(stride),
            TableId::Travel => Table::<travel::LastLogin>::min_budget(stride),
            TableId::RefreshReuse => Table::<refresh::Revoked>::min_budget(stride),
            TableId::Penalties => Table::<Penalty>::min_budget(stride),
        }
    }
}

fn total_weight(c: &DetectConfig) -> usize {
    ALL.iter()
        .filter(|t| t.enabled(c))
        .map(|t| t.weight(c))
        .sum::<usize>()
        .max(1)
}

/// Bytes of state that do not grow: credential stuffing's window counters, the penalty
/// box's hints.
pub(crate) fn fixed_bytes(c: &DetectConfig) -> usize {
    let stuffing = if c.stuffing.mode == Mode::Off {
        0
    } else {
        stuffing::FIXED_BYTES
    };
    let hints = if TableId::Penalties.enabled(c) {
        crate::verdict::HINTS * std::mem::size_of::<u64>()
    } else {
        0
    };
    stuffing + hints
}

/// The share of `table`, in bytes.
pub(crate) fn share(c: &DetectConfig, table: TableId) -> usize {
    let tables = c.memory_bytes.saturating_sub(fixed_bytes(c));
    tables / total_weight(c) * table.weight(c)
}

/// The smallest bound that gives every enabled table its minimal size.
pub(crate) fn min_bytes(c: &DetectConfig) -> usize {
    let total = total_weight(c);
    let tables = ALL
        .iter()
        .filter(|t| t.enabled(c))
        .map(|t| t.min_budget(c).div_ceil(t.weight(c)) * total + total)
        .max()
        .unwrap_or(0);
    tables + fixed_bytes(c)
}
