//! Dead letters: batches given up on, appended to `<dir>/<forwarder>.dead.jsonl`, one
//! record per line with why (`failed_at`, `reason`, `attempts`, `event`). The directory is
//! one the application names (`dead_letter_dir`, or its `spill_dir`); there is no default
//! under a shared temporary directory. See [`files`](crate::files) for the modes.
//!
//! [`read_dead_letters`] reads such a file back for
//! [`Pipeline::replay_dead_letters`](crate::Pipeline::replay_dead_letters).

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use authtel_core::audit::AuditEvent;

use crate::files::{create_private_dir, file_safe, open_private_append, open_read};

#[derive(Debug)]
pub(crate) struct DeadLetter {
    path: PathBuf,
}

impl DeadLetter {
    pub(crate) fn open(dir: &Path, forwarder: &str) -> io::Result<DeadLetter> {
        create_private_dir(dir)?;
        let path = dir.join(format!("{}.dead.jsonl", file_safe(forwarder)));
        open_private_append(&path)?;
        Ok(DeadLetter { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write(
        &self,
        events: &[AuditEvent],
        reason: &str,
        attempts: u32,
    ) -> io::Result<()> {
        let failed_at = authtel_core::audit::Timestamp::from(SystemTime::now()).to_string();
        let mut buf = Vec::new();
        for event in events {
            let line = serde_json::json!({
                "failed_at": failed_at,
                "reason": reason,
                "attempts": attempts,
                "event": event,
            });
            serde_json::to_writer(&mut buf, &line).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let mut f = open_private_append(&self.path)?;
        f.write_all(&buf)?;
        f.sync_data()
    }
}

/// The records of a dead-letter file, in file order, and how many lines were unreadable.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("authtel-doc-dl-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("kafka.dead.jsonl");
/// std::fs::write(&path, "not json\n").unwrap();
/// let read = authtel_pipeline::read_dead_letters(&path).unwrap();
/// assert_eq!((read.events.len(), read.unreadable_lines), (0, 1));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct DeadLetters {
    /// The records, each with the id it had (a re-send is idempotent).
    pub events: Vec<AuditEvent>,
    /// Lines that were not a dead-letter entry (garbage, a line torn by a crash).
    pub unreadable_lines: u64,
}

/// Reads a dead-letter file written by the pipeline. Unreadable lines are counted and
/// skipped, never a panic.
pub fn read_dead_letters(path: &Path) -> Result<DeadLetters, crate::DeadLetterError> {
    let io_err = |source| crate::DeadLetterError::Read {
        path: path.to_owned(),
        source,
    };
    let file = open_read(path).map_err(io_err)?;
    let mut out = DeadLetters::default();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(io_err)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match decode_line(&line) {
            Some(e) => out.events.push(e),
            None => out.unreadable_lines += 1,
        }
    }
    Ok(out)
}

fn decode_line(line: &[u8]) -> Option<AuditEvent> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let event = serde_json::to_vec(v.get("event")?).ok()?;
    crate::spill::decode(&event)
}
