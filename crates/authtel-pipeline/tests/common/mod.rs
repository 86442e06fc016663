//! Forwarders and helpers shared by the fault tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use uuid::Uuid;

/// Generous: the machine is a loaded 2-core box.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A fresh directory under the system temp dir, removed by `Drop`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "authtel-pipeline-test-{name}-{}-{}",
            std::process::id(),
            Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Every byte of every file below this directory, concatenated.
    pub fn all_bytes(&self) -> Vec<u8> {
        fn walk(dir: &std::path::Path, out: &mut Vec<u8>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.extend(std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records numbered 0..n in the `seq` metadata field.
pub fn numbered(range: std::ops::Range<u64>) -> Vec<AuditEvent> {
    range
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_metadata("seq", i).unwrap();
            e
        })
        .collect()
}

pub fn seq_of(e: &AuditEvent) -> u64 {
    e.metadata()["seq"].as_u64().unwrap()
}

/// Polls `cond` until it holds or `PATIENCE` passes; returns whether it held.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// Records what it receives, in order; can be switched down (transient errors) and can
/// fail a fraction of calls deterministically.
#[derive(Debug, Default)]
pub struct Capture {
    pub received: Mutex<Vec<AuditEvent>>,
    pub down: AtomicBool,
    pub calls: AtomicU64,
    /// Fail calls whose pseudo-random draw is below this per-mille value.
    pub fail_per_mille: AtomicU64,
    /// Every call takes this long (microseconds) after taking the batch: a slow destination.
    pub delay_micros: AtomicU64,
    rng: Mutex<u64>,
}

impl Capture {
    pub fn new() -> Capture {
        Capture {
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            ..Capture::default()
        }
    }

    pub fn seqs(&self) -> Vec<u64> {
        self.received.lock().unwrap().iter().map(seq_of).collect()
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.id())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn draw(&self) -> u64 {
        let mut s = self.rng.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s % 1000
    }
}

impl Forwarder for Capture {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = self.down.load(Ordering::SeqCst)
            || self.draw() < self.fail_per_mille.load(Ordering::SeqCst);
        if !fail {
            self.received.lock().unwrap().extend_from_slice(batch);
        }
        let delay = Duration::from_micros(self.delay_micros.load(Ordering::SeqCst));
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if fail {
                Err(ForwardError::message(
                    ErrorKind::Transient,
                    "send to test destination 127.0.0.1:9",
                ))
            } else {
                Ok(())
            }
        })
    }
}
