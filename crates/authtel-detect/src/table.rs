//! Bounded state: a sharded LRU table of fixed-size entries, with its size in bytes known.
//!
//! Each detector keeps its per-key state (per address, per account, …) in a [`Table`]. A
//! table is given a byte budget; from it follow the most entries it may hold and the most
//! hash slots it may use. When full, a new key takes the slot of one not used recently (an
//! eviction, counted). So memory is bounded whatever the attacker sends, and the bound is
//! checked by the accounting in [`Table::stats`], which counts every allocation the table
//! made (capacities, not lengths).
//!
//! Eviction is CLOCK, the usual approximation of least-recently-used: every use of an
//! entry sets its bit; to make room, a hand sweeps the entries, clearing set bits, and
//! takes the first entry whose bit is clear. New entries start with a clear bit, so a flood
//! of one-off keys (a million spoofed addresses) replaces mostly itself, while keys that
//! keep coming back (the address that is attacking) keep their state.
//!
//! Why not `std::collections::HashMap`: its growth is not bounded by a byte budget, and after
//! removals it may resize rather than reuse tombstones. Here the index is an open-addressing
//! array of node numbers, each beside the high half of its key's digest (so a probe reads a
//! node only on a digest match), with linear probing and backward-shift deletion (no
//! tombstones), probed with the key's keyed digest (see [`crate::keys`]) directly. Tables
//! are split into shards, each behind its own mutex, by digest bits the index does not use.

use std::mem::size_of;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// An index slot: the high 32 bits of the key's digest beside its node number, so a probe
/// compares digests in the index and reads a node (a cache miss with many keys) only for the
/// key it is looking for. Empty: [`EMPTY`].
type Slot = u64;
const EMPTY: Slot = Slot::MAX;

fn slot(fp: u64, idx: u32) -> Slot {
    fp & !0xFFFF_FFFF | Slot::from(idx)
}

fn node_of(slot: Slot) -> u32 {
    slot as u32
}
/// Shards per table (a power of two).
pub(crate) const SHARDS: usize = 8;
const SHARD_SHIFT: u32 = 61;
/// The fewest index slots a shard starts with.
const MIN_SLOTS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Node<V> {
    fp: u64,
    /// Used since the clock hand last passed.
    referenced: bool,
    value: V,
}

/// One shard: an index, nodes, the clock hand, and an optional fixed-size `u32` array per
/// node (the distinct-identifier sets of the spraying detector).
#[derive(Debug)]
struct Shard<V> {
    slots: Vec<Slot>,
    nodes: Vec<Node<V>>,
    arena: Vec<u32>,
    hand: u32,
    evictions: u64,
}

/// The limits a byte budget gives one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Limits {
    max_nodes: usize,
    max_slots: usize,
    stride: usize,
}

/// Where a shard's index lives, readable without the shard's lock, for
/// [`Table::prefetch`]. Written under the lock whenever the index is replaced; a reader may
/// see an old or half-updated pair, which only makes its prefetch useless (a prefetch never
/// faults and the program never reads through this pointer).
#[derive(Debug)]
struct IndexHint {
    base: AtomicPtr<Slot>,
    mask: AtomicUsize,
}

/// A bounded table of `V` by keyed digest.
#[derive(Debug)]
pub(crate) struct Table<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hints: Box<[IndexHint]>,
    limits: Limits,
    name: &'static str,
}

fn shard_of(fp: u64) -> usize {
    (fp >> SHARD_SHIFT) as usize & (SHARDS - 1)
}

/// Asks the CPU to bring `p`'s cache line in, without waiting for it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_read<T>(p: *const T) {
    // SAFETY: a prefetch is a hint: it never faults and makes no access the program can
    // observe, whatever the address (stale, freed or past the end); SSE is part of x86_64.
    unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast()) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn prefetch_read<T>(_: *const T) {}

/// What a table reports about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TableStats {
    /// The table's name (`address`, `brute_force.identifier`, …).
    pub name: &'static str,
    /// Keys held now.
    pub entries: usize,
    /// The most keys it may hold.
    pub capacity: usize,
    /// Bytes allocated for it now.
    pub bytes: usize,
    /// The most bytes it may allocate.
    pub budget_bytes: usize,
    /// Keys dropped to make room for new ones since it was built.
    pub evictions: u64,
}

impl<V: Copy + Default> Table<V> {
    /// A table that allocates at most `budget` bytes (nothing until used). `stride` is the
    /// number of `u32`s each entry carries beside its value. `None` when the budget cannot
    /// hold even a minimal table.
    pub(crate) fn new(name: &'static str, budget: usize, stride: usize) -> Option<Table<V>> {
        let limits = Self::limits_for(budget.checked_sub(Self::fixed_bytes())? / SHARDS, stride)?;
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    slots: Vec::new(),
                    nodes: Vec::new(),
                    arena: Vec::new(),
                    hand: 0,
                    evictions: 0,
                })
            })
            .collect();
        let hints = (0..SHARDS)
            .map(|_| IndexHint {
                base: AtomicPtr::new(std::ptr::null_mut()),
                mask: AtomicUsize::new(0),
            })
            .collect();
        Some(Table {
            shards,
            hints,
            limits,
            name,
        })
    }

    /// The limits that hold the most entries within `budget`: for each power-of-two index
    /// size, as many nodes as the rest of the budget pays for, at most ¾ of the slots.
    fn limits_for(budget: usize, stride: usize) -> Option<Limits> {
        let per_node = size_of::<Node<V>>() + stride * size_of::<u32>();
        let mut best: Option<Limits> = None;
        let mut slots = MIN_SLOTS;
        while slots <= (1 << 30) && slots * size_of::<Slot>() < budget {
            let nodes = ((budget - slots * size_of::<Slot>()) / per_node).min(slots / 4 * 3);
            if nodes >= MIN_SLOTS / 4 * 3 && best.is_none_or(|b| nodes > b.max_nodes) {
                best = Some(Limits {
                    max_nodes: nodes,
                    max_slots: slots,
                    stride,
                });
            }
            slots *= 2;
        }
        best
    }

    /// The smallest budget a table of `V` accepts.
    pub(crate) fn min_budget(stride: usize) -> usize {
        let per_node = size_of::<Node<V>>() + stride * size_of::<u32>();
        Self::fixed_bytes()
            + SHARDS * (MIN_SLOTS * size_of::<Slot>() + MIN_SLOTS / 4 * 3 * per_node)
    }

    /// The table's own structures, allocated when it is built.
    fn fixed_bytes() -> usize {
        size_of::<Self>() + SHARDS * (size_of::<Mutex<Shard<V>>>() + size_of::<IndexHint>())
    }

    fn shard(&self, fp: u64) -> MutexGuard<'_, Shard<V>> {
        self.shards[shard_of(fp)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Starts loading the index slot a lookup of `fp` probes first, without taking the
    /// shard's lock: a caller that will look up several tables asks for all their slots
    /// first, so the cache misses overlap instead of following one another.
    #[inline]
    pub(crate) fn prefetch(&self, fp: u64) {
        let hint = &self.hints[shard_of(fp)];
        let base = hint.base.load(Ordering::Relaxed);
        if !base.is_null() {
            prefetch_read(base.wrapping_add(fp as usize & hint.mask.load(Ordering::Relaxed)));
        }
    }

    /// Runs `f` on the entry of `fp`, creating it (from `V::default()`, arena zeroed) if
    /// absent, and marks it used. `f` gets whether the entry is new.
    #[inline]
    pub(crate) fn with<R>(&self, fp: u64, f: impl FnOnce(&mut V, &mut [u32], bool) -> R) -> R {
        let mut shard = self.shard(fp);
        let (idx, fresh) = shard.entry(fp, self.limits);
        if fresh {
            // A new entry may have grown the index.
            let hint = &self.hints[shard_of(fp)];
            let base = shard.slots.as_ptr().cast_mut();
            if hint.base.load(Ordering::Relaxed) != base {
                hint.mask.store(shard.slots.len() - 1, Ordering::Relaxed);
                hint.base.store(base, Ordering::Relaxed);
            }
        }
        let stride = self.limits.stride;
        let Shard { nodes, arena, .. } = &mut *shard;
        let node = &mut nodes[idx as usize];
        // Most tables carry no arena: no slice to cut (and bounds-check) for them.
        let extra = if stride == 0 {
            &mut []
        } else {
            &mut arena[idx as usize * stride..(idx as usize + 1) * stride]
        };
        f(&mut node.value, extra, fresh)
    }

    /// Runs `f` on the entry of `fp` if there is one (marking it used).
    pub(crate) fn with_existing<R>(&self, fp: u64, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut shard = self.shard(fp);
        let idx = shard.find(fp)?;
        let node = &mut shard.nodes[idx as usize];
        node.referenced = true;
        Some(f(&mut node.value))
    }

    /// A copy of the entry of `fp`, without marking it used.
    pub(crate) fn get(&self, fp: u64) -> Option<V> {
        let shard = self.shard(fp);
        let idx = shard.find(fp)?;
        Some(shard.nodes[idx as usize].value)
    }

    /// What the table holds and has allocated.
    pub(crate) fn stats(&self) -> TableStats {
        let mut stats = TableStats {
            name: self.name,
            capacity: self.limits.max_nodes * SHARDS,
            budget_bytes: self.budget(),
            bytes: Self::fixed_bytes(),
            ..TableStats::default()
        };
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            stats.entries += shard.nodes.len();
            stats.bytes += shard.heap_bytes();
            stats.evictions += shard.evictions;
        }
        stats
    }

    /// The most bytes this table allocates when full.
    pub(crate) fn budget(&self) -> usize {
        let l = self.limits;
        Self::fixed_bytes()
            + SHARDS
                * (l.max_slots * size_of::<Slot>()
                    + l.max_nodes * (size_of::<Node<V>>() + l.stride * size_of::<u32>()))
    }
}

impl<V: Copy + Default> Shard<V> {
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.nodes.capacity() * size_of::<Node<V>>()
            + self.arena.capacity() * size_of::<u32>()
    }

    fn find(&self, fp: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = fp as usize & mask;
        let tag = fp >> 32;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            let idx = node_of(s);
            if s >> 32 == tag && self.nodes[idx as usize].fp == fp {
                return Some(idx);
            }
            i = (i + 1) & mask;
        }
    }

    /// The node of `fp`, marked used; created (evicting one not used recently when full) if
    /// absent.
    #[inline]
    fn entry(&mut self, fp: u64, limits: Limits) -> (u32, bool) {
        if let Some(idx) = self.find(fp) {
            self.nodes[idx as usize].referenced = true;
            return (idx, false);
        }
        (self.insert(fp, limits), true)
    }

    /// A node for `fp`, which is absent: a new one while there is room, else the clock's
    /// victim, reused. Out of line: a key's first sight is the rare path.
    #[inline(never)]
    fn insert(&mut self, fp: u64, limits: Limits) -> u32 {
        let idx = if self.nodes.len() < limits.max_nodes {
            self.grow_for_one(limits);
            let idx = self.nodes.len() as u32;
            self.nodes.push(Node {
                fp,
                referenced: false,
                value: V::default(),
            });
            self.arena.resize(self.arena.len() + limits.stride, 0);
            idx
        } else {
            let idx = self.victim();
            let old = self.nodes[idx as usize].fp;
            self.remove_slot(old);
            self.evictions += 1;
            let node = &mut self.nodes[idx as usize];
            node.fp = fp;
            node.referenced = false;
            node.value = V::default();
            let s = idx as usize * limits.stride;
            self.arena[s..s + limits.stride].fill(0);
            idx
        };
        self.insert_slot(fp, idx);
        idx
    }

    /// The clock hand's next entry whose bit is clear, clearing set bits on the way (at most
    /// one full turn, after which every bit is clear).
    fn victim(&mut self) -> u32 {
        let len = self.nodes.len() as u32;
        loop {
            let idx = self.hand % len;
            self.hand = (idx + 1) % len;
            let node = &mut self.nodes[idx as usize];
            if !node.referenced {
                return idx;
            }
            node.referenced = false;
        }
    }

    /// Makes room for one more node: node storage grows by doubling up to the limit (exact
    /// reservations, so capacity never passes it), the index doubles when ¾ full.
    fn grow_for_one(&mut self, limits: Limits) {
        let len = self.nodes.len();
        if len == self.nodes.capacity() {
            let target = (len * 2).clamp(MIN_SLOTS / 4 * 3, limits.max_nodes);
            self.nodes.reserve_exact(target - len);
            self.arena
                .reserve_exact(target * limits.stride - self.arena.len());
        }
        if (len + 1) * 4 > self.slots.len() * 3 {
            let slots = (self.slots.len() * 2).clamp(MIN_SLOTS, limits.max_slots);
            self.rehash(slots);
        }
    }

    fn rehash(&mut self, slots: usize) {
        let mut fresh = Vec::with_capacity(slots);
        fresh.resize(slots, EMPTY);
        self.slots = fresh;
        for idx in 0..self.nodes.len() as u32 {
            let fp = self.nodes[idx as usize].fp;
            self.insert_slot(fp, idx);
        }
    }

    fn insert_slot(&mut self, fp: u64, idx: u32) {
        let mask = self.slots.len() - 1;
        let mut i = fp as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot(fp, idx);
    }

    /// Removes `fp` from the index, shifting later entries of its probe run back so that no
    /// tombstone is left (Knuth's algorithm R).
    fn remove_slot(&mut self, fp: u64) {
        let mask = self.slots.len() - 1;
        let mut i = fp as usize & mask;
        while self.nodes[node_of(self.slots[i]) as usize].fp != fp {
            i = (i + 1) & mask;
        }
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let moved = self.slots[j];
            if moved == EMPTY {
                break;
            }
            let home = self.nodes[node_of(moved) as usize].fp as usize & mask;
            // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = moved;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::mix;

    #[test]
    fn holds_what_fits_and_evicts_what_was_not_used_again() {
        let t: Table<u64> = Table::new("t", 64 * 1024, 0).unwrap();
        let cap = t.stats().capacity;
        assert!(cap > 100, "{cap}");
        for k in 0..(cap as u64 * 3) {
            t.with(mix(k), |v, _, fresh| {
                assert!(fresh);
                *v = k;
            });
        }
        let s = t.stats();
        assert!(s.entries <= cap && s.entries > cap / 2, "{s:?}");
        assert!(s.evictions > 0);
        assert!(
            s.bytes <= s.budget_bytes && s.budget_bytes <= 64 * 1024,
            "{s:?}"
        );
        // The newest keys are still there, with their values; the oldest are gone.
        let last = cap as u64 * 3 - 1;
        assert_eq!(t.get(mix(last)), Some(last));
        assert_eq!(t.get(mix(0)), None);
    }

    #[test]
    fn a_key_in_use_survives_a_flood_of_one_off_keys() {
        let t: Table<u32> = Table::new("t", 16 * 1024, 0).unwrap();
        let cap = t.stats().capacity as u64;
        t.with(mix(u64::MAX), |v, _, _| *v = 7);
        for k in 0..cap * 4 {
            t.with(mix(k), |_, _, _| ());
            t.with_existing(mix(u64::MAX), |_| ());
        }
        assert_eq!(t.get(mix(u64::MAX)), Some(7));
    }

    #[test]
    fn index_stays_consistent_through_evictions() {
        // Small index, many collisions in probe runs: every live key is found, no stale one.
        let t: Table<u64> = Table::new("t", 8 * 1024, 2).unwrap();
        let mut live = std::collections::VecDeque::new();
        let cap = t.stats().capacity;
        for k in 0..20_000u64 {
            let fp = mix(k % 5_000 * 7919);
            t.with(fp, |v, arena, _| {
                *v = fp;
                arena[1] = k as u32;
            });
            live.push_back(fp);
        }
        for shard in t.shards.iter() {
            let s = shard.lock().unwrap();
            for (i, n) in s.nodes.iter().enumerate() {
                assert_eq!(s.find(n.fp), Some(i as u32));
                assert_eq!(n.value, n.fp);
            }
            let used = s.slots.iter().filter(|&&x| x != EMPTY).count();
            assert_eq!(used, s.nodes.len());
        }
        assert!(t.stats().entries <= cap);
    }

    #[test]
    fn budgets_too_small_are_refused() {
        assert!(Table::<[u64; 8]>::new("t", 100, 0).is_none());
        let min = Table::<[u64; 8]>::min_budget(0);
        assert!(Table::<[u64; 8]>::new("t", min, 0).is_some());
    }
}
