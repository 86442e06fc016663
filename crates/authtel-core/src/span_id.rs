//! Span ids: 64 random bits per span or signal, drawn without a lock or a system call.
//!
//! Below both the records that carry them and the W3C trace parent that names a parent
//! span, so neither imports the other for it.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::time::SystemTime;

/// A span's (or signal's) id: 64 random bits, never zero. Usable as a correlation id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

impl SpanId {
    /// The id as a number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// An id from a number; `None` for zero.
    pub const fn from_u64(v: u64) -> Option<SpanId> {
        match NonZeroU64::new(v) {
            Some(v) => Some(SpanId(v)),
            None => None,
        }
    }

    #[inline]
    pub(crate) fn random() -> SpanId {
        thread_local! {
            // Zero means "not seeded yet": a const initialiser keeps the access a plain
            // thread-local read, without a lazy-initialisation check.
            static STATE: Cell<u64> = const { Cell::new(0) };
        }
        // A Weyl sequence (add an odd constant: period 2^64) through a bijective mix
        // (xor-shift, then multiply by an odd constant): no id repeats on a thread before
        // 2^64 draws, threads start at random points, and drawing is a handful of
        // instructions. The state is read and written with `get`/`set` (inlined); seeding
        // is out of line.
        let mut x = STATE.get();
        if x == 0 {
            x = seed();
        }
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        STATE.set(x);
        let v = (x ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        SpanId(NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN))
    }
}

#[cold]
#[inline(never)]
fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let n = COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let s = n ^ t.rotate_left(17) ^ u64::from(std::process::id()).rotate_left(40);
    if s == 0 { 0x1234_5678_9ABC_DEF1 } else { s }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}
