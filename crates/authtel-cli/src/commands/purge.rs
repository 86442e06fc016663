//! `authtel purge`: retention by age. `--dry-run` counts; `--yes` deletes, in time slices
//! from the oldest row to the cutoff, each holding about a twentieth of the rows so progress
//! can be shown, and each slice in statements of `--batch` rows so writers are never blocked
//! for long. Rows still pending delivery stay.

use authtel_core::audit::Timestamp;
use authtel_sql::{AuditQuery, PurgeReport};

use crate::cli::PurgeArgs;
use crate::db::{Database, with_store};
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
    let counted = with_store!(&db.store, s => s.purge_older_than(cutoff, args.batch, true).await)
        .map_err(CliError::store("counting rows to purge"))?;
    if args.dry_run {
        say!(
            "dry run: would delete {} audit rows older than {cutoff} and {} finished outbox entries; \
             run again with --yes instead of --dry-run to delete them",
            counted.events,
            counted.outbox
        );
        return Ok(Finished::Ok);
    }
    let oldest =
        with_store!(&db.store, s => s.query(&AuditQuery::new().until(cutoff).limit(1)).await)
            .map_err(CliError::store("finding the oldest row to purge"))?
            .events
            .first()
            .map(|e| e.occurred_at());
    let total = counted.events + counted.outbox;
    let mut progress = Progress::new("purged", (total / 10).max(1), Some(total));
    let mut done = PurgeReport::default();
    // Walk from the oldest row to the cutoff in time slices sized to hold about a twentieth
    // of the rows each: the step doubles while slices are small and halves when one is
    // large. Rows cluster anywhere, so a fixed split of the span would put them all in one
    // slice. A large slice takes over a tenth of the rows and a steady one over a fortieth,
    // so there are at most 50 of those, each followed by at most 63 doublings: bounded.
    let target = (counted.events / SLICES).max(u64::from(args.batch));
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
    say!(
        "deleted {} audit rows older than {cutoff} and {} finished outbox entries",
        done.events,
        done.outbox
    );
    Ok(Finished::Ok)
}
