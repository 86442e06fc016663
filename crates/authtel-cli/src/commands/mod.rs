//! One module per command; [`run`] opens the store and dispatches. `verify` will be a
//! further module here, dispatched the same way.

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;
use authtel_sql::AuditQuery;

use crate::cli::{Command, Filters, OutcomeArg};
use crate::db;
use crate::error::{CliError, Finished};

mod console;
mod detect;
mod doctor;
mod export;
mod outbox;
mod purge;
mod query;
mod relay_health;
mod requeue;
mod tail;

/// Runs `command` against the store at `url`.
pub(crate) async fn run(
    url: &str,
    schema: Option<&str>,
    command: Command,
) -> Result<Finished, CliError> {
    let database = db::open(url, schema).await?;
    match command {
        Command::Query(args) => query::run(&database, args).await,
        Command::Export(args) => export::run(&database, args).await,
        Command::Tail(args) => tail::run(&database, args).await,
        Command::Detect(args) => detect::run(&database, args).await,
        Command::Outbox(cmd) => outbox::run(&database, cmd).await,
        Command::Requeue(args) => requeue::run(&database, args).await,
        Command::Purge(args) => purge::run(&database, args).await,
        Command::Doctor(args) => doctor::run(&database, url, args).await,
        Command::Console(args) => console::run(&database, args).await,
        // Handled before a database is needed (see main.rs).
        Command::Completions(_) => Ok(Finished::Ok),
    }
}

impl Filters {
    /// The store query these filters describe, times resolved against `now`.
    pub(crate) fn query(&self, now: Timestamp) -> AuditQuery {
        let mut q = AuditQuery::new();
        if let Some(tenant) = &self.tenant {
            q = q.tenant(tenant.clone());
        }
        if let Some(actor) = &self.actor {
            q = q.actor(actor.clone());
        }
        if let Some(ip) = self.ip {
            q = q.client_ip(ip);
        }
        if let Some(action) = &self.action {
            q = q.action(action.clone());
        }
        if let Some(outcome) = self.outcome {
            q = q.outcome(outcome.into());
        }
        if let Some(since) = self.since {
            q = q.from(since.resolve(now));
        }
        if let Some(until) = self.until {
            q = q.until(until.resolve(now));
        }
        q
    }
}

impl From<OutcomeArg> for Outcome {
    fn from(o: OutcomeArg) -> Outcome {
        match o {
            OutcomeArg::Success => Outcome::Success,
            OutcomeArg::Failure => Outcome::Failure,
            OutcomeArg::Denied => Outcome::Denied,
            OutcomeArg::Error => Outcome::Error,
        }
    }
}
