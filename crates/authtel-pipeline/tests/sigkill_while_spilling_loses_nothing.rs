//! A child process spilling with fsync per batch is killed with SIGKILL; on restart every
//! record it reported as spilled is recovered, in order.
//!
//! The test re-executes its own binary with `AUTHTEL_PIPELINE_SPILL_CHILD` set: in that
//! mode the same test function becomes the child, which publishes to a destination that is
//! down (so everything spills) and prints `spilled <n>` after each progress step.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use authtel_pipeline::{
    Backpressure, BreakerConfig, Dispatch, ForwarderConfig, FsyncPolicy, Pipeline, RetryPolicy,
};
use common::{Capture, PATIENCE, TempDir, numbered, wait_until};

const CHILD_ENV: &str = "AUTHTEL_PIPELINE_SPILL_CHILD";
const TEST_NAME: &str = "spilled_records_survive_sigkill";

fn config(dest: Arc<Capture>, dir: &std::path::Path) -> ForwarderConfig {
    ForwarderConfig::from_arc("kafka", dest)
        .dispatch(Dispatch::Async)
        .workers(1)
        .batch_size(50)
        .queue_capacity(1_000)
        // Block (not Spill) when the queue is full, so the spill file keeps publish order.
        .backpressure(Backpressure::Block {
            timeout: Duration::from_secs(60),
        })
        .retry(RetryPolicy {
            max_attempts: 1,
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        })
        .breaker(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(3600),
        })
        .spill_dir(dir.join("spill"))
        .fsync(FsyncPolicy::EveryBatch)
        .dead_letter_dir(dir.join("dead"))
}

fn child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dest = Arc::new(Capture::new());
    dest.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let pipeline = Pipeline::builder()
        .forwarder(config(dest, std::path::Path::new(dir)))
        .build()
        .unwrap();
    let mut next = 0u64;
    loop {
        for e in numbered(next..next + 100) {
            pipeline.publish(e).unwrap();
        }
        next += 100;
        // Report only what the metrics say reached the spill file.
        let spilled = pipeline.metrics()[0].spilled;
        println!("spilled {spilled}");
    }
}

/// Kills the child however the test ends, so a failed assertion never leaves it spilling.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn spilled_records_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = TempDir::new("sigkill");
    let mut proc = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = proc.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("spilled ")
                && tx.send(n.trim().parse::<u64>().unwrap()).is_err()
            {
                return;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut reported = 0;
    while reported < 3_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(n) => reported = reported.max(n),
            Err(e) => panic!("child stopped reporting after {reported} records: {e}"),
        }
    }
    proc.0.kill().unwrap(); // SIGKILL on unix
    proc.0.wait().unwrap();
    while let Ok(n) = rx.try_recv() {
        reported = reported.max(n);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dest = Arc::new(Capture::new());
    let pipeline = Pipeline::builder()
        .forwarder(config(dest.clone(), dir.path()).breaker(BreakerConfig::default()))
        .build()
        .unwrap();
    assert!(
        wait_until(|| dest.len() as u64 >= reported),
        "recovered {} of {reported}",
        dest.len()
    );
    let mut seqs = dest.seqs();
    seqs.dedup();
    let recovered: Vec<u64> = seqs.iter().copied().take(reported as usize).collect();
    assert_eq!(
        recovered,
        (0..reported).collect::<Vec<_>>(),
        "every reported record, in order"
    );
    let m = &pipeline.metrics()[0];
    // A SIGKILL can tear at most the last line; it is skipped and counted, never a panic.
    assert!(m.corrupt_spill_lines <= 1, "{m:?}");
}
