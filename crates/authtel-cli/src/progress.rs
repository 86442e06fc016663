//! Progress on long work (export, purge), on stderr: a line redrawn in place when stderr is
//! a terminal, a plain line every N rows when it is not (logs, CI). No progress-bar crate:
//! one counter and a rate do not need one.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a terminal line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(200);

/// Reports how many rows a long command has done.
#[derive(Debug)]
pub(crate) struct Progress {
    verb: &'static str,
    total: Option<u64>,
    terminal: bool,
    every: u64,
    next_line: u64,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    /// Progress for `verb` ("exported"), a plain line every `every` rows off a terminal.
    pub(crate) fn new(verb: &'static str, every: u64, total: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            verb,
            total,
            terminal: std::io::stderr().is_terminal(),
            every: every.max(1),
            next_line: every.max(1),
            started: now,
            last_draw: now,
        }
    }

    fn text(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (done as f64 / secs) as u64;
        match self.total {
            Some(total) if total > 0 => format!(
                "{} {done}/{total} rows ({}%, {rate} rows/s)",
                self.verb,
                done.saturating_mul(100) / total
            ),
            _ => format!("{} {done} rows ({rate} rows/s)", self.verb),
        }
    }

    /// `done` rows so far.
    pub(crate) fn update(&mut self, done: u64) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            if self.last_draw.elapsed() >= REDRAW {
                self.last_draw = Instant::now();
                let _ = write!(err, "\r\x1b[K{}", self.text(done));
                let _ = err.flush();
            }
        } else if done >= self.next_line {
            self.next_line = (done / self.every + 1) * self.every;
            let _ = writeln!(err, "authtel: {}", self.text(done));
        }
    }

    /// The final line: how many rows, how long, how fast.
    pub(crate) fn finish(&self, done: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = (done as f64 / secs.max(1e-3)) as u64;
        let clear = if self.terminal { "\r\x1b[K" } else { "" };
        eprintln!(
            "{clear}authtel: {} {done} rows in {secs:.1}s ({rate} rows/s)",
            self.verb
        );
    }
}
