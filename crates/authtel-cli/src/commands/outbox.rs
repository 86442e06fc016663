//! `authtel outbox status` and `authtel outbox dead`: what the relay still has to deliver,
//! per forwarder, and what it gave up on.

use std::io::{BufWriter, Write};

use serde_json::json;

use crate::cli::{DeadArgs, FormatArgs, OutboxCommand};
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::{Format, Table, json_line, stdout_error};
use crate::time::human;

/// Dispatches the outbox subcommands.
pub(crate) async fn run(db: &Database, cmd: OutboxCommand) -> Result<Finished, CliError> {
    db.require_schema().await?;
    match cmd {
        OutboxCommand::Status(args) => status(db, args).await,
        OutboxCommand::Dead(args) => dead(db, args).await,
    }
}

async fn status(db: &Database, args: FormatArgs) -> Result<Finished, CliError> {
    let states = with_store!(&db.store, s => s.delivery_state().await)
        .map_err(CliError::store("reading the outbox delivery state"))?;
    let retrying = with_store!(&db.store, s => s.retrying().await)
        .map_err(CliError::store("counting retrying outbox entries"))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut table = Table::new(vec![
        "forwarder",
        "pending",
        "retrying",
        "max_attempts",
        "dead",
        "done",
        "oldest_pending",
    ]);
    for s in &states {
        let r = retrying.iter().find(|r| r.forwarder == s.forwarder);
        let (n, max) = r.map_or((0, 0), |r| (r.retrying, r.max_attempts));
        match args.format {
            Format::Ndjson => {
                let line = json!({
                    "forwarder": s.forwarder,
                    "pending": s.pending,
                    "retrying": n,
                    "max_attempts": max,
                    "dead": s.dead,
                    "done": s.done,
                    "oldest_pending_seconds": s.lag.as_secs_f64(),
                });
                json_line(&mut out, &line).map_err(stdout_error)?;
            }
            Format::Table => table.row([
                s.forwarder.clone(),
                s.pending.to_string(),
                n.to_string(),
                max.to_string(),
                s.dead.to_string(),
                s.done.to_string(),
                if s.pending == 0 {
                    "-".to_owned()
                } else {
                    human(s.lag)
                },
            ]),
        }
    }
    if args.format == Format::Table {
        table.write(&mut out).map_err(stdout_error)?;
        if states.is_empty() {
            writeln!(out, "(the outbox is empty: no forwarder has entries)")
                .map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(Finished::Ok)
}

async fn dead(db: &Database, args: DeadArgs) -> Result<Finished, CliError> {
    let letters = with_store!(&db.store, s => s.dead_letters(&args.forwarder, args.limit).await)
        .map_err(CliError::store("reading dead letters"))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Ndjson => {
            for d in &letters {
                let line = json!({
                    "event_id": d.event_id,
                    "forwarder": d.forwarder,
                    "attempts": d.attempts,
                    "reason": d.reason,
                    "at": d.at,
                });
                json_line(&mut out, &line).map_err(stdout_error)?;
            }
        }
        Format::Table => {
            let mut t = Table::new(vec!["event_id", "attempts", "dead_since", "reason"]);
            for d in &letters {
                t.row([
                    d.event_id.to_string(),
                    d.attempts.to_string(),
                    d.at.to_string(),
                    d.reason.clone(),
                ]);
            }
            t.write(&mut out).map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(Finished::Ok)
}
