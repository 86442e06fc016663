//! Spill to disk and dead letters: JSON lines, one audit record per line.
//!
//! A forwarder's spill directory holds numbered segments (`00000000000000000001.jsonl`, …).
//! Appends go to the newest segment; replay reads from the oldest, and a segment is deleted
//! once every line in it was delivered. Replay therefore follows write order, across
//! restarts too. A crash in the middle of replaying a segment re-delivers that segment's
//! already-delivered lines on the next start: at-least-once, deduplicated by record id.
//!
//! A line that is not a record (garbage, cut short by a crash, longer than the line bound)
//! is skipped and counted, never a panic. After a restart new records go to a fresh
//! segment, so a torn last line can never be glued to a new one; after a failed write
//! (disk full, I/O error) the segment is cut back to its last complete line, or — when
//! even that fails — the next write starts a new segment.
//!
//! A batch a worker took from memory before anything spilled is older than the whole
//! spill; when it must spill after all (breaker open, shutdown) it goes into a new segment
//! numbered *before* the first one ([`SpillStore::write_head`]), so replay still follows
//! publish order. Numbering starts at 2^32 so there is room below.
//!
//! Directories are created 0700, segments 0600 and opened with `O_NOFOLLOW`: records
//! carry user ids and addresses.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

use authtel_core::audit::AuditEvent;

use crate::config::FsyncPolicy;

const SEGMENT_EXT: &str = "jsonl";

/// Why a spill operation failed.
#[derive(Debug)]
pub(crate) enum SpillError {
    Full,
    Io(io::Error),
    /// The lane has no spill directory.
    NoSpill,
}

/// The first segment number in an empty directory: segments for batches older than the
/// whole spill are numbered below it.
const FIRST_SEQ: u64 = 1 << 32;

struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes of complete appends (for an earlier run's segment: the file's length).
    len: u64,
    /// Bytes at the start already delivered (committed).
    start: u64,
}

/// Records read but not yet committed.
pub(crate) struct ReadBatch {
    pub(crate) events: Vec<AuditEvent>,
    /// Lines skipped while reading this batch.
    pub(crate) skipped: u64,
    /// Where the read position will be once committed.
    end: Cursor,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cursor {
    seq: u64,
    offset: u64,
}

pub(crate) struct SpillStore {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    max_line: usize,
    fsync: FsyncPolicy,
    last_sync: Instant,
    segments: VecDeque<Segment>,
    writer: Option<(u64, File)>,
    next_seq: u64,
    read: Cursor,
    total_bytes: u64,
    /// Written since the last sync.
    unsynced: bool,
    buf: Vec<u8>,
    /// Test hook: the next write puts this many bytes in the file, then fails like ENOSPC.
    #[cfg(test)]
    fail_next_write_after: Option<usize>,
}

impl SpillStore {
    /// Opens (creating) `dir`, finding segments left by an earlier run.
    pub(crate) fn open(
        dir: PathBuf,
        max_bytes: u64,
        max_line: usize,
        fsync: FsyncPolicy,
    ) -> io::Result<SpillStore> {
        crate::files::create_private_dir(&dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
                continue;
            }
            let Some(seq) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata()?.len();
            segments.push(Segment {
                seq,
                path,
                len,
                start: 0,
            });
        }
        segments.sort_by_key(|s| s.seq);
        let next_seq = segments.last().map_or(FIRST_SEQ, |s| s.seq + 1);
        let total_bytes = segments.iter().map(|s| s.len).sum();
        let read = Cursor {
            seq: segments.first().map_or(next_seq, |s| s.seq),
            offset: 0,
        };
        Ok(SpillStore {
            dir,
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(64 << 10, 16 << 20),
            max_line,
            fsync,
            last_sync: Instant::now(),
            segments: segments.into(),
            writer: None,
            next_seq,
            read,
            total_bytes,
            unsynced: false,
            buf: Vec::new(),
            #[cfg(test)]
            fail_next_write_after: None,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Appends `events` as one write and syncs it as the fsync policy says.
    #[cfg(test)]
    pub(crate) fn append(&mut self, events: &[AuditEvent]) -> Result<(), SpillError> {
        self.write(events)?;
        self.sync_if_due().map_err(SpillError::Io)
    }

    /// Appends `events` as one write (all or nothing with respect to the size bound) and
    /// returns how many. The write reaches the operating system; call
    /// [`sync_if_due`](Self::sync_if_due) afterwards for the fsync policy — separately, so
    /// a caller can let go of other locks before waiting on the disk.
    pub(crate) fn write<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e AuditEvent>,
    ) -> Result<usize, SpillError> {
        let count = self.encode(events)?;
        if count == 0 {
            return Ok(0);
        }
        let n = self.buf.len() as u64;
        if self.total_bytes + n > self.max_bytes {
            return Err(SpillError::Full);
        }
        let rotate = match (&self.writer, self.segments.back()) {
            (Some((seq, _)), Some(last)) => last.seq != *seq || last.len >= self.segment_bytes,
            _ => true,
        };
        if rotate {
            let seq = self.next_seq;
            self.next_seq += 1;
            let file = self.create_segment(seq)?;
            self.segments.push_back(Segment {
                seq,
                path: self.segment_path(seq),
                len: 0,
                start: 0,
            });
            self.writer = Some((seq, file));
        }
        let good_len = self.segments.back().map_or(0, |s| s.len);
        let (_, file) = self.writer.as_mut().expect("writer set above");
        if let Err(e) = write_bytes(
            file,
            &self.buf,
            #[cfg(test)]
            self.fail_next_write_after.take(),
        ) {
            // Bytes of a failed write must not stay in front of the next append: cut the
            // segment back to its last complete line, or start a new segment next time.
            if file.set_len(good_len).is_err() {
                self.writer = None;
            }
            return Err(SpillError::Io(e));
        }
        if let Some(last) = self.segments.back_mut() {
            last.len += n;
        }
        self.total_bytes += n;
        self.unsynced = true;
        Ok(count)
    }

    /// Writes `events` into a new segment before every other one: they are older than
    /// everything spilled (see the module docs). Replay reads them first.
    pub(crate) fn write_head(&mut self, events: &[AuditEvent]) -> Result<usize, SpillError> {
        let Some(first) = self.segments.front() else {
            return self.write(events);
        };
        let Some(seq) = first.seq.checked_sub(1) else {
            return Err(SpillError::Io(io::Error::other(
                "spill segment numbers leave no room for an older batch",
            )));
        };
        let count = self.encode(events)?;
        if count == 0 {
            return Ok(0);
        }
        let n = self.buf.len() as u64;
        if self.total_bytes + n > self.max_bytes {
            return Err(SpillError::Full);
        }
        let path = self.segment_path(seq);
        let mut file = self.create_segment(seq)?;
        let written = write_bytes(
            &mut file,
            &self.buf,
            #[cfg(test)]
            self.fail_next_write_after.take(),
        )
        .and_then(|()| {
            if self.fsync == FsyncPolicy::Never {
                Ok(())
            } else {
                file.sync_data()
            }
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(SpillError::Io(e));
        }
        self.segments.push_front(Segment {
            seq,
            path,
            len: n,
            start: 0,
        });
        self.read = Cursor { seq, offset: 0 };
        self.total_bytes += n;
        Ok(count)
    }

    fn encode<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e AuditEvent>,
    ) -> Result<usize, SpillError> {
        self.buf.clear();
        let mut count = 0;
        for e in events {
            serde_json::to_writer(&mut self.buf, e)
                .map_err(|e| SpillError::Io(io::Error::other(e)))?;
            self.buf.push(b'\n');
            count += 1;
        }
        Ok(count)
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{SEGMENT_EXT}"))
    }

    fn create_segment(&self, seq: u64) -> Result<File, SpillError> {
        let file =
            crate::files::open_private_append(&self.segment_path(seq)).map_err(SpillError::Io)?;
        if self.fsync != FsyncPolicy::Never {
            // The new file's directory entry must survive a crash too.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(file)
    }

    /// Syncs the last writes if the fsync policy asks for it now.
    pub(crate) fn sync_if_due(&mut self) -> io::Result<()> {
        let due = self.unsynced
            && match self.fsync {
                FsyncPolicy::EveryBatch => true,
                FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
                FsyncPolicy::Never => false,
            };
        if due && let Some((_, file)) = &self.writer {
            file.sync_data()?;
            self.last_sync = Instant::now();
            self.unsynced = false;
        }
        Ok(())
    }

    /// Syncs the open segment (flush and shutdown).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if let Some((_, f)) = &self.writer
            && self.fsync != FsyncPolicy::Never
        {
            f.sync_data()?;
            self.last_sync = Instant::now();
            self.unsynced = false;
        }
        Ok(())
    }

    /// Reads up to `max` records from the read position without consuming them.
    pub(crate) fn read_batch(&mut self, max: usize) -> io::Result<ReadBatch> {
        let mut events = Vec::new();
        let mut skipped = 0;
        let mut cursor = self.read;
        let mut idx = self
            .segments
            .iter()
            .position(|s| s.seq >= cursor.seq)
            .unwrap_or(self.segments.len());
        if let Some(seg) = self.segments.get(idx)
            && seg.seq != cursor.seq
        {
            cursor = Cursor {
                seq: seg.seq,
                offset: seg.start,
            };
        }
        let mut line = Vec::new();
        while events.len() < max && idx < self.segments.len() {
            let seg = &self.segments[idx];
            let mut file = BufReader::new(crate::files::open_read(&seg.path)?);
            file.seek(SeekFrom::Start(cursor.offset))?;
            // `len` counts complete appends (and, for an earlier run's segment, the file).
            let limit = seg.len;
            while events.len() < max && cursor.offset < limit {
                line.clear();
                let (read, complete, oversized) = read_line(&mut file, &mut line, self.max_line)?;
                if read == 0 {
                    break;
                }
                cursor.offset += read as u64;
                if oversized || !complete {
                    skipped += 1;
                    continue;
                }
                let bytes = trim_newline(&line);
                match decode(bytes) {
                    Some(e) => events.push(e),
                    None if bytes.iter().all(u8::is_ascii_whitespace) => {}
                    None => skipped += 1,
                }
            }
            if events.len() >= max {
                break;
            }
            idx += 1;
            if let Some(next) = self.segments.get(idx) {
                cursor = Cursor {
                    seq: next.seq,
                    offset: next.start,
                };
            }
        }
        Ok(ReadBatch {
            events,
            skipped,
            end: cursor,
        })
    }

    /// Consumes what `batch` read: deletes finished segments.
    pub(crate) fn commit(&mut self, batch: &ReadBatch) {
        self.read = batch.end;
        while let Some(front) = self.segments.front() {
            let finished = front.seq < self.read.seq
                || (front.seq == self.read.seq && self.read.offset >= front.len);
            if finished {
                if self.writer.as_ref().map(|w| w.0) == Some(front.seq) {
                    self.writer = None;
                }
                let _ = fs::remove_file(&front.path);
                self.total_bytes = self.total_bytes.saturating_sub(front.len);
                let popped = self.segments.pop_front().map_or(0, |s| s.seq);
                // Only a cursor inside the deleted segment moves; one already in a later
                // segment keeps its offset.
                if self.read.seq <= popped {
                    self.read = self.segments.front().map_or(
                        Cursor {
                            seq: self.next_seq,
                            offset: 0,
                        },
                        |s| Cursor {
                            seq: s.seq,
                            offset: s.start,
                        },
                    );
                }
            } else {
                break;
            }
        }
        // Remember how far the segment being read was delivered: a head segment written
        // later is read first, and reading comes back here afterwards.
        let read = self.read;
        if let Some(seg) = self.segments.iter_mut().find(|s| s.seq == read.seq) {
            seg.start = read.offset;
        }
    }
}

/// Reads one line, keeping at most `max` bytes of it. Returns (bytes consumed, ended with
/// a newline, longer than `max`).
fn read_line(
    r: &mut impl BufRead,
    out: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool, bool)> {
    let mut consumed = 0;
    let mut oversized = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, false, oversized));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if !oversized && out.len() + n <= max + 1 {
            out.extend_from_slice(chunk);
        } else {
            oversized = true;
            out.clear();
        }
        r.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, true, oversized));
        }
    }
}

/// Decodes one spill line. A decoder that panics on bad bytes (a bug, wherever it is) makes
/// the line unreadable — counted and skipped — instead of taking the worker down and
/// crash-looping replay on the same line at every start.
pub(crate) fn decode(line: &[u8]) -> Option<AuditEvent> {
    std::panic::catch_unwind(|| serde_json::from_slice::<AuditEvent>(line).ok())
        .ok()
        .flatten()
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Writes `buf` (tests: only its first `fail_after` bytes, then fails like a full disk).
fn write_bytes(
    file: &mut File,
    buf: &[u8],
    #[cfg(test)] fail_after: Option<usize>,
) -> io::Result<()> {
    #[cfg(test)]
    if let Some(k) = fail_after {
        file.write_all(&buf[..k.min(buf.len())])?;
        return Err(io::Error::other("injected fault: no space left on device"));
    }
    file.write_all(buf)
}

#[cfg(test)]
#[path = "spill_tests.rs"]
mod tests;
