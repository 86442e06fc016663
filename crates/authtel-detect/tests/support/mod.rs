//! The corpora: a deterministic generator of benign traffic and of scripted attacks, their
//! text form (the committed `tests/corpus/attacks.tsv`), a geo table for the generated
//! world, a replay that emits every event through the registry on a manual clock, and the
//! signals a capture saw, as comparable tuples.
//!
//! Regenerate the committed attack corpus with
//! `AUTHTEL_BLESS=1 cargo test -p authtel-detect --test attack_corpus`.

#![allow(dead_code)]

use authtel_core::catalogue::Category;
use authtel_detect::clock::ManualClock;
use authtel_detect::{DetectConfig, Detectors};
use authtel_testing::Capture;

mod attacks;
mod benign;
mod events;
mod signals;
mod world;

// Each test binary uses its own part of the corpora.
#[allow(unused_imports)]
pub(crate) use attacks::*;
#[allow(unused_imports)]
pub(crate) use benign::*;
#[allow(unused_imports)]
pub(crate) use events::*;
#[allow(unused_imports)]
pub(crate) use signals::*;
#[allow(unused_imports)]
pub(crate) use world::*;

/// Detectors on a manual clock (set to 1,000,000 s, far from its origin), attached to a
/// capture of security events: how the tests that drive logins by hand watch the signals.
pub(crate) fn captured(config: DetectConfig) -> (Capture, Detectors, ManualClock) {
    let clock = ManualClock::new();
    clock.set(std::time::Duration::from_secs(1_000_000));
    let detectors = Detectors::builder()
        .with_config(config)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let capture = Capture::with_selection(Category::Security);
    detectors.attach(capture.registry()).unwrap();
    (capture, detectors, clock)
}

/// The seed both corpora are generated from.
pub(crate) const SEED: u64 = 0x00A7_7E1D_E7EC_7015;

pub(crate) const SECOND: u64 = 1000;
pub(crate) const MINUTE: u64 = 60 * SECOND;
pub(crate) const HOUR: u64 = 60 * MINUTE;
pub(crate) const DAY: u64 = 24 * HOUR;
/// Corpus time starts here (a Monday 00:00 in corpus time), far from the clock's origin.
pub(crate) const EPOCH: u64 = 1_000 * DAY;

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}
