//! `authtel requeue`: dead → pending with a fresh attempt budget, for one record or for
//! every dead entry of a forwarder. Run it after fixing the destination. Recorded in the
//! trail as `audit.requeue` with the operating-system user as actor.

use crate::cli::RequeueArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::say;

/// Requeues, records it, and says how many entries it moved.
pub(crate) async fn run(db: &Database, args: RequeueArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let forwarder = args.forwarder.as_deref();
    let moved = match (args.event, forwarder) {
        (Some(id), f) => with_store!(&db.store, s => s.requeue_dead_event(id, f).await),
        (None, Some(f)) => with_store!(&db.store, s => s.requeue_dead(f).await),
        (None, None) => {
            return Err(CliError::config(
                "requeue needs --event or --forwarder",
                "name the record (--event ID) or the forwarder (--forwarder ID)",
            ));
        }
    };
    let (actor, uid) = crate::trail::os_user();
    let result = match &moved {
        Ok(n) => Ok(*n),
        Err(e) => Err(crate::trail::error_text(e)),
    };
    let record =
        authtel_sql::trail::requeue_record(actor, forwarder, args.event, result).map_err(|e| {
            CliError::config(
                format!("the operator audit record was refused: {e}"),
                "this is a bug in authtel-cli: report it with this message",
            )
        })?;
    let recorded = crate::trail::record(db, record, uid).await;
    let moved = moved.map_err(CliError::store("requeueing dead outbox entries"))?;
    if moved == 0 {
        say!("nothing requeued: no dead entries match");
    } else {
        say!("requeued {moved} dead entries; the relay delivers them on its next pass");
    }
    recorded.map_err(|e| e.after("the requeue was done"))?;
    Ok(Finished::Ok)
}
