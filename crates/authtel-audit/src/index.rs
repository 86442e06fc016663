//! Secondary indexes: for each key (an actor id, a resource, an action, an outcome), its
//! newest stored record and how many it has; and bounded per-name counters.
//!
//! Each stored record links to the previous record with the same key, so a key's records,
//! newest first, are a walk down the links that stops at the first evicted one. Records
//! leave the store only from the oldest end, so an eviction needs no unlinking: it only
//! decrements its key's count, and a key whose count reaches zero is dropped, so the index
//! never outgrows the store.
//!
//! Keys are hashed ([`KeyHasher`]: randomly keyed per store, SipHash for actor ids and
//! resources so crafted ones cannot force collisions) by the inserting thread *before* it takes the store's lock: under the lock an
//! insert does one table probe and one key comparison per index, and an eviction none. That
//! is why these tables are `hashbrown::HashTable`s, which take a precomputed hash, rather
//! than `std::collections::HashMap`s.

use std::hash::{BuildHasher, Hasher, RandomState};

use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;

/// Hashes index keys; one per store, randomly keyed.
///
/// Actor ids and resources can come from outside (a user name, a requested path), so they
/// get SipHash, which crafted keys cannot make collide. Actions and operations are names
/// the application's code chooses; they get the much cheaper foldhash (seeded from the
/// SipHash keys), which is enough where nobody outside picks the keys.
#[derive(Debug)]
pub(crate) struct KeyHasher {
    outside: RandomState,
    names: SeedableRandomState,
}

impl Default for KeyHasher {
    fn default() -> Self {
        let outside = RandomState::new();
        let seed = outside.hash_one("authtel-audit names");
        KeyHasher {
            outside,
            names: SeedableRandomState::with_seed(seed, SharedSeed::global_random()),
        }
    }
}

impl KeyHasher {
    /// The hash of an actor id or a resource.
    pub(crate) fn hash(&self, key: &str) -> u64 {
        bytes_hash(&self.outside, key)
    }

    /// The hash of an action or an operation name.
    pub(crate) fn hash_name(&self, name: &str) -> u64 {
        bytes_hash(&self.names, name)
    }
}

/// A key's bytes alone, without the `0xff` that `Hash for str` appends to keep composite
/// keys apart: every table here holds one kind of key, a whole string, so one `write`
/// suffices (SipHash pays per call, and this saves one of two).
fn bytes_hash(state: &impl BuildHasher, key: &str) -> u64 {
    let mut h = state.build_hasher();
    h.write(key.as_bytes());
    h.finish()
}

/// Sequence numbers start at 1, so 0 links to nothing: it is below every held record's.
pub(crate) const NO_SEQ: u64 = 0;
/// A record without the key (no actor, no resource) is in no slot of that index.
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// Freed slots keep their key's buffer for the next key up to this many bytes, so a key
/// coming and going costs no allocation; longer buffers are freed.
const REUSED_KEY_CAPACITY: usize = 64;

/// One key with stored records: how many, and the newest one's sequence number. Each
/// record links to the previous record with the same key (in the store's entry), so the
/// newest-first list of a key is a walk down those links, and nothing here grows with the
/// number of records.
#[derive(Debug)]
struct Slot {
    hash: u64,
    key: String,
    newest: u64,
    count: usize,
}

/// A secondary index over one key (an actor id, a resource, an action).
///
/// The keys live in a slab (`slots`, with a free list) and the hash table holds slab
/// positions, so a stored record names its key's slot by position: its eviction decrements
/// a count there without hashing, probing or comparing the (by then cold) key, and a key's
/// slot is removed from the table only when its last record leaves.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl KeyIndex {
    /// Files record `seq` under `key`; returns the key's slot and its previous newest
    /// record ([`NO_SEQ`] if the key had none), the link the record keeps.
    pub(crate) fn push(&mut self, key: &str, hash: u64, seq: u64) -> (u32, u64) {
        let slots = &mut self.slots;
        let found = self.table.find(hash, |&i| {
            let s = &slots[i as usize];
            s.hash == hash && s.key == key
        });
        if let Some(&id) = found {
            let slot = &mut slots[id as usize];
            slot.count += 1;
            return (id, std::mem::replace(&mut slot.newest, seq));
        }
        let id = match self.free.pop() {
            Some(id) => {
                let slot = &mut slots[id as usize];
                slot.key.push_str(key);
                (slot.hash, slot.newest, slot.count) = (hash, seq, 1);
                id
            }
            None => {
                let id = u32::try_from(slots.len()).expect("fewer keys than records");
                slots.push(Slot {
                    hash,
                    key: key.to_owned(),
                    newest: seq,
                    count: 1,
                });
                id
            }
        };
        self.table
            .insert_unique(hash, id, |&i| slots[i as usize].hash);
        (id, NO_SEQ)
    }

    /// Forgets the oldest record of slot `id`; frees the slot when it was the key's last.
    pub(crate) fn remove_oldest(&mut self, id: u32) {
        if id == NO_SLOT {
            return;
        }
        let slot = &mut self.slots[id as usize];
        slot.count -= 1;
        if slot.count > 0 {
            return;
        }
        if let Ok(entry) = self.table.find_entry(slot.hash, |&i| i == id) {
            entry.remove();
        }
        if slot.key.capacity() > REUSED_KEY_CAPACITY {
            slot.key = String::new();
        } else {
            slot.key.clear();
        }
        self.free.push(id);
    }

    /// The newest record filed under `key` ([`NO_SEQ`] if none).
    pub(crate) fn newest(&self, key: &str, hash: u64) -> u64 {
        self.table
            .find(hash, |&i| {
                let s = &self.slots[i as usize];
                s.hash == hash && s.key == key
            })
            .map_or(NO_SEQ, |&i| self.slots[i as usize].newest)
    }

    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// How many distinct keys have stored records.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// The newest record per outcome (a fixed, closed set of keys); records link to the
/// previous one with their outcome, and an evicted one needs no update here.
#[derive(Debug, Default)]
pub(crate) struct OutcomeIndex {
    newest: [u64; 4],
}

impl OutcomeIndex {
    /// Files `seq` under outcome `slot`; returns the link the record keeps.
    pub(crate) fn push(&mut self, slot: usize, seq: u64) -> u64 {
        std::mem::replace(&mut self.newest[slot], seq)
    }

    pub(crate) fn newest(&self, slot: usize) -> u64 {
        self.newest[slot]
    }

    pub(crate) fn clear(&mut self) {
        self.newest = [NO_SEQ; 4];
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
    fn keys_are_dropped_when_their_last_record_leaves_and_slots_are_reused() {
        let h = KeyHasher::default();
        let (h1, h2, h3) = (h.hash("u1"), h.hash("u2"), h.hash("u3"));
        let mut index = KeyIndex::default();
        let (s1, prev) = index.push("u1", h1, 1);
        assert_eq!(prev, NO_SEQ);
        let (s2, _) = index.push("u2", h2, 2);
        assert_eq!(index.push("u1", h1, 3), (s1, 1));
        assert_eq!(index.newest("u1", h1), 3);
        index.remove_oldest(s1);
        index.remove_oldest(s2);
        assert_eq!(index.len(), 1);
        assert_eq!(index.newest("u1", h1), 3);
        assert_eq!(index.newest("u2", h2), NO_SEQ);
        // u2's slot is free and is reused for a new key, which starts its own chain.
        assert_eq!(index.push("u3", h3, 4), (s2, NO_SEQ));
        assert_eq!(index.newest("u3", h3), 4);
        assert_eq!(index.newest("u2", h2), NO_SEQ);
        index.remove_oldest(s1);
        assert_eq!((index.len(), index.newest("u1", h1)), (1, NO_SEQ));
    }

    #[test]
    fn name_counts_are_bounded() {
        let h = KeyHasher::default();
        let mut counts = NameCounts::new(2);
        for name in ["a", "b", "a", "c", "d"] {
            counts.add(name, h.hash_name(name));
        }
        let mut all: Vec<(&str, u64)> = counts.iter("other").collect();
        all.sort_unstable();
        assert_eq!(all, [("a", 2), ("b", 1), ("other", 2)]);
    }
}
