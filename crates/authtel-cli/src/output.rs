//! Output formats: aligned tables for people, NDJSON for programs. Table cells are cleaned
//! of control characters, so a user agent carrying terminal escape sequences prints inert.

use std::borrow::Cow;
use std::io::{self, Write};

use authtel_core::audit::AuditEvent;
use clap::ValueEnum;
use serde::Serialize;

use crate::error::CliError;

/// How a command prints records. Standard schemas (OCSF, ECS) will be further variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for a person.
    Table,
    /// One JSON object per line.
    Ndjson,
}

/// The widest a table cell gets before it is cut with `…`.
const MAX_CELL: usize = 48;

/// `s` with control characters (escape sequences, newlines) shown as `\u{..}` and cut to
/// [`MAX_CELL`] characters.
pub(crate) fn clean(s: &str) -> Cow<'_, str> {
    let needs_escape = s.chars().any(char::is_control);
    let too_long = s.chars().count() > MAX_CELL;
    if !needs_escape && !too_long {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > MAX_CELL {
        out = out.chars().take(MAX_CELL - 1).collect();
        out.push('…');
    }
    Cow::Owned(out)
}

/// A table: a header row and cells, printed with each column as wide as its widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub(crate) fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are cleaned.
    pub(crate) fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| clean(c.as_ref()).into_owned())
                .collect(),
        );
    }

    /// Whether no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the header and the rows.
    pub(crate) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(cell.chars().count()),
                ));
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(out, &mut self.header.iter().copied())?;
        for row in &self.rows {
            line(out, &mut row.iter().map(String::as_str))?;
        }
        Ok(())
    }
}

/// The columns of an audit record in a table.
pub(crate) const EVENT_COLUMNS: [&str; 8] = [
    "occurred_at",
    "action",
    "outcome",
    "actor",
    "client_ip",
    "target",
    "reason",
    "event_id",
];

/// One record's table cells, in [`EVENT_COLUMNS`] order.
pub(crate) fn event_cells(e: &AuditEvent) -> [String; 8] {
    let opt = |s: Option<&str>| s.unwrap_or("-").to_owned();
    [
        e.occurred_at().to_string(),
        e.action().to_owned(),
        e.outcome().to_string(),
        opt(e.actor().map(|p| p.id.as_str())),
        e.client_ip()
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        opt(e.target().map(|p| p.id.as_str())),
        opt(e.reason()),
        e.id().to_string(),
    ]
}

/// Writes `value` as one JSON line.
pub(crate) fn json_line<W: Write + ?Sized>(out: &mut W, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// `println!` that returns a [`CliError`] (from the enclosing function, with `?`) instead of
/// panicking when stdout is closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::output::stdout_error)?;
    }};
}
pub(crate) use say;

/// Maps a failed write to stdout.
pub(crate) fn stdout_error(source: io::Error) -> CliError {
    CliError::Io {
        doing: "writing to stdout".to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_print_inert() {
        assert_eq!(clean("Mozilla/5.0"), "Mozilla/5.0");
        let evil = clean("x\u{1b}[2J\ny");
        assert!(!evil.contains('\u{1b}') && !evil.contains('\n'), "{evil}");
        assert!(evil.contains("\\u{1b}"));
        let long = "a".repeat(100);
        assert_eq!(clean(&long).chars().count(), MAX_CELL);
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(vec!["a", "bb"]);
        t.row(["long value", "x"]);
        t.row(["s", "y"]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a           bb\nlong value  x\ns           y\n"
        );
    }
}
