//! `authtel`: the operator CLI for the authtel SQL audit trail.
//!
//! Search (`query`), follow (`tail`) and export (`export`) the audit trail, run the
//! detection queries (`detect`), inspect and requeue the outbox (`outbox status`,
//! `outbox dead`, `requeue`), purge by age (`purge`) and check health (`doctor`), on SQLite
//! or PostgreSQL (`--database-url` or `DATABASE_URL`). Exit codes: 0 ok, 1 usage,
//! configuration or database error, 2 reserved for a tamper finding, 3 outbox lag over
//! `doctor --max-lag`. See docs/operations.md.
//!
//! # Feature flags
//! - `sqlite` (default): SQLite files and `sqlite:` URLs.
//! - `postgres` (default): `postgres://` URLs.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "authtel-cli needs a backend: enable the `sqlite` or `postgres` feature (both are default)"
);

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;
mod commands;
mod db;
mod error;
mod output;
mod progress;
mod time;
mod trail;

use cli::{Cli, Command};
use error::{CliError, EXIT_FAILED};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; every usage error exits 1 (clap's own
            // default, 2, is reserved for tamper findings).
            return if e.use_stderr() {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Command::Completions(args) = &cli.command {
        clap_complete::generate(
            args.shell,
            &mut Cli::command(),
            "authtel",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let Some(url) = cli.database_url.clone() else {
        let e = CliError::config(
            "no database given",
            "pass --database-url or set DATABASE_URL, e.g. /var/lib/app/audit.db or \
             postgres://ops@db.internal/app",
        );
        eprint!("{}", e.report(None));
        return ExitCode::from(EXIT_FAILED);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            let e = CliError::Io {
                doing: "starting the async runtime".to_owned(),
                source,
            };
            eprint!("{}", e.report(None));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(commands::run(&url, cli.schema.as_deref(), cli.command)) {
        Ok(finished) => finished.code(),
        // `authtel export | head`: the reader left; that is not a failure.
        Err(CliError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}", e.report(Some(&db::redact(&url))));
            ExitCode::from(EXIT_FAILED)
        }
    }
}
