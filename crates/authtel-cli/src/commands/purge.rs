//! `authtel purge`: retention by age. `--dry-run` counts; `--yes` deletes and records the
//! purge in the trail (`audit.purge`, the operating-system user as actor).
//!
//! On a PostgreSQL store partitioned by month, every monthly partition that lies wholly
//! before the cutoff is dropped (instant) unless records in it are still pending delivery —
//! those partitions are kept and said so. The rest is deleted row by row: in time slices
//! from the oldest row to the cutoff, each holding about a twentieth of the rows so
//! progress can be shown, and each slice in statements of `--batch` rows so writers are
//! never blocked for long. Rows still pending delivery stay.

use authtel_core::audit::Timestamp;
use authtel_sql::trail::{PurgeAction, purge_record};
use authtel_sql::{AuditQuery, PurgeReport};

use crate::cli::PurgeArgs;
use crate::db::{Database, Dropped, Partition, with_store};
use crate::error::{CliError, Finished};
use crate::output::say;
use crate::progress::Progress;

/// About how many slices a real purge is cut into (one progress step each).
const SLICES: u64 = 20;

/// The smallest time slice: one second.
const MIN_STEP_MICROS: i64 = 1_000_000;

/// Counts, or deletes, and prints what it did.
pub(crate) async fn run(db: &Database, args: PurgeArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let cutoff = args.older_than.resolve(Timestamp::now());
    let partitions = db.partitions_older_than(cutoff).await?;
    let (whole, kept): (Vec<&Partition>, Vec<&Partition>) =
        partitions.iter().partition(|p| p.pending == 0);
    let counted = with_store!(&db.store, s => s.purge_older_than(cutoff, args.batch, true).await)
        .map_err(CliError::store("counting rows to purge"))?;
    if args.dry_run {
        let in_partitions: u64 = whole.iter().map(|p| p.rows).sum();
        for p in &whole {
            say!(
                "would drop partition {} ({} to {}): {} rows",
                p.name,
                p.from,
                p.until,
                p.rows
            );
        }
        for p in &kept {
            say!("{}", kept_line(p, p.pending));
        }
        let split = if partitions.is_empty() {
            String::new()
        } else {
            format!(
                " ({in_partitions} by dropping {} partitions, {} row by row)",
                whole.len(),
                counted.events.saturating_sub(in_partitions)
            )
        };
        say!(
            "dry run: would delete {} audit rows older than {cutoff}{split} and {} finished \
             outbox entries; run again with --yes instead of --dry-run to delete them",
            counted.events,
            counted.outbox
        );
        return Ok(Finished::Ok);
    }
    let mut dropped = Vec::new();
    let result = purge(db, &args, cutoff, &whole, &kept, counted, &mut dropped).await;
    let (actor, uid) = crate::trail::os_user();
    let action = PurgeAction {
        cutoff,
        dry_run: false,
        result: match &result {
            Ok(r) => Ok(*r),
            Err(e) => Err(crate::trail::error_text(e)),
        },
        partitions_dropped: dropped.clone(),
    };
    let recorded = match purge_record(actor, &action) {
        Ok(record) => crate::trail::record(db, record, uid).await,
        Err(e) => Err(CliError::config(
            format!("the operator audit record was refused: {e}"),
            "this is a bug in authtel-cli: report it with this message",
        )),
    };
    let done = result?;
    let by_partition = if dropped.is_empty() {
        String::new()
    } else {
        format!(
            " ({} partitions dropped: {})",
            dropped.len(),
            dropped.join(", ")
        )
    };
    say!(
        "deleted {} audit rows older than {cutoff} and {} finished outbox entries{by_partition}",
        done.events,
        done.outbox
    );
    recorded.map_err(|e| e.after("the purge was done"))?;
    Ok(Finished::Ok)
}

fn kept_line(p: &Partition, pending: u64) -> String {
    format!(
        "keeping partition {} ({} to {}): {pending} of its records are still pending delivery; \
         its other rows are deleted row by row (let the relay deliver, or requeue, then purge \
         again to drop it)",
        p.name, p.from, p.until
    )
}

/// The real purge: partitions first, then rows. `dropped` collects the partitions dropped,
/// so they are recorded even when a later step fails.
async fn purge(
    db: &Database,
    args: &PurgeArgs,
    cutoff: Timestamp,
    whole: &[&Partition],
    kept: &[&Partition],
    counted: PurgeReport,
    dropped: &mut Vec<String>,
) -> Result<PurgeReport, CliError> {
    let total = counted.events + counted.outbox;
    let mut progress = Progress::new("purged", (total / 10).max(1), Some(total));
    let mut done = PurgeReport::default();
    for p in whole {
        match db.drop_partition(&p.name).await? {
            Dropped::Yes => {
                say!("dropped partition {} ({} rows)", p.name, p.rows);
                done.events += p.rows;
                dropped.push(p.name.clone());
                progress.update(done.events);
            }
            Dropped::KeptPending(n) => say!("{}", kept_line(p, n)),
            Dropped::Missing => say!("partition {} is gone already (dropped meanwhile)", p.name),
        }
    }
    for p in kept {
        say!("{}", kept_line(p, p.pending));
    }
    let oldest =
        with_store!(&db.store, s => s.query(&AuditQuery::new().until(cutoff).limit(1)).await)
            .map_err(CliError::store("finding the oldest row to purge"))?
            .events
            .first()
            .map(|e| e.occurred_at());
    // Walk from the oldest row to the cutoff in time slices sized to hold about a twentieth
    // of the rows each: the step doubles while slices are small and halves when one is
    // large. Rows cluster anywhere, so a fixed split of the span would put them all in one
    // slice. A large slice takes over a tenth of the rows and a steady one over a fortieth,
    // so there are at most 50 of those, each followed by at most 63 doublings: bounded.
    let target = (counted.events.saturating_sub(done.events) / SLICES).max(u64::from(args.batch));
    let cutoff_micros = cutoff.unix_micros();
    let mut at = oldest.map_or(cutoff_micros, |t| t.unix_micros());
    let mut step = MIN_STEP_MICROS;
    loop {
        let end = at.saturating_add(step).min(cutoff_micros);
        let slice_end = Timestamp::from_unix_micros(end);
        let r = with_store!(&db.store, s => s.purge_older_than(slice_end, args.batch, false).await)
            .map_err(CliError::store("purging old audit rows"))?;
        done.events += r.events;
        done.outbox += r.outbox;
        progress.update(done.events + done.outbox);
        if end >= cutoff_micros {
            break;
        }
        if r.events.saturating_mul(2) <= target {
            step = step.saturating_mul(2);
        } else if r.events > target * 2 {
            step = (step / 2).max(MIN_STEP_MICROS);
        }
        at = end;
    }
    progress.finish(done.events + done.outbox);
    Ok(done)
}
