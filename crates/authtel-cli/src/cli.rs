//! The command line: every command, flag and default, as clap derive types. Parsing only;
//! each command's behaviour lives in `commands/<name>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;
use crate::time::{TimeArg, parse_duration};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage or configuration error, or the database failed (the message says what to do)
  2  reserved: a tamper finding (the future `verify` command)
  3  outbox lag over the threshold (`doctor --max-lag`)";

/// Operate the authtel SQL audit trail: search and follow it, export it, run the detection
/// queries, inspect and requeue the outbox, purge by age, and check health.
#[derive(Debug, Parser)]
#[command(name = "authtel", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub(crate) struct Cli {
    /// The audit store: a SQLite file path or `sqlite:` URL, or a `postgres://` URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,

    /// PostgreSQL schema holding the audit tables, when the application chose one.
    #[arg(long, env = "AUTHTEL_SCHEMA", global = true)]
    pub(crate) schema: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands. `verify` is planned (see docs/operations.md).
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Search the audit trail, one page at a time (oldest first).
    #[command(after_help = EXIT_CODES)]
    Query(QueryArgs),
    /// Write every matching record as NDJSON, streaming in pages (any size, constant memory).
    #[command(after_help = EXIT_CODES)]
    Export(ExportArgs),
    /// Follow new records as they are committed.
    #[command(after_help = EXIT_CODES)]
    Tail(TailArgs),
    /// Run the detection queries (failed-login bursts, first-seen IPs, MFA disables,
    /// lockouts) and print a report.
    #[command(after_help = EXIT_CODES)]
    Detect(DetectArgs),
    /// Inspect the transactional outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Put dead-lettered outbox entries back in the queue (after fixing the destination).
    /// Recorded in the trail as `audit.requeue`, with the OS user as actor.
    #[command(after_help = EXIT_CODES)]
    Requeue(RequeueArgs),
    /// Delete audit rows older than a retention age (run with --dry-run first). On a
    /// PostgreSQL store partitioned by month, whole months are dropped unless records in
    /// them are still pending delivery. `--yes` is recorded as `audit.purge`.
    #[command(after_help = EXIT_CODES)]
    Purge(PurgeArgs),
    /// One health report: database reachable, schema version, outbox lag per forwarder,
    /// circuit breakers as the running relays report them, and the last purge.
    #[command(after_help = EXIT_CODES)]
    Doctor(DoctorArgs),
    /// Serve the web console (live stream, search, timeline, outbox health) on loopback.
    /// The access token comes from AUTHTEL_CONSOLE_TOKEN or --token-file, never the
    /// command line.
    #[command(after_help = EXIT_CODES)]
    Console(ConsoleArgs),
    /// Print a shell completion script (`authtel completions bash > /etc/bash_completion.d/authtel`).
    Completions(CompletionsArgs),
}

/// Filters shared by `query`, `export` and `tail`; they combine with AND.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Filters {
    /// Only records of this tenant (never another tenant's, nor records without one).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Only records whose actor id is this.
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// Only records from this client IP.
    #[arg(long)]
    pub(crate) ip: Option<std::net::IpAddr>,
    /// Only records of this action (`auth.login.stop`).
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Only records with this outcome.
    #[arg(long, value_enum)]
    pub(crate) outcome: Option<OutcomeArg>,
    /// Only records at or after this time: RFC 3339 (`2026-11-22T10:15:30Z`) or an age
    /// (`90s`, `15m`, `24h`, `7d`) before now.
    #[arg(long)]
    pub(crate) since: Option<TimeArg>,
    /// Only records strictly before this time (same forms as --since).
    #[arg(long)]
    pub(crate) until: Option<TimeArg>,
}

/// An outcome on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutcomeArg {
    /// It worked.
    Success,
    /// It failed in an expected way.
    Failure,
    /// An authorization decision refused it.
    Denied,
    /// It broke.
    Error,
}

/// `authtel query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// Start after this cursor (printed on stderr after each page as `next page: --after …`).
    #[arg(long)]
    pub(crate) after: Option<String>,
    /// Records per page, 1 to 10000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) limit: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `authtel export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// Write here instead of stdout (written to `<FILE>.partial`, renamed when complete).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    pub(crate) format: ExportFormat,
    /// Records fetched per page; memory use is bounded by one page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) page_size: u32,
    /// Progress line on stderr every this many records (when stderr is not a terminal).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) progress_every: u64,
}

/// Formats `export` writes. Standard schemas (OCSF, ECS) will join NDJSON here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One authtel audit record (JSON) per line.
    Ndjson,
}

/// `authtel tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// How often to poll the store (50ms to 60s).
    #[arg(long, default_value = "1s", value_parser = poll_interval)]
    pub(crate) interval: Duration,
    /// Records committed this long after their timestamp are still shown (each poll looks
    /// back this far; rows already shown are skipped).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) grace: Duration,
    /// Stop after this many records.
    #[arg(long)]
    pub(crate) max_rows: Option<u64>,
    /// Stop after this long (`30s`, `5m`).
    #[arg(long = "for", value_parser = parse_duration)]
    pub(crate) run_for: Option<Duration>,
}

fn poll_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(50) || d > Duration::from_secs(60) {
        return Err(format!("{s} is outside 50ms..60s"));
    }
    Ok(d)
}

/// `authtel detect`.
#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// The window to look at: an age (`24h`) or an RFC 3339 start.
    #[arg(long, default_value = "24h")]
    pub(crate) since: TimeArg,
    /// Failed logins from one IP that make a burst.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) min_failures: u64,
    /// Output format (`ndjson`: one JSON object per finding).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `authtel outbox …`.
#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// Per forwarder: pending, retrying, dead, done, age of the oldest pending entry.
    #[command(after_help = EXIT_CODES)]
    Status(FormatArgs),
    /// List dead-lettered entries of one forwarder, with the last error.
    #[command(after_help = EXIT_CODES)]
    Dead(DeadArgs),
}

/// Just an output format.
#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `authtel outbox dead`.
#[derive(Debug, Args)]
pub(crate) struct DeadArgs {
    /// The forwarder id.
    #[arg(long)]
    pub(crate) forwarder: String,
    /// At most this many entries, oldest first.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `authtel requeue`: by event id, or every dead entry of a forwarder.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["event", "forwarder"])))]
pub(crate) struct RequeueArgs {
    /// Only the entries of this record (with --forwarder: only that forwarder's).
    #[arg(long)]
    pub(crate) event: Option<uuid::Uuid>,
    /// The forwarder whose dead entries to requeue.
    #[arg(long)]
    pub(crate) forwarder: Option<String>,
}

/// `authtel purge`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["dry_run", "yes"])))]
pub(crate) struct PurgeArgs {
    /// Retention: delete audit rows older than this age (`90d`) or RFC 3339 time. Rows still
    /// pending delivery are kept.
    #[arg(long)]
    pub(crate) older_than: TimeArg,
    /// Only count what would be deleted (and list the partitions that would be dropped).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Really delete (required unless --dry-run, so a typo never deletes).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Rows per DELETE statement, so writers are never blocked for long.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) batch: u32,
}

/// `authtel doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Exit 3 when any forwarder's oldest pending entry is older than this (`30s`, `5m`).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) max_lag: Option<Duration>,
    /// Output format (`ndjson`: the report as one JSON object).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `authtel console`.
#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// Address to listen on; loopback only unless --allow-remote (`127.0.0.1:0` picks a
    /// free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Read the access token (16 bytes or more) from this file instead of
    /// AUTHTEL_CONSOLE_TOKEN.
    #[arg(long)]
    pub(crate) token_file: Option<PathBuf>,
    /// Listen on a non-loopback address (the console speaks plain HTTP: put a TLS proxy in
    /// front).
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// How often the live stream polls for new records (50ms to 10s).
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub(crate) poll_interval: Duration,
}

/// `authtel completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
