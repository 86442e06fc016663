//! Secondary indexes: for each key (an actor id, a resource, an action), the sequence
//! numbers of its stored records, oldest first.
//!
//! Records leave the store only from the oldest end, so a leaving record's sequence number
//! is always at the front of its key's queue: removal is O(1) and exact, and a key whose
//! queue empties is dropped, so the index never outgrows the store.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    seqs: HashMap<Box<str>, VecDeque<u64>>,
}

impl KeyIndex {
    pub(crate) fn push(&mut self, key: &str, seq: u64) {
        match self.seqs.get_mut(key) {
            Some(queue) => queue.push_back(seq),
            None => {
                self.seqs.insert(key.into(), VecDeque::from([seq]));
            }
        }
    }

    /// Forgets `seq` under `key`; it must be that key's oldest entry.
    pub(crate) fn remove_oldest(&mut self, key: &str, seq: u64) {
        if let Some(queue) = self.seqs.get_mut(key) {
            if queue.front() == Some(&seq) {
                queue.pop_front();
            }
            if queue.is_empty() {
                self.seqs.remove(key);
            }
        }
    }

    /// The newest `limit` sequence numbers under `key`, newest first.
    pub(crate) fn newest(&self, key: &str, limit: usize) -> impl Iterator<Item = u64> + '_ {
        self.seqs
            .get(key)
            .into_iter()
            .flat_map(|q| q.iter().rev().copied())
            .take(limit)
    }

    pub(crate) fn clear(&mut self) {
        self.seqs.clear();
    }

    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.seqs.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dropped_when_their_last_record_leaves() {
        let mut index = KeyIndex::default();
        index.push("u1", 0);
        index.push("u2", 1);
        index.push("u1", 2);
        assert_eq!(index.newest("u1", 10).collect::<Vec<_>>(), [2, 0]);
        index.remove_oldest("u1", 0);
        index.remove_oldest("u2", 1);
        assert_eq!(index.keys(), 1);
        assert_eq!(index.newest("u1", 10).collect::<Vec<_>>(), [2]);
        assert_eq!(index.newest("u2", 10).count(), 0);
    }
}
