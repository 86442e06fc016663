//! PostgreSQL's text `COPY` format for audit rows: one line per row, columns in
//! [`COLUMNS`](crate::row::COLUMNS) order separated by tabs, `\N` for NULL, and backslash,
//! tab, newline and carriage return escaped. Rows are already validated (no NUL bytes), so
//! every value is representable.

use std::io::Write as _;

use authtel_core::audit::Timestamp;

use crate::row::EventRow;

/// Bytes per row to reserve up front: a typical login record is 600-700 bytes.
const ROW_CAPACITY: usize = 768;

/// `rows` as text COPY data, ready for `COPY … FROM STDIN`.
pub(crate) fn encode(rows: &[EventRow<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * ROW_CAPACITY);
    for r in rows {
        push_text(&mut out, &r.event_id);
        out.push(b'\t');
        // RFC 3339 UTC with microseconds, which timestamptz input reads exactly.
        let _ = write!(out, "{}", Timestamp::from_unix_micros(r.occurred_at));
        out.push(b'\t');
        push_text(&mut out, &r.action);
        out.push(b'\t');
        push_text(&mut out, r.outcome);
        for v in r.optional_texts() {
            out.push(b'\t');
            push_opt(&mut out, v);
        }
        out.push(b'\t');
        push_text(&mut out, &r.metadata);
        let _ = writeln!(out, "\t{}", r.schema_version);
    }
    out
}

fn push_opt(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => push_text(out, v),
        None => out.extend_from_slice(b"\\N"),
    }
}

/// Copies `v`, escaping the four bytes the text format gives a meaning; runs without them
/// are copied in one piece.
fn push_text(out: &mut Vec<u8>, v: &str) {
    let bytes = v.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::audit::AuditEvent;
    use authtel_core::outcome::Outcome;

    #[test]
    fn special_bytes_are_escaped_and_nulls_marked() {
        let mut out = Vec::new();
        push_text(&mut out, "a\\b\tc\nd\re \u{e9}\\N");
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re \xc3\xa9\\\\N");
        let mut out = Vec::new();
        push_opt(&mut out, None);
        push_opt(&mut out, Some(""));
        assert_eq!(out, b"\\N");
    }

    #[test]
    fn one_line_of_nineteen_columns_per_row() {
        let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
        e = e.with_reason("line one\nline two\twith tab");
        e = e.with_metadata("quote", "say \"hi\"\\").unwrap();
        e = e.with_occurred_at(Timestamp::from_unix_micros(1_700_000_000_123_456));
        e = e.with_tenant_id("acme");
        let rows = [
            EventRow::from_event(&e).unwrap(),
            EventRow::from_event(&e).unwrap(),
        ];
        let text = String::from_utf8(encode(&rows)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let cols: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(cols.len(), 19);
        assert_eq!(cols.len(), crate::row::COLUMNS.split(',').count());
        assert_eq!(cols[1], "2023-11-14T22:13:20.123456Z");
        assert_eq!(cols[4], "\\N");
        assert_eq!(cols[13], "line one\\nline two\\twith tab");
        assert_eq!(cols[16], "acme");
        assert_eq!(cols[17], r#"{"quote":"say \\"hi\\"\\\\"}"#);
        assert_eq!(cols[18], authtel_core::audit::SCHEMA_VERSION.to_string());
    }
}
