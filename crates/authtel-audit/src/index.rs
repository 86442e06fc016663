//! Secondary indexes: for each key (an actor id, a resource, an action), the sequence
//! numbers of its stored records, oldest first; and bounded per-name counters.
//!
//! Records leave the store only from the oldest end, so a leaving record's sequence number
//! is always at the front of its key's queue: removal is O(1) and exact, and a key whose
//! queue empties is dropped, so the index never outgrows the store.
//!
//! Keys are hashed (SipHash with a per-store random key, so crafted ids cannot force
//! collisions) by the inserting thread *before* it takes the store's lock, and a record
//! keeps its hashes for its eviction: under the lock only table probes and string
//! comparisons remain. That is why these tables are `hashbrown::HashTable`s, which take a
//! precomputed hash, rather than `std::collections::HashMap`s.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Hashes index keys; one per store.
#[derive(Debug, Default)]
pub(crate) struct KeyHasher(RandomState);

impl KeyHasher {
    pub(crate) fn hash(&self, key: &str) -> u64 {
        self.0.hash_one(key)
    }
}

#[derive(Debug)]
struct Slot {
    hash: u64,
    key: Box<str>,
    seqs: VecDeque<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    table: HashTable<Slot>,
}

impl KeyIndex {
    pub(crate) fn push(&mut self, key: &str, hash: u64, seq: u64) {
        match self.table.find_mut(hash, |s| &*s.key == key) {
            Some(slot) => slot.seqs.push_back(seq),
            None => {
                self.table.insert_unique(
                    hash,
                    Slot {
                        hash,
                        key: key.into(),
                        seqs: VecDeque::from([seq]),
                    },
                    |s| s.hash,
                );
            }
        }
    }

    /// Forgets `seq`, the oldest entry of the key hashing to `hash`. The slot is found by
    /// its front sequence number, unique to it, so the (by now cold) key string of an old
    /// record is never compared.
    pub(crate) fn remove_oldest(&mut self, hash: u64, seq: u64) {
        if let Ok(mut entry) = self
            .table
            .find_entry(hash, |s| s.seqs.front() == Some(&seq))
        {
            let seqs = &mut entry.get_mut().seqs;
            seqs.pop_front();
            if seqs.is_empty() {
                entry.remove();
            }
        }
    }

    /// The newest `limit` sequence numbers under `key`, newest first.
    pub(crate) fn newest(
        &self,
        key: &str,
        hash: u64,
        limit: usize,
    ) -> impl Iterator<Item = u64> + '_ {
        self.table
            .find(hash, |s| &*s.key == key)
            .into_iter()
            .flat_map(|s| s.seqs.iter().rev().copied())
            .take(limit)
    }

    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }

    /// How many distinct keys have stored records.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// A sequence-number queue per outcome: a fixed, closed set of keys.
#[derive(Debug, Default)]
pub(crate) struct OutcomeIndex {
    seqs: [VecDeque<u64>; 4],
}

impl OutcomeIndex {
    pub(crate) fn push(&mut self, slot: usize, seq: u64) {
        self.seqs[slot].push_back(seq);
    }

    pub(crate) fn remove_oldest(&mut self, slot: usize, seq: u64) {
        if self.seqs[slot].front() == Some(&seq) {
            self.seqs[slot].pop_front();
        }
    }

    pub(crate) fn newest(&self, slot: usize, limit: usize) -> impl Iterator<Item = u64> + '_ {
        self.seqs[slot].iter().rev().copied().take(limit)
    }

    pub(crate) fn clear(&mut self) {
        self.seqs.iter_mut().for_each(VecDeque::clear);
    }
}

/// Counts per name, for at most `cap` distinct names; the rest are summed as "other".
#[derive(Debug)]
pub(crate) struct NameCounts {
    table: HashTable<(u64, Box<str>, u64)>,
    cap: usize,
    other: u64,
}

impl NameCounts {
    pub(crate) fn new(cap: usize) -> NameCounts {
        NameCounts {
            table: HashTable::new(),
            cap,
            other: 0,
        }
    }

    pub(crate) fn add(&mut self, name: &str, hash: u64) {
        if let Some(entry) = self.table.find_mut(hash, |e| &*e.1 == name) {
            entry.2 += 1;
        } else if self.table.len() < self.cap {
            self.table
                .insert_unique(hash, (hash, name.into(), 1), |e| e.0);
        } else {
            self.other += 1;
        }
    }

    /// Every counted name (the overflow under `other_name`), unordered.
    pub(crate) fn iter<'a>(
        &'a self,
        other_name: &'a str,
    ) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.table
            .iter()
            .map(|e| (&*e.1, e.2))
            .chain((self.other > 0).then_some((other_name, self.other)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dropped_when_their_last_record_leaves() {
        let h = KeyHasher::default();
        let (h1, h2) = (h.hash("u1"), h.hash("u2"));
        let mut index = KeyIndex::default();
        index.push("u1", h1, 0);
        index.push("u2", h2, 1);
        index.push("u1", h1, 2);
        assert_eq!(index.newest("u1", h1, 10).collect::<Vec<_>>(), [2, 0]);
        index.remove_oldest(h1, 0);
        index.remove_oldest(h2, 1);
        assert_eq!(index.len(), 1);
        assert_eq!(index.newest("u1", h1, 10).collect::<Vec<_>>(), [2]);
        assert_eq!(index.newest("u2", h2, 10).count(), 0);
    }

    #[test]
    fn name_counts_are_bounded() {
        let h = KeyHasher::default();
        let mut counts = NameCounts::new(2);
        for name in ["a", "b", "a", "c", "d"] {
            counts.add(name, h.hash(name));
        }
        let mut all: Vec<(&str, u64)> = counts.iter("other").collect();
        all.sort_unstable();
        assert_eq!(all, [("a", 2), ("b", 1), ("other", 2)]);
    }
}
