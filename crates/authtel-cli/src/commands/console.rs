//! `authtel console`: the web console of `authtel-console`, standalone. Refuses to start
//! without an access token (from `AUTHTEL_CONSOLE_TOKEN` or `--token-file`, so it never
//! shows in `ps`), listens on loopback unless `--allow-remote`, and runs until Ctrl-C.

use std::io::Write as _;

use authtel_console::{Console, ConsoleError};

use crate::cli::ConsoleArgs;
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::stdout_error;

/// The environment variable holding the access token.
const TOKEN_ENV: &str = "AUTHTEL_CONSOLE_TOKEN";

fn token(args: &ConsoleArgs) -> Result<String, CliError> {
    if let Some(path) = &args.token_file {
        return std::fs::read_to_string(path).map_err(|e| {
            CliError::config(
                format!("cannot read the console token file {}: {e}", path.display()),
                "check the path and that this user may read it (chmod 600, owned by this user)",
            )
        });
    }
    match std::env::var(TOKEN_ENV) {
        Ok(t) => Ok(t),
        Err(_) => Err(CliError::config(
            "the console has no access token, and it refuses to serve the audit trail without one",
            format!(
                "set {TOKEN_ENV} (e.g. `export {TOKEN_ENV}=$(head -c 32 /dev/urandom | base64)`) \
                 or pass --token-file PATH"
            ),
        )),
    }
}

fn console_error(e: ConsoleError) -> CliError {
    match e {
        ConsoleError::NotLoopback { addr } => CliError::config(
            format!(
                "refusing to listen on {addr}: not a loopback address, and the console speaks plain HTTP"
            ),
            "listen on 127.0.0.1:PORT and reach it through an SSH tunnel or a TLS proxy, or pass --allow-remote",
        ),
        ConsoleError::Io {
            doing,
            addr,
            source,
        } => CliError::Io {
            doing: format!("{doing} {addr}"),
            source,
        },
        e => CliError::config(e.to_string(), "see docs/console.md"),
    }
}

/// Serves until interrupted.
pub(crate) async fn run(db: &Database, args: ConsoleArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let token = token(&args)?;
    let console = with_store!(&db.store, s => Console::builder(s.clone())
        .with_token(&token)
        .map_err(console_error)?
        .with_poll_interval(args.poll_interval)
        .build())
    .map_err(console_error)?;
    let listener = authtel_console::bind(args.listen, args.allow_remote)
        .await
        .map_err(console_error)?;
    let addr = listener.local_addr().map_err(|source| CliError::Io {
        doing: "reading the console's listen address".to_owned(),
        source,
    })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "authtel console listening on http://{addr}/ (log in with the token; Ctrl-C stops it)"
        )
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;
    }
    console
        .serve_on(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(console_error)?;
    Ok(Finished::Ok)
}
