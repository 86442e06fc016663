//! Unit tests of the spill store: order across segments and restarts, the size bound,
//! a failed write cut back, head segments, and arbitrary bytes never panicking.

use super::*;
use authtel_core::outcome::Outcome;
use proptest::prelude::*;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "authtel-spill-unit-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

fn events(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_metadata("seq", i).unwrap();
            e
        })
        .collect()
}

#[test]
fn appends_replay_in_order_across_segments_and_reopen() {
    let dir = temp("order");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.segment_bytes = 1024; // many segments
    let all = events(100);
    for chunk in all.chunks(7) {
        s.append(chunk).unwrap();
    }
    assert!(s.segments.len() > 3);
    let first = s.read_batch(30).unwrap();
    s.commit(&first);
    drop(s);
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    let mut seen: Vec<_> = first.events.iter().map(|e| e.id()).collect();
    loop {
        let b = s.read_batch(13).unwrap();
        if b.events.is_empty() {
            s.commit(&b);
            break;
        }
        seen.extend(b.events.iter().map(|e| e.id()));
        s.commit(&b);
    }
    // Reopening re-reads the partially replayed segment: duplicates, never gaps.
    let mut unique = Vec::new();
    for id in &seen {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    let want: Vec<_> = all.iter().map(|e| e.id()).collect();
    assert_eq!(unique, want);
    assert!(s.is_empty());
    assert_eq!(s.bytes(), 0);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn batches_crossing_segments_are_read_exactly_once() {
    let dir = temp("cross");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.segment_bytes = 700;
    let all = events(60);
    for chunk in all.chunks(3) {
        s.append(chunk).unwrap();
    }
    let mut seen = Vec::new();
    while !s.is_empty() {
        let b = s.read_batch(7).unwrap();
        seen.extend(b.events.iter().map(|e| e.id()));
        s.commit(&b);
    }
    assert_eq!(seen, all.iter().map(|e| e.id()).collect::<Vec<_>>());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn full_store_rejects_whole_batch() {
    let dir = temp("full");
    let mut s = SpillStore::open(dir.clone(), 2000, 1 << 20, FsyncPolicy::EveryBatch).unwrap();
    let e = events(40);
    let mut accepted = 0;
    for chunk in e.chunks(2) {
        match s.append(chunk) {
            Ok(()) => accepted += 2,
            Err(SpillError::Full) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(accepted > 0 && accepted < 40, "{accepted}");
    assert!(s.bytes() <= 2000);
    fs::remove_dir_all(dir).unwrap();
}

/// Reads and commits everything, returning the `seq`s and the skipped-line count.
fn drain(s: &mut SpillStore) -> (Vec<u64>, u64) {
    let mut seqs = Vec::new();
    let mut skipped = 0;
    for _ in 0..100_000 {
        let b = s.read_batch(7).unwrap();
        skipped += b.skipped;
        let done = b.events.is_empty() && b.skipped == 0;
        seqs.extend(
            b.events
                .iter()
                .filter_map(|e| e.metadata().get("seq")?.as_u64()),
        );
        s.commit(&b);
        if done {
            break;
        }
    }
    (seqs, skipped)
}

fn numbered(range: std::ops::Range<u64>) -> Vec<AuditEvent> {
    range
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_metadata("seq", i).unwrap();
            e
        })
        .collect()
}

#[test]
fn a_failed_write_is_cut_back_and_the_next_append_is_not_glued_to_it() {
    let dir = temp("partial");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.append(&numbered(0..3)).unwrap();
    // ENOSPC in the middle of the next write: 17 bytes of it reach the file.
    s.fail_next_write_after = Some(17);
    assert!(matches!(s.append(&numbered(3..6)), Err(SpillError::Io(_))));
    s.append(&numbered(6..9)).unwrap();
    let (seqs, skipped) = drain(&mut s);
    assert_eq!((seqs, skipped), ((0..3).chain(6..9).collect(), 0));
    drop(s);

    // The same after a restart, when segment lengths come from the files themselves.
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.append(&numbered(0..3)).unwrap();
    s.fail_next_write_after = Some(40);
    assert!(s.append(&numbered(3..6)).is_err());
    s.append(&numbered(6..9)).unwrap();
    drop(s);
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    let (seqs, skipped) = drain(&mut s);
    assert_eq!((seqs, skipped), ((0..3).chain(6..9).collect(), 0));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_line_whose_timestamp_has_non_ascii_bytes_is_skipped_not_a_panic() {
    let dir = temp("non-ascii");
    let good = |seq: u64| serde_json::to_string(&numbered(seq..seq + 1)[0]).unwrap();
    // A multi-byte character where the UTC offset's digits belong: a decoder that slices
    // the offset by byte would panic here (the finding: a crash loop at every start).
    let mut bad: serde_json::Value = serde_json::from_str(&good(1)).unwrap();
    bad["occurred_at"] = "2024-01-01T00:00:00+0\u{e9}00".into();
    let text = format!("{}\n{bad}\n{}\n", good(0), good(2));
    fs::write(dir.join(format!("{FIRST_SEQ:020}.jsonl")), text).unwrap();
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    assert_eq!(drain(&mut s), (vec![0, 2], 1));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_head_segment_is_replayed_before_everything_else() {
    let dir = temp("head");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.segment_bytes = 1024;
    s.append(&numbered(10..40)).unwrap();
    // Part of the spill is delivered, then an older batch arrives (a worker's in-flight
    // batch at a breaker opening): it is read first, then reading resumes where it was.
    let b = s.read_batch(5).unwrap();
    s.commit(&b);
    s.write_head(&numbered(0..3)).unwrap();
    s.write_head(&numbered(100..102))
        .unwrap_or_else(|e| panic!("{e:?}"));
    s.append(&numbered(40..45)).unwrap();
    let (seqs, skipped) = drain(&mut s);
    let want: Vec<u64> = (100..102).chain(0..3).chain(15..45).collect();
    assert_eq!((seqs, skipped), (want, 0));
    assert!(s.is_empty());
    assert_eq!(s.bytes(), 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_head_segment_survives_a_restart_in_front() {
    let dir = temp("head-restart");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::EveryBatch).unwrap();
    s.append(&numbered(5..10)).unwrap();
    s.write_head(&numbered(0..5)).unwrap();
    drop(s);
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::EveryBatch).unwrap();
    assert_eq!(drain(&mut s), ((0..10).collect(), 0));
    fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn spill_files_are_private_and_a_symlinked_segment_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let root = temp("modes");
    let dir = root.join("spill");
    let mut s = SpillStore::open(dir.clone(), 1 << 30, 1 << 20, FsyncPolicy::Never).unwrap();
    s.append(&numbered(0..1)).unwrap();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let seg = s.segments[0].path.clone();
    assert_eq!(mode(&seg), 0o600);
    // The next segment's name pointing elsewhere: refused, nothing written there.
    let target = root.join("elsewhere");
    fs::write(&target, b"").unwrap();
    symlink(&target, s.segment_path(s.next_seq)).unwrap();
    s.writer = None;
    assert!(matches!(s.append(&numbered(1..2)), Err(SpillError::Io(_))));
    assert_eq!(fs::read(&target).unwrap(), b"");
    fs::remove_dir_all(root).unwrap();
}

proptest::proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..Default::default() })]

    /// Whatever bytes a segment holds — garbage, torn or oversized lines, valid records
    /// with bytes flipped — replay reads what it can, counts the rest and never panics.
    #[test]
    fn any_segment_bytes_replay_without_panic(
        chunks in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                (0usize..400, any::<u8>()).prop_map(|(at, b)| {
                    let mut line = serde_json::to_vec(&numbered(7..8)[0]).unwrap();
                    if !line.is_empty() {
                        let i = at % line.len();
                        line[i] = b;
                    }
                    line.push(b'\n');
                    line
                }),
                Just(b"\n".to_vec()),
            ],
            0..20,
        )
    ) {
        let dir = temp("fuzz");
        let bytes: Vec<u8> = chunks.concat();
        fs::write(dir.join(format!("{:020}.jsonl", FIRST_SEQ)), &bytes).unwrap();
        let mut s = SpillStore::open(dir.clone(), 1 << 30, 256, FsyncPolicy::Never).unwrap();
        let (seqs, skipped) = drain(&mut s);
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        proptest::prop_assert!(seqs.len() as u64 + skipped <= lines);
        proptest::prop_assert!(s.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
