//! `authtel doctor`: one health report. Database reachable (and how fast), schema version
//! and pending migrations, then per forwarder the outbox backlog and its lag, checked
//! against `--max-lag` (exit 3 when over), the circuit breaker as the running relays report
//! it (or that none reports), and the newest purge. The breaker and relay state inform; they
//! do not change the exit code (a relay that is down shows as lag, which `--max-lag` checks).

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use authtel_sql::SqlError;
use serde_json::json;

use crate::cli::DoctorArgs;
use crate::commands::relay_health::{RelayCells, RelayView, purge_json, purge_line};
use crate::db::{Backend, Database, redact, with_store};
use crate::error::{CliError, Finished};
use crate::output::{Format, Table, json_line, stdout_error};
use crate::time::human;

/// The schema as the doctor found it.
struct Schema {
    applied: i64,
    /// The version this CLI needs, when the schema is behind it.
    expected: Option<i64>,
}

/// Checks each part in order and prints the report; a part that fails stops the report
/// with an error (exit 1).
pub(crate) async fn run(db: &Database, url: &str, args: DoctorArgs) -> Result<Finished, CliError> {
    let backend = match Backend::of(url) {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let started = Instant::now();
    with_store!(&db.store, s => s.pool().acquire().await.map(drop))
        .map_err(|cause| SqlError::Database {
            context: "connect",
            cause,
        })
        .map_err(CliError::store("reaching the database"))?;
    let connect = started.elapsed();

    let schema = match with_store!(&db.store, s => s.check_schema().await) {
        Ok(()) => Schema {
            applied: with_store!(&db.store, s => s.schema_version().await)
                .map_err(CliError::store("reading the schema version"))?,
            expected: None,
        },
        Err(SqlError::SchemaOutdated { found, expected }) => Schema {
            applied: found,
            expected: Some(expected),
        },
        Err(e) => return Err(CliError::store("checking the audit schema")(e)),
    };
    let mut states = Vec::new();
    let mut relays = Vec::new();
    let mut last_purge = None;
    if schema.expected.is_none() {
        states = with_store!(&db.store, s => s.delivery_state().await)
            .map_err(CliError::store("reading the outbox delivery state"))?;
        relays = with_store!(&db.store, s => s.relay_status().await)
            .map_err(CliError::store("reading the relay status"))?;
        last_purge = with_store!(&db.store, s => s.last_purge().await)
            .map_err(CliError::store("reading the newest purge record"))?;
        // A relay may report a forwarder that has no outbox entries yet.
        for r in &relays {
            if !states.iter().any(|s| s.forwarder == r.forwarder) {
                states.push(authtel_sql::ForwarderState {
                    forwarder: r.forwarder.clone(),
                    pending: 0,
                    dead: 0,
                    done: 0,
                    lag: Duration::ZERO,
                });
            }
        }
    }
    let now = authtel_core::audit::Timestamp::now();
    let views: Vec<RelayView> = states
        .iter()
        .map(|s| RelayView::of(&s.forwarder, &relays, now))
        .collect();
    let max_lag = states.iter().map(|s| s.lag).max().unwrap_or_default();
    let lagging: Vec<&str> = match args.max_lag {
        Some(limit) => states
            .iter()
            .filter(|s| s.lag > limit)
            .map(|s| s.forwarder.as_str())
            .collect(),
        None => Vec::new(),
    };

    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Ndjson => {
            let forwarders: Vec<_> = states
                .iter()
                .zip(&views)
                .map(|(s, v)| {
                    let mut f = serde_json::Map::new();
                    f.insert("forwarder".into(), json!(s.forwarder));
                    f.insert("pending".into(), json!(s.pending));
                    f.insert("dead".into(), json!(s.dead));
                    f.insert("lag_seconds".into(), json!(s.lag.as_secs_f64()));
                    v.json_fields(&mut f);
                    serde_json::Value::Object(f)
                })
                .collect();
            let report = json!({
                "database": redact(url),
                "backend": backend,
                "reachable": true,
                "connect_ms": connect.as_secs_f64() * 1000.0,
                "schema_version": schema.applied,
                "pending_migrations": schema.expected.map_or(0, |e| e - schema.applied),
                "forwarders": forwarders,
                "max_lag_seconds": max_lag.as_secs_f64(),
                "max_lag_threshold_seconds": args.max_lag.map(|d| d.as_secs_f64()),
                "lagging": lagging,
                "last_purge": purge_json(last_purge.as_ref()),
            });
            json_line(&mut out, &report).map_err(stdout_error)?;
        }
        Format::Table => {
            write_table(
                &mut out,
                url,
                backend,
                connect,
                &schema,
                &states,
                &views,
                args.max_lag,
                &lagging,
            )
            .map_err(stdout_error)?;
            if schema.expected.is_none() {
                writeln!(out, "last purge: {}", purge_line(last_purge.as_ref(), now))
                    .map_err(stdout_error)?;
            }
        }
    }
    out.flush().map_err(stdout_error)?;
    drop(out);
    if let Some(expected) = schema.expected {
        return Err(CliError::store("checking the audit schema")(
            SqlError::SchemaOutdated {
                found: schema.applied,
                expected,
            },
        ));
    }
    Ok(if lagging.is_empty() {
        Finished::Ok
    } else {
        Finished::LagOverThreshold
    })
}

#[allow(clippy::too_many_arguments)]
fn write_table(
    out: &mut impl Write,
    url: &str,
    backend: &str,
    connect: Duration,
    schema: &Schema,
    states: &[authtel_sql::ForwarderState],
    views: &[RelayView],
    limit: Option<Duration>,
    lagging: &[&str],
) -> std::io::Result<()> {
    writeln!(out, "database:  {} ({backend})", redact(url))?;
    writeln!(
        out,
        "reachable: yes, connected in {} ms",
        connect.as_millis()
    )?;
    match schema.expected {
        None => writeln!(
            out,
            "schema:    migration {} applied, no pending migrations",
            schema.applied
        )?,
        Some(e) => writeln!(
            out,
            "schema:    migration {} applied, {e} needed: {} pending migration(s)",
            schema.applied,
            e - schema.applied
        )?,
    }
    if schema.expected.is_some() {
        return Ok(());
    }
    writeln!(out, "outbox:")?;
    let now = authtel_core::audit::Timestamp::now();
    let mut t = Table::new(vec![
        "forwarder",
        "pending",
        "dead",
        "lag",
        "breaker",
        "relay",
        "status",
    ]);
    for (s, v) in states.iter().zip(views) {
        let over = limit.is_some_and(|l| s.lag > l);
        t.row([
            s.forwarder.clone(),
            s.pending.to_string(),
            s.dead.to_string(),
            human(s.lag),
            v.breaker_cell(now),
            v.relay_cell(),
            match (over, s.dead) {
                (true, _) => "LAGGING".to_owned(),
                (false, 0) => "ok".to_owned(),
                (false, _) => "ok (dead letters: see `authtel outbox dead`)".to_owned(),
            },
        ]);
    }
    if states.is_empty() {
        writeln!(out, "  (empty: no forwarder has entries)")?;
    } else {
        t.write(out)?;
    }
    for (s, v) in states.iter().zip(views) {
        if let Some(advice) = v.advice(&s.forwarder) {
            writeln!(out, "  note: {advice}")?;
        }
    }
    match (limit, lagging.is_empty()) {
        (Some(l), false) => writeln!(
            out,
            "verdict:   LAG over {} for {}: check that the relay runs and its destination is up (exit 3)",
            human(l),
            lagging.join(", ")
        ),
        (Some(l), true) => writeln!(out, "verdict:   ok (every lag under {})", human(l)),
        (None, _) => writeln!(out, "verdict:   ok (no --max-lag given)"),
    }
}
