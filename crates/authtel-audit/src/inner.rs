//! The state behind a store's lock: the records oldest to newest, the indexes, the totals,
//! and the eviction rules.
//!
//! Records are kept in one queue, each with a sequence number one above its predecessor
//! (starting at 1), so a sequence number finds its record by subtraction. Records leave
//! only from the oldest end — when `max_entries` or `max_bytes` would be exceeded, or when
//! they fall out of the retention window — and every departure is counted by reason.
//!
//! Everything an insert can compute without the lock (the size estimate, the key hashes,
//! the `Arc`) is computed before it: under the lock an insert pushes one entry, probes one
//! table per keyed index and bumps counters, and an eviction pops one entry and decrements
//! a count per index, touching neither the old record nor its keys.

use std::collections::VecDeque;
use std::sync::Arc;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::outcome::Outcome;

use crate::index::{KeyIndex, NO_SEQ, NO_SLOT, NameCounts, OutcomeIndex};
use crate::settings::{Evictions, StoreSettings};

/// Distinct operation and action names counted in the statistics; further names are
/// counted under [`OTHER`](crate::OTHER), so an application cannot grow the statistics
/// without bound.
const MAX_DISTINCT_TOTALS: usize = 256;

/// A record's key hashes, computed by the inserting thread before it takes the lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHashes {
    pub(crate) actor: Option<u64>,
    pub(crate) resource: Option<u64>,
    pub(crate) action: u64,
    pub(crate) operation: Option<u64>,
}

/// Positions of the link arrays: actor, resource, action (keyed), then outcome.
const ACTOR: usize = 0;
const RESOURCE: usize = 1;
const ACTION: usize = 2;
const OUTCOME: usize = 3;

/// One stored record, its estimated size, and its place in each index: the slot of its
/// actor, resource and action ([`NO_SLOT`] for a missing key) and the sequence number of
/// the previous record with the same actor, resource, action and outcome.
#[derive(Debug)]
pub(crate) struct Entry {
    event: Arc<AuditEvent>,
    bytes: usize,
    prev: [u64; 4],
    slots: [u32; 3],
}

/// What a query walks: one of the link chains, from its newest record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Chain {
    Actor,
    Resource,
    Action,
    Outcome,
}

impl Chain {
    fn link(self) -> usize {
        match self {
            Chain::Actor => ACTOR,
            Chain::Resource => RESOURCE,
            Chain::Action => ACTION,
            Chain::Outcome => OUTCOME,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Totals {
    pub(crate) stored: u64,
    pub(crate) by_outcome: [u64; 4],
    pub(crate) by_operation: NameCounts,
    pub(crate) by_action: NameCounts,
}

pub(crate) fn outcome_slot(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Denied => 2,
        Outcome::Error => 3,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    MaxEntries,
    MaxBytes,
    Retention,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) settings: StoreSettings,
    records: VecDeque<Entry>,
    /// Sequence number of `records[0]`; at least 1.
    first_seq: u64,
    pub(crate) bytes: usize,
    pub(crate) by_actor: KeyIndex,
    pub(crate) by_resource: KeyIndex,
    pub(crate) by_action: KeyIndex,
    by_outcome: OutcomeIndex,
    pub(crate) totals: Totals,
    pub(crate) evictions: Evictions,
    pub(crate) inserts_since_cleanup: u32,
    /// Records older than this are expired; refreshed at each cleanup.
    pub(crate) cutoff: Option<Timestamp>,
}

impl Inner {
    pub(crate) fn new(settings: StoreSettings) -> Inner {
        Inner {
            settings,
            records: VecDeque::new(),
            first_seq: 1,
            bytes: 0,
            by_actor: KeyIndex::default(),
            by_resource: KeyIndex::default(),
            by_action: KeyIndex::default(),
            by_outcome: OutcomeIndex::default(),
            totals: Totals {
                stored: 0,
                by_outcome: [0; 4],
                by_operation: NameCounts::new(MAX_DISTINCT_TOTALS),
                by_action: NameCounts::new(MAX_DISTINCT_TOTALS),
            },
            evictions: Evictions::default(),
            inserts_since_cleanup: 0,
            cutoff: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn oldest(&self) -> Option<Timestamp> {
        self.records.front().map(|e| e.event.occurred_at())
    }

    /// Held records, newest first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &Arc<AuditEvent>> {
        self.records.iter().rev().map(|e| &e.event)
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let offset = seq.checked_sub(self.first_seq)?;
        self.records.get(usize::try_from(offset).ok()?)
    }

    /// Up to `limit` records down `chain` from `newest`, newest first. The walk ends at
    /// the first link below `first_seq` (evicted, cleared, or [`NO_SEQ`]).
    pub(crate) fn walk(&self, chain: Chain, newest: u64, limit: usize) -> Vec<Arc<AuditEvent>> {
        let link = chain.link();
        let mut found = Vec::with_capacity(limit.min(self.records.len()).min(1024));
        let mut seq = newest;
        while found.len() < limit {
            let Some(entry) = self.entry(seq) else {
                break;
            };
            found.push(entry.event.clone());
            seq = entry.prev[link];
        }
        found
    }

    /// The newest record with `outcome` (where its chain starts).
    pub(crate) fn newest_with_outcome(&self, outcome: Outcome) -> u64 {
        self.by_outcome.newest(outcome_slot(outcome))
    }

    pub(crate) fn push(&mut self, event: Arc<AuditEvent>, bytes: usize, h: KeyHashes) {
        let seq = self.first_seq + self.records.len() as u64;
        let mut prev = [NO_SEQ; 4];
        let mut slots = [NO_SLOT; 3];
        if let (Some(actor), Some(hash)) = (event.actor(), h.actor) {
            (slots[ACTOR], prev[ACTOR]) = self.by_actor.push(&actor.id, hash, seq);
        }
        if let (Some(resource), Some(hash)) = (event.resource(), h.resource) {
            (slots[RESOURCE], prev[RESOURCE]) = self.by_resource.push(resource, hash, seq);
        }
        (slots[ACTION], prev[ACTION]) = self.by_action.push(event.action(), h.action, seq);
        let outcome = outcome_slot(event.outcome());
        prev[OUTCOME] = self.by_outcome.push(outcome, seq);
        let totals = &mut self.totals;
        totals.stored += 1;
        totals.by_outcome[outcome] += 1;
        totals.by_action.add(event.action(), h.action);
        if let (Some(op), Some(hash)) = (event.operation(), h.operation) {
            totals.by_operation.add(op, hash);
        }
        self.bytes += bytes;
        self.records.push_back(Entry {
            event,
            bytes,
            prev,
            slots,
        });
    }

    /// Removes the oldest record and returns it, so the caller can drop it after unlocking.
    fn evict_oldest(&mut self, why: Why) -> Option<Arc<AuditEvent>> {
        let entry = self.records.pop_front()?;
        self.first_seq += 1;
        self.bytes -= entry.bytes;
        self.by_actor.remove_oldest(entry.slots[ACTOR]);
        self.by_resource.remove_oldest(entry.slots[RESOURCE]);
        self.by_action.remove_oldest(entry.slots[ACTION]);
        match why {
            Why::MaxEntries => self.evictions.max_entries += 1,
            Why::MaxBytes => self.evictions.max_bytes += 1,
            Why::Retention => self.evictions.retention += 1,
        }
        Some(entry.event)
    }

    /// Evicts until `extra_entries` more records of `extra_bytes` fit.
    pub(crate) fn make_room(
        &mut self,
        extra_entries: usize,
        extra_bytes: usize,
        evicted: &mut Evicted,
    ) {
        while self.records.len() + extra_entries > self.settings.max_entries {
            let Some(e) = self.evict_oldest(Why::MaxEntries) else {
                break;
            };
            evicted.keep(e);
        }
        while self.bytes + extra_bytes > self.settings.max_bytes {
            let Some(e) = self.evict_oldest(Why::MaxBytes) else {
                break;
            };
            evicted.keep(e);
        }
    }

    pub(crate) fn cleanup(&mut self, now: Timestamp, evicted: &mut Evicted) -> usize {
        let retention = i64::try_from(self.settings.retention.as_micros()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_unix_micros(now.unix_micros().saturating_sub(retention));
        self.cutoff = Some(cutoff);
        self.inserts_since_cleanup = 0;
        let mut removed = 0;
        while self
            .records
            .front()
            .is_some_and(|e| e.event.occurred_at() < cutoff)
        {
            if let Some(e) = self.evict_oldest(Why::Retention) {
                evicted.keep(e);
            }
            removed += 1;
        }
        removed
    }

    /// Removes every record (counted as `cleared`); returns them, to drop after unlocking.
    pub(crate) fn clear(&mut self) -> VecDeque<Entry> {
        self.evictions.cleared += self.records.len() as u64;
        self.first_seq += self.records.len() as u64;
        self.bytes = 0;
        self.by_actor.clear();
        self.by_resource.clear();
        self.by_action.clear();
        self.by_outcome.clear();
        std::mem::take(&mut self.records)
    }
}

/// Records evicted under the lock, freed after it is released: dropping a record frees
/// several strings, work the other writer should not wait for. Usually one record, so the
/// first needs no allocation.
#[derive(Default)]
pub(crate) struct Evicted {
    first: Option<Arc<AuditEvent>>,
    more: Vec<Arc<AuditEvent>>,
}

impl Evicted {
    pub(crate) fn keep(&mut self, event: Arc<AuditEvent>) {
        if self.first.is_none() {
            self.first = Some(event);
        } else {
            self.more.push(event);
        }
    }
}
