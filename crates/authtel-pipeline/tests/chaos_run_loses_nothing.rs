//! The chaos run: 100,000 audit records through a queued lane with `Backpressure::Spill`,
//! into a forwarder that fails at random — transient errors, acknowledgements lost after
//! delivery, calls that outlive the call timeout, panics before and inside the future, and
//! records it refuses for good — with a SIGKILL of the publishing process in the middle and
//! a full disk (the file-size limit, `RLIMIT_FSIZE`, so spill writes fail with `EFBIG`
//! part-way) after the restart.
//!
//! The promise: every record `publish` accepted is delivered or dead-lettered; only the
//! records the destination refused for good are dead-lettered, each alone; a record is never
//! both; duplicates happen (a lost acknowledgement, a kill between delivery and the spill's
//! bookkeeping) but only with the same id.
//!
//! The publisher outpaces the failing destination, so by the kill the lane writes every
//! record to the spill as `publish` accepts it: the condition under which
//! docs/operations-pipeline.md promises that a SIGKILL loses nothing (`replayed > 0` below
//! checks that the kill met a spill).
//!
//! Two child processes (this test binary, re-run with `AUTHTEL_CHAOS_CHILD` set) do the
//! publishing; they print `a <seq>` after each accepted publish, `r <seq>` after each
//! refused one, and the forwarder prints `d <seq> <id>` for each record of a batch before it
//! answers Ok — to a pipe, so a SIGKILL loses nothing that was printed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_pipeline::{
    Backpressure, BreakerConfig, Dispatch, ForwarderConfig, FsyncPolicy, Pipeline, RetryPolicy,
    read_dead_letters,
};
use common::{PATIENCE, TempDir, numbered, seq_of};

const CHILD_ENV: &str = "AUTHTEL_CHAOS_CHILD";
const TEST_NAME: &str = "chaos_run_delivers_or_dead_letters_every_accepted_record";
const TOTAL: u64 = 100_000;
/// The first process is killed once it has reported this many accepted records.
const KILL_AT: u64 = 50_000;
/// Records the second process publishes while the disk is "full".
const FULL_DISK_RECORDS: u64 = 20_000;
/// The file-size limit during that phase. Phase 2 spills into a segment of its own, which
/// fills to just under it (the write that does not fit is cut part-way and rolled back);
/// every later write fails.
const FULL_DISK_BYTES: u64 = 64 << 10;
/// Records whose seq is a multiple of this are refused for good.
const POISON: u64 = 997;
const CALL_TIMEOUT: Duration = Duration::from_millis(100);

fn id_of(e: &AuditEvent) -> uuid::Uuid {
    e.id()
}

/// A destination that fails at random (a fixed seed per process, so a run is repeatable
/// up to thread scheduling).
#[derive(Debug)]
struct Chaos {
    rng: Mutex<u64>,
    /// Every call fails transiently (the breaker opens, records go to the spill).
    down: AtomicBool,
}

impl Chaos {
    fn new(seed: u64) -> Chaos {
        Chaos {
            rng: Mutex::new(seed | 1),
            down: AtomicBool::new(false),
        }
    }

    /// 0..1000.
    fn draw(&self) -> u64 {
        let mut s = self.rng.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s % 1000
    }

    /// What the destination stored, printed before the call answers.
    fn report(batch: &[AuditEvent]) {
        let mut text = String::new();
        for e in batch {
            text.push_str(&format!("d {} {}\n", seq_of(e), id_of(e)));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

impl Forwarder for Chaos {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(ForwardError::message(
                    ErrorKind::Transient,
                    "chaos: connection refused",
                ))
            });
        }
        let draw = self.draw();
        assert!(
            draw >= 10,
            "chaos: the forwarder panicked before its future"
        );
        Box::pin(async move {
            tokio::time::sleep(Duration::from_micros(200)).await;
            if batch.iter().any(|e| seq_of(e).is_multiple_of(POISON)) {
                return Err(ForwardError::message(
                    ErrorKind::Permanent,
                    "chaos: the destination refuses this record for good",
                ));
            }
            match draw {
                10..20 => panic!("chaos: the forwarder panicked inside its future"),
                20..35 => {
                    // Outlives the call timeout: the pipeline drops this future unanswered.
                    tokio::time::sleep(CALL_TIMEOUT * 3).await;
                    Chaos::report(batch);
                    Ok(())
                }
                35..135 => Err(ForwardError::message(
                    ErrorKind::Transient,
                    "chaos: connection reset",
                )),
                135..150 => {
                    Chaos::report(batch);
                    Err(ForwardError::message(
                        ErrorKind::Transient,
                        "chaos: delivered, but the acknowledgement was lost",
                    ))
                }
                _ => {
                    Chaos::report(batch);
                    Ok(())
                }
            }
        })
    }
}

fn config(dir: &Path, chaos: Arc<Chaos>) -> ForwarderConfig {
    ForwarderConfig::from_arc("chaos", chaos)
        .dispatch(Dispatch::Async)
        .workers(2)
        .batch_size(100)
        .queue_capacity(1_000)
        .backpressure(Backpressure::Spill)
        .call_timeout(CALL_TIMEOUT)
        // Transient failures never exhaust it (15 % of calls fail; 0.15^60 is nothing), so
        // only the refused records end as dead letters.
        .retry(RetryPolicy {
            max_attempts: 60,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            jitter: true,
        })
        .breaker(BreakerConfig {
            failure_threshold: 4,
            open_for: Duration::from_millis(20),
        })
        .spill_dir(dir.join("spill"))
        .fsync(FsyncPolicy::Never)
        .dead_letter_dir(dir.join("dead"))
}

/// The soft file-size limit (the hard one stays, so the limit can be lifted again).
fn limit_file_size(bytes: Option<u64>) {
    // SAFETY: plain libc calls with valid pointers; SIGXFSZ ignored so that an oversized
    // write fails with EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl), 0);
        rl.rlim_cur = bytes.map_or(rl.rlim_max, |b| b as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &rl), 0);
    }
}

fn publish_range(pipeline: &Pipeline, range: std::ops::Range<u64>) {
    for seq in range {
        let record = numbered(seq..seq + 1).pop().unwrap();
        let line = match pipeline.publish(record) {
            Ok(()) => format!("a {seq}\n"),
            Err(_) => format!("r {seq}\n"),
        };
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

/// Phase 1 publishes from 0 until killed; phase 2 resumes at `from`, first with the
/// destination down and the disk full, then with both back, and drains everything before
/// it exits.
fn child(dir: &str) {
    let dir = Path::new(dir);
    let phase: u32 = std::env::var("AUTHTEL_CHAOS_PHASE")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    // libtest has printed `test <name> ... ` without a newline: end that line first.
    println!();
    let chaos = Arc::new(Chaos::new(0x5EED_0000 + u64::from(phase)));
    let pipeline = Pipeline::builder()
        .forwarder(config(dir, chaos.clone()))
        .build()
        .unwrap();
    if phase == 1 {
        publish_range(&pipeline, 0..u64::MAX);
        return;
    }
    let from: u64 = std::env::var("AUTHTEL_CHAOS_FROM")
        .unwrap()
        .parse()
        .unwrap();
    let full_until = (from + FULL_DISK_RECORDS).min(TOTAL);
    chaos.down.store(true, Ordering::SeqCst);
    limit_file_size(Some(FULL_DISK_BYTES));
    publish_range(&pipeline, from..full_until);
    limit_file_size(None);
    chaos.down.store(false, Ordering::SeqCst);
    publish_range(&pipeline, full_until..TOTAL);
    let deadline = Instant::now() + PATIENCE;
    pipeline.wait_replayed(deadline).expect("the spill replays");
    pipeline
        .flush(deadline)
        .expect("everything accepted is delivered");
    pipeline.shutdown(deadline).expect("a clean shutdown");
    let m = &pipeline.metrics()[0];
    println!(
        "m {} {} {} {} {} {} {} {}",
        m.replayed,
        m.dead_lettered,
        m.panics,
        m.timeouts,
        m.retried,
        m.corrupt_spill_lines,
        m.spill_bytes,
        m.queue_depth
    );
}

/// Kills the child however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one child printed.
#[derive(Debug, Default)]
struct Seen {
    accepted: BTreeSet<u64>,
    refused: u64,
    delivered: BTreeMap<u64, BTreeSet<uuid::Uuid>>,
    deliveries: u64,
    metrics: Option<Vec<u64>>,
}

impl Seen {
    fn line(&mut self, line: &str) {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next()) {
            (Some("a"), Some(seq)) => {
                self.accepted.insert(seq.parse().unwrap());
            }
            (Some("r"), Some(_)) => self.refused += 1,
            (Some("d"), Some(seq)) => {
                let id = parts.next().unwrap().parse().unwrap();
                self.delivered
                    .entry(seq.parse().unwrap())
                    .or_default()
                    .insert(id);
                self.deliveries += 1;
            }
            (Some("m"), Some(first)) => {
                let rest = std::iter::once(first).chain(parts);
                self.metrics = Some(rest.map(|n| n.parse().unwrap()).collect());
            }
            _ => {}
        }
    }
}

fn spawn(dir: &Path, phase: u32, from: u64) -> (KillOnDrop, mpsc::Receiver<String>) {
    let mut proc = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir)
            .env("AUTHTEL_CHAOS_PHASE", phase.to_string())
            .env("AUTHTEL_CHAOS_FROM", from.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = proc.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (proc, rx)
}

#[test]
fn chaos_run_delivers_or_dead_letters_every_accepted_record() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = TempDir::new("chaos");
    let deadline = Instant::now() + PATIENCE * 3;

    // Phase 1: publish until KILL_AT accepted, then SIGKILL.
    let (mut first, rx) = spawn(dir.path(), 1, 0);
    let mut one = Seen::default();
    while (one.accepted.len() as u64) < KILL_AT {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => one.line(&line),
            Err(e) => panic!("phase 1 stopped after {} accepted: {e}", one.accepted.len()),
        }
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // What reached the pipe before the kill is still there.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        one.line(&line);
    }
    // The record published when the kill landed may be accepted but unreported: phase 2
    // skips its seq, so no seq is ever published twice.
    let from = one.accepted.last().copied().unwrap_or(0) + 2;

    // Phase 2: resume on the same spill and dead-letter directories.
    let (mut second, rx) = spawn(dir.path(), 2, from);
    let mut two = Seen::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                two.line(&line);
                if two.metrics.is_some() {
                    break;
                }
            }
            Err(e) => panic!(
                "phase 2 stopped before draining ({} accepted, {} refused): {e}",
                two.accepted.len(),
                two.refused
            ),
        }
    }
    let status = second.0.wait().unwrap();
    assert!(status.success(), "phase 2 exited with {status}");
    let [
        replayed,
        dead_lettered,
        panics,
        timeouts,
        retried,
        corrupt,
        spill_bytes,
        queued,
    ] = two.metrics.clone().unwrap()[..]
    else {
        panic!("metrics line: {:?}", two.metrics);
    };

    let dead = read_dead_letters(&dir.path().join("dead/chaos.dead.jsonl")).unwrap();
    let mut dead_ids: BTreeMap<u64, BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for e in &dead.events {
        dead_ids.entry(seq_of(e)).or_default().insert(id_of(e));
    }
    let mut delivered = one.delivered.clone();
    for (seq, ids) in &two.delivered {
        delivered.entry(*seq).or_default().extend(ids);
    }
    let accepted: BTreeSet<u64> = one.accepted.union(&two.accepted).copied().collect();
    let lost: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|s| !delivered.contains_key(s) && !dead_ids.contains_key(s))
        .collect();
    let deliveries = one.deliveries + two.deliveries;
    eprintln!(
        "chaos: {} accepted ({} before the kill, {} after), {} refused while the disk was full; \
         {} delivered ({deliveries} deliveries), {} dead-lettered ({} lines), {} lost; \
         after the restart: {replayed} replayed, {panics} panics, {timeouts} timeouts, \
         {retried} retried, {corrupt} corrupt spill lines",
        accepted.len(),
        one.accepted.len(),
        two.accepted.len(),
        two.refused,
        delivered.len(),
        dead_ids.len(),
        dead.events.len(),
        lost.len(),
    );
    assert!(
        lost.is_empty(),
        "{} accepted records lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for (seq, ids) in &delivered {
        assert_eq!(
            ids.len(),
            1,
            "seq {seq} delivered under several ids: {ids:?}"
        );
        assert!(
            !seq.is_multiple_of(POISON),
            "refused record {seq} was delivered"
        );
        assert!(
            !dead_ids.contains_key(seq),
            "{seq} delivered and dead-lettered"
        );
    }
    for (seq, ids) in &dead_ids {
        assert!(
            seq.is_multiple_of(POISON),
            "{seq} dead-lettered but never refused"
        );
        assert_eq!(ids.len(), 1, "dead seq {seq} under several ids: {ids:?}");
    }
    let not_accepted: Vec<u64> = dead_ids
        .keys()
        .chain(delivered.keys())
        .copied()
        .filter(|s| !accepted.contains(s) && *s != from - 1)
        .collect();
    assert!(
        not_accepted.is_empty(),
        "records publish refused (or never published) reached the destination or the dead letters: {not_accepted:?} (phase 2 from {from})"
    );
    assert!(dead_lettered >= 1 && dead_lettered <= dead.events.len() as u64);
    assert_eq!(dead.unreadable_lines, 0);

    // The run did what it says: the kill left a spill to replay, the full disk refused
    // records, and every kind of fault happened.
    assert!(replayed > 0, "nothing was spilled before the kill");
    assert!(two.refused > 0, "the full disk refused nothing");
    assert!(
        panics > 0 && timeouts > 0 && retried > 0,
        "{panics} {timeouts} {retried}"
    );
    assert!(
        deliveries > delivered.len() as u64,
        "no duplicate delivery at all"
    );
    // A SIGKILL tears at most the line being written; a write cut short by the full disk
    // is rolled back, never left to glue onto the next record.
    assert!(corrupt <= 1, "{corrupt} corrupt spill lines");
    assert_eq!((spill_bytes, queued), (0, 0), "drained");
    assert_eq!(
        (one.accepted.len() + two.accepted.len()) as u64 + one.refused + two.refused + 1,
        TOTAL,
        "every seq published once, but the one the kill interrupted"
    );
}
