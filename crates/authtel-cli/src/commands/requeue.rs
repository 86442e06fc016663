//! `authtel requeue`: dead → pending with a fresh attempt budget, for one record or for
//! every dead entry of a forwarder. Run it after fixing the destination.

use crate::cli::RequeueArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::say;

/// Requeues and says how many entries it moved.
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
    }
    .map_err(CliError::store("requeueing dead outbox entries"))?;
    if moved == 0 {
        say!("nothing requeued: no dead entries match");
    } else {
        say!("requeued {moved} dead entries; the relay delivers them on its next pass");
    }
    Ok(Finished::Ok)
}
