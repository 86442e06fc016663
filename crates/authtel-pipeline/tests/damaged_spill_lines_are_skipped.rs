//! Garbage, truncated and oversized lines in a spill file are skipped and counted; the
//! good records around them are replayed in order; nothing panics.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
use common::{Capture, TempDir, numbered, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_lines_are_skipped_counted_and_good_ones_replayed_in_order() {
    let dir = TempDir::new("damaged");
    let spill = dir.path().join("spill").join("sql");
    std::fs::create_dir_all(&spill).unwrap();
    let good = numbered(0..6);
    let line = |i: usize| serde_json::to_string(&good[i]).unwrap();

    // An earlier run's segments: the second one ends with a line torn by a crash.
    let mut a = std::fs::File::create(spill.join("00000000000000000007.jsonl")).unwrap();
    writeln!(a, "{}", line(0)).unwrap();
    writeln!(a, "this is not json at all").unwrap();
    writeln!(a, "{}", line(1)).unwrap();
    writeln!(a, "{{\"schema_version\":1,\"id\":\"not-a-uuid\"}}").unwrap();
    writeln!(a, "{}", "x".repeat(4096)).unwrap(); // over the 1 KiB line bound below
    writeln!(a, "{}", line(2)).unwrap();
    a.write_all(&[0xff, 0xfe, 0x00, b'\n']).unwrap(); // binary garbage
    drop(a);
    let mut b = std::fs::File::create(spill.join("00000000000000000008.jsonl")).unwrap();
    writeln!(b, "{}", line(3)).unwrap();
    writeln!(b).unwrap(); // blank lines are not records and not damage
    writeln!(b, "{}", line(4)).unwrap();
    let torn = line(5);
    b.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
    drop(b);
    std::fs::write(spill.join("notes.txt"), "not a segment").unwrap();

    let dest = Arc::new(Capture::new());
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("sql", dest.clone())
                .dispatch(Dispatch::Async)
                .batch_size(2)
                .spill_max_line_bytes(1024)
                .call_timeout(Duration::from_secs(30))
                .spill_dir(dir.path().join("spill"))
                .dead_letter_dir(dir.path().join("dead")),
        )
        .build()
        .unwrap();
    let (p, d) = (pipeline.clone(), dest.clone());
    tokio::task::spawn_blocking(move || {
        assert!(
            wait_until(|| d.len() == 5 && p.metrics()[0].corrupt_spill_lines == 5),
            "{:?} {:?}",
            d.seqs(),
            p.metrics()
        );
        assert!(wait_until(|| p.metrics()[0].spill_bytes == 0));
    })
    .await
    .unwrap();
    assert_eq!(dest.seqs(), [0, 1, 2, 3, 4]);
    let m = &pipeline.metrics()[0];
    assert_eq!((m.replayed, m.corrupt_spill_lines), (5, 5), "{m:?}");
    assert!(
        spill.join("notes.txt").exists(),
        "files that are not segments are left alone"
    );
    assert!(!spill.join("00000000000000000007.jsonl").exists());
}

#[test]
fn sync_lane_replays_a_damaged_spill_on_flush() {
    let dir = TempDir::new("damaged-sync");
    let spill = dir.path().join("spill").join("log");
    std::fs::create_dir_all(&spill).unwrap();
    let good = numbered(0..2);
    let mut body = String::new();
    body.push_str(&serde_json::to_string(&good[0]).unwrap());
    body.push_str("\n{\"truncated\": \n");
    body.push_str(&serde_json::to_string(&good[1]).unwrap());
    body.push('\n');
    std::fs::write(spill.join("00000000000000000001.jsonl"), body).unwrap();
    let dest = Arc::new(Capture::new());
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("log", dest.clone())
                .dispatch(Dispatch::Sync)
                .spill_dir(dir.path().join("spill"))
                .dead_letter_dir(dir.path().join("dead")),
        )
        .build()
        .unwrap();
    pipeline
        .flush(std::time::Instant::now() + common::PATIENCE)
        .unwrap();
    assert_eq!(dest.seqs(), [0, 1]);
    assert_eq!(pipeline.metrics()[0].corrupt_spill_lines, 1);
}
