//! Dead letters hold user ids and addresses: they go only where the application said
//! (no default under a shared temporary directory), in a 0700 directory, 0600 files, and
//! a dead-letter file name that is a symlink is refused rather than followed. An operator
//! can replay a dead-letter file into a forwarder once the cause is fixed.
#![cfg(unix)]

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::Arc;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_pipeline::{BuildError, Dispatch, ForwarderConfig, Pipeline, read_dead_letters};
use common::{Capture, TempDir, numbered};

/// Refuses every record for good ("record too large").
#[derive(Debug)]
struct Refuses;

impl Forwarder for Refuses {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Permanent,
                "record too large for topic audit",
            ))
        })
    }
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn dead_letters_are_private_then_replayed_with_their_ids() {
    let root = TempDir::new("dead-modes");
    let dir = root.path().join("var/dead");
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::new("kafka", Refuses)
                .dispatch(Dispatch::Sync)
                .dead_letter_dir(&dir),
        )
        .build()
        .unwrap();
    let sent = numbered(0..5);
    for e in sent.clone() {
        p.publish(e).unwrap();
    }
    assert_eq!(p.metrics()[0].dead_lettered, 5);
    let file = dir.join("kafka.dead.jsonl");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("var")), 0o700);
    assert_eq!(mode(&file), 0o600);

    // The cause is fixed: move the file aside and replay it into a healthy forwarder.
    let aside = dir.join("kafka.dead.replaying");
    std::fs::rename(&file, &aside).unwrap();
    let read = read_dead_letters(&aside).unwrap();
    assert_eq!((read.events.len(), read.unreadable_lines), (5, 0));
    let dest = Arc::new(Capture::new());
    let healthy = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("kafka", dest.clone()).dispatch(Dispatch::Sync))
        .build()
        .unwrap();
    assert_eq!(healthy.replay_dead_letters("kafka", &aside).unwrap(), 5);
    assert_eq!(dest.ids(), sent.iter().map(|e| e.id()).collect::<Vec<_>>());
    let unknown = healthy.replay_dead_letters("sql", &aside).unwrap_err();
    assert!(unknown.to_string().contains("kafka"), "{unknown}");
}

#[test]
fn a_symlinked_dead_letter_file_is_refused_at_build() {
    let root = TempDir::new("dead-symlink");
    let target = root.path().join("somewhere-else");
    std::fs::write(&target, b"").unwrap();
    symlink(&target, root.path().join("kafka.dead.jsonl")).unwrap();
    let err = Pipeline::builder()
        .forwarder(
            ForwarderConfig::new("kafka", Refuses)
                .dispatch(Dispatch::Sync)
                .dead_letter_dir(root.path()),
        )
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::Directory { forwarder, .. } if forwarder == "kafka"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"",
        "nothing written through the link"
    );
}

#[test]
fn without_a_directory_nothing_goes_to_a_shared_temporary_path() {
    let id = format!("refuses-{}", uuid::Uuid::now_v7().simple());
    let p = Pipeline::builder()
        .forwarder(ForwarderConfig::new(id.clone(), Refuses).dispatch(Dispatch::Sync))
        .build()
        .unwrap();
    p.publish(numbered(0..1).remove(0)).unwrap();
    let m = &p.metrics()[0];
    assert_eq!(
        (m.dead_lettered, m.dropped),
        (0, 1),
        "counted, not silently lost: {m:?}"
    );
    let old_default = std::env::temp_dir()
        .join("authtel-dead-letter")
        .join(format!("{id}.dead.jsonl"));
    assert!(!old_default.exists(), "{old_default:?}");
}

#[test]
fn a_spill_dir_also_keeps_the_dead_letters() {
    let root = TempDir::new("dead-in-spill");
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::new("kafka", Refuses)
                .dispatch(Dispatch::Sync)
                .spill_dir(root.path()),
        )
        .build()
        .unwrap();
    p.publish(numbered(0..1).remove(0)).unwrap();
    assert_eq!(p.metrics()[0].dead_lettered, 1);
    let read = read_dead_letters(&root.path().join("kafka.dead.jsonl")).unwrap();
    assert_eq!(read.events.len(), 1);
}
