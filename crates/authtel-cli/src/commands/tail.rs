//! `authtel tail`: follows new records by polling. Each poll reads from a little before the
//! newest record shown (the grace window), because a record's timestamp is taken before its
//! transaction commits: a slow transaction's row can land behind one already shown. Rows
//! already shown are remembered only while inside the window, so memory stays bounded.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Timestamp};
use uuid::Uuid;

use crate::cli::TailArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::{EVENT_COLUMNS, Format, clean, event_cells, json_line, stdout_error};

/// Column widths of the tail's table (it cannot measure rows it has not seen yet).
const WIDTHS: [usize; 8] = [27, 28, 8, 20, 15, 20, 20, 36];

fn line(cells: &[String]) -> String {
    let mut text = String::new();
    for (i, (cell, w)) in cells.iter().zip(WIDTHS).enumerate() {
        if i > 0 {
            text.push_str("  ");
        }
        text.push_str(&format!("{:<w$}", clean(cell)));
    }
    text.trim_end().to_owned()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Polls until `--max-rows` records were shown or `--for` has passed (or forever, until
/// interrupted, with neither).
pub(crate) async fn run(db: &Database, args: TailArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let now = Timestamp::now();
    let start = args.filters.since.map_or(now, |s| s.resolve(now));
    let base = args.filters.query(now).limit(1000);
    let deadline = args.run_for.map(|d| Instant::now() + d);
    let grace = micros(args.grace);
    let mut newest = start;
    let mut shown_ids: HashMap<Uuid, Timestamp> = HashMap::new();
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Table {
        let header: Vec<String> = EVENT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        writeln!(out, "{}", line(&header)).map_err(stdout_error)?;
    }
    loop {
        let from = Timestamp::from_unix_micros(
            newest
                .unix_micros()
                .saturating_sub(grace)
                .max(start.unix_micros()),
        );
        let mut q = base.clone().from(from);
        loop {
            let page = with_store!(&db.store, s => s.query(&q).await)
                .map_err(CliError::store("polling the audit trail"))?;
            for e in &page.events {
                if shown_ids.insert(e.id(), e.occurred_at()).is_some() {
                    continue;
                }
                newest = newest.max(e.occurred_at());
                print(&mut out, args.format, e)?;
                shown += 1;
                if args.max_rows.is_some_and(|max| shown >= max) {
                    out.flush().map_err(stdout_error)?;
                    return Ok(Finished::Ok);
                }
            }
            // Rows arrive oldest first, so ids behind the window can go after every page:
            // a long --since backlog never piles up in memory.
            let horizon = newest.unix_micros().saturating_sub(grace);
            shown_ids.retain(|_, t| t.unix_micros() >= horizon);
            match page.next {
                Some(cursor) => q = q.after(cursor),
                None => break,
            }
        }
        out.flush().map_err(stdout_error)?;
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Finished::Ok);
                }
                left.min(args.interval)
            }
            None => args.interval,
        };
        tokio::time::sleep(wait).await;
    }
}

fn print(out: &mut impl Write, format: Format, e: &AuditEvent) -> Result<(), CliError> {
    match format {
        Format::Table => writeln!(out, "{}", line(&event_cells(e))),
        Format::Ndjson => json_line(out, e),
    }
    .map_err(stdout_error)
}
