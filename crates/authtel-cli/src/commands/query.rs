//! `authtel query`: one page of matching records, and the cursor of the next.

use std::io::{BufWriter, Write};

use authtel_core::audit::Timestamp;
use authtel_sql::Cursor;

use crate::cli::QueryArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::{EVENT_COLUMNS, Format, Table, event_cells, json_line, stdout_error};

/// Prints one page; the next page's cursor goes to stderr as `next page: --after …`.
pub(crate) async fn run(db: &Database, args: QueryArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let mut q = args.filters.query(Timestamp::now()).limit(args.limit);
    if let Some(after) = &args.after {
        let cursor: Cursor = after
            .parse()
            .map_err(CliError::store("reading the --after cursor"))?;
        q = q.after(cursor);
    }
    let page = with_store!(&db.store, s => s.query(&q).await)
        .map_err(CliError::store("querying the audit trail"))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Table => {
            let mut table = Table::new(EVENT_COLUMNS.to_vec());
            for e in &page.events {
                table.row(event_cells(e));
            }
            table.write(&mut out).map_err(stdout_error)?;
        }
        Format::Ndjson => {
            for e in &page.events {
                json_line(&mut out, e).map_err(stdout_error)?;
            }
        }
    }
    out.flush().map_err(stdout_error)?;
    match page.next {
        Some(cursor) => eprintln!("next page: --after {cursor}"),
        None => eprintln!("{} records, last page", page.events.len()),
    }
    Ok(Finished::Ok)
}
