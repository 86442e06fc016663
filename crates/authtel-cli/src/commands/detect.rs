//! `authtel detect`: the store's detection queries over one window, as one report.

use std::io::{BufWriter, Write};

use authtel_core::audit::{AuditEvent, Timestamp};
use serde_json::json;

use crate::cli::DetectArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::{EVENT_COLUMNS, Format, Table, event_cells, json_line, stdout_error};

/// Runs every detection and prints a section per detection (or one JSON line per finding).
pub(crate) async fn run(db: &Database, args: DetectArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let since = args.since.resolve(Timestamp::now());
    let store = &db.store;
    let bursts = with_store!(store, s => s.failed_login_bursts(since, args.min_failures).await)
        .map_err(CliError::store("querying failed-login bursts"))?;
    let first_seen = with_store!(store, s => s.first_seen_ips(since).await)
        .map_err(CliError::store("querying first-seen IPs"))?;
    let mfa = with_store!(store, s => s.mfa_disables(since).await)
        .map_err(CliError::store("querying MFA disables"))?;
    let lockouts = with_store!(store, s => s.lockouts(since).await)
        .map_err(CliError::store("querying lockouts"))?;

    let mut out = BufWriter::new(std::io::stdout().lock());
    let w = &mut out;
    match args.format {
        Format::Ndjson => {
            for b in &bursts {
                let finding = json!({
                    "finding": "failed_login_burst",
                    "client_ip": b.client_ip,
                    "failures": b.failures,
                    "first_at": b.first_at,
                    "last_at": b.last_at,
                });
                json_line(w, &finding).map_err(stdout_error)?;
            }
            for f in &first_seen {
                let finding = json!({
                    "finding": "first_seen_ip",
                    "actor_id": f.actor_id,
                    "client_ip": f.client_ip,
                    "first_seen": f.first_seen,
                });
                json_line(w, &finding).map_err(stdout_error)?;
            }
            for (kind, events) in [("mfa_disable", &mfa), ("lockout", &lockouts)] {
                for e in events {
                    let finding = json!({ "finding": kind, "event": e });
                    json_line(w, &finding).map_err(stdout_error)?;
                }
            }
        }
        Format::Table => {
            writeln!(w, "detections since {since}").map_err(stdout_error)?;
            let mut t = Table::new(vec!["client_ip", "failures", "first_at", "last_at"]);
            for b in &bursts {
                t.row([
                    b.client_ip.to_string(),
                    b.failures.to_string(),
                    b.first_at.to_string(),
                    b.last_at.to_string(),
                ]);
            }
            let title = format!(
                "failed-login bursts (at least {} failures from one IP)",
                args.min_failures
            );
            section(w, &title, &t)?;
            let mut t = Table::new(vec!["actor", "client_ip", "first_seen"]);
            for f in &first_seen {
                t.row([
                    f.actor_id.clone(),
                    f.client_ip.to_string(),
                    f.first_seen.to_string(),
                ]);
            }
            section(w, "first-seen IPs (successful logins)", &t)?;
            section(w, "MFA disables", &events_table(&mfa))?;
            section(w, "lockouts", &events_table(&lockouts))?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(Finished::Ok)
}

fn events_table(events: &[AuditEvent]) -> Table {
    let mut t = Table::new(EVENT_COLUMNS.to_vec());
    for e in events {
        t.row(event_cells(e));
    }
    t
}

fn section(out: &mut impl Write, title: &str, table: &Table) -> Result<(), CliError> {
    writeln!(out, "\n== {title}").map_err(stdout_error)?;
    if table.is_empty() {
        writeln!(out, "none").map_err(stdout_error)
    } else {
        table.write(out).map_err(stdout_error)
    }
}
