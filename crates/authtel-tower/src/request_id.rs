//! Generated request ids: UUIDv7 without a system call per request.
//!
//! `Uuid::now_v7()` asks the operating system for random bytes twice per id (`getrandom(2)`),
//! which on a virtual machine costs more than the rest of the layer. A request id is a
//! correlation handle, not a secret: it needs to be unique and not guessable in advance,
//! so each thread keys a SipHash once (std's `RandomState`, seeded from the OS) and hashes
//! a counter for every id. The time prefix keeps ids sortable by creation time.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static KEYED: RandomState = RandomState::new();
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// A fresh UUIDv7: the current Unix time in milliseconds, then 74 bits from the thread's
/// keyed hash of a counter.
pub(crate) fn new_request_id() -> uuid::Uuid {
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    let (a, b) = KEYED.with(|keyed| {
        let mut h = keyed.build_hasher();
        h.write_u64(n);
        let a = h.finish();
        h.write_u64(!n);
        (a, h.finish())
    });
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_7_unique_and_carry_the_time() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ids: Vec<uuid::Uuid> = (0..10_000).map(|_| new_request_id()).collect();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "an id repeated");
        for id in &ids {
            assert_eq!(id.get_version_num(), 7, "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
            let (secs, nanos) = id.get_timestamp().expect("v7 has a time").to_unix();
            let ms = secs * 1_000 + u64::from(nanos) / 1_000_000;
            assert!(
                (before..=after).contains(&ms),
                "{id}: {ms} outside {before}..={after}"
            );
        }
    }

    #[test]
    fn threads_do_not_repeat_each_others_ids() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..2_000).map(|_| new_request_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id), "{id} generated twice");
            }
        }
        assert_eq!(all.len(), 8_000);
    }
}
