//! `authtel purge`: retention by age. `--dry-run` counts; `--yes` deletes, in time slices
//! from the oldest row to the cutoff so progress can be shown, each slice in statements of
//! `--batch` rows so writers are never blocked for long. Rows still pending delivery stay.

use authtel_core::audit::Timestamp;
use authtel_sql::{AuditQuery, PurgeReport};

use crate::cli::PurgeArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::say;
use crate::progress::Progress;

/// Time slices a real purge is cut into (one progress step each).
const SLICES: i64 = 20;

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
            .map(|e| e.occurred_at);
    let total = counted.events + counted.outbox;
    let mut progress = Progress::new("purged", (total / 10).max(1), Some(total));
    let mut done = PurgeReport::default();
    let start = oldest.map_or(cutoff.unix_micros(), |t| t.unix_micros());
    let span = cutoff.unix_micros().saturating_sub(start).max(0);
    for i in 1..=SLICES {
        let slice_end = if i == SLICES {
            cutoff
        } else {
            Timestamp::from_unix_micros(start + span / SLICES * i)
        };
        let r = with_store!(&db.store, s => s.purge_older_than(slice_end, args.batch, false).await)
            .map_err(CliError::store("purging old audit rows"))?;
        done.events += r.events;
        done.outbox += r.outbox;
        progress.update(done.events + done.outbox);
    }
    progress.finish(done.events + done.outbox);
    say!(
        "deleted {} audit rows older than {cutoff} and {} finished outbox entries",
        done.events,
        done.outbox
    );
    Ok(Finished::Ok)
}
