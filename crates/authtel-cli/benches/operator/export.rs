//! `authtel export --output /dev/null` over the whole seeded table (the CLI's streaming
//! export: pages of 1000 by cursor, NDJSON through a 256 KiB buffer), as a child process:
//! wall time → rows/s, and the child's peak resident set (`VmHWM`).
//!
//! Baseline, also a child process (this bench binary run with `--raw-export URL`): the same
//! rows read through one plain sqlx stream (`SELECT … ORDER BY occurred_at, event_id`) and
//! written with serde_json as flat objects of the columns (metadata as a JSON string, not
//! parsed), to /dev/null through the same buffer size.

use std::io::{BufWriter, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authtel_sql::sqlx::{self, Row};
use futures_util::TryStreamExt;

/// The argument that turns this binary into the baseline exporter.
pub(crate) const RAW_EXPORT_ARG: &str = "--raw-export";

/// Output buffer, as `authtel export` uses.
const BUFFER: usize = 256 * 1024;

/// One export run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExportRun {
    pub(crate) rows_per_s: f64,
    pub(crate) peak_rss_kib: u64,
}

/// The peak resident set of process `pid` so far (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` to completion (bounded: 15 minutes), with its stderr; returns the wall time,
/// the child's peak RSS and its stderr.
///
/// The peak is `VmHWM` polled from /proc every 5 ms, not `ru_maxrss`: std spawns with
/// `CLONE_VM`, and Linux carries the parent's high-water mark into the child's
/// `ru_maxrss` across `exec`, so that would report this bench's own peak.
fn run_child(mut cmd: Command) -> (Duration, u64, String) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let deadline = started + Duration::from_secs(900);
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the export did not finish in 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "the export failed: {stderr}");
    assert!(peak > 0, "no /proc reading of the child");
    (elapsed, peak, stderr)
}

/// `authtel --database-url URL export --output /dev/null`.
pub(crate) fn cli(url: &str, rows: u64) -> ExportRun {
    let mut cmd = Command::new(crate::AUTHTEL);
    cmd.args(["--database-url", url, "export", "--output", "/dev/null"]);
    let (took, peak, stderr) = run_child(cmd);
    assert!(
        stderr.contains(&format!("exported {rows} rows in")),
        "authtel export did not report {rows} rows: {stderr}"
    );
    ExportRun {
        rows_per_s: rows as f64 / took.as_secs_f64(),
        peak_rss_kib: peak,
    }
}

/// This binary with `--raw-export URL`.
pub(crate) fn raw(url: &str, rows: u64) -> ExportRun {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args([RAW_EXPORT_ARG, url]);
    let (took, peak, stderr) = run_child(cmd);
    assert!(
        stderr.contains(&format!("raw export: {rows} rows")),
        "the raw export did not report {rows} rows: {stderr}"
    );
    ExportRun {
        rows_per_s: rows as f64 / took.as_secs_f64(),
        peak_rss_kib: peak,
    }
}

/// A row as a hand-written exporter writes it: the columns, borrowed.
#[derive(serde::Serialize)]
struct RawRecord<'r> {
    event_id: &'r str,
    occurred_at: i64,
    action: &'r str,
    outcome: &'r str,
    actor_id: Option<&'r str>,
    actor_type: Option<&'r str>,
    target_id: Option<&'r str>,
    target_type: Option<&'r str>,
    session_id: Option<&'r str>,
    client_ip: Option<&'r str>,
    user_agent: Option<&'r str>,
    resource: Option<&'r str>,
    operation: Option<&'r str>,
    reason: Option<&'r str>,
    span_id: Option<&'r str>,
    trace_id: Option<&'r str>,
    metadata: &'r str,
    schema_version: i64,
}

macro_rules! raw_record {
    ($r:expr) => {
        RawRecord {
            event_id: $r.try_get(0)?,
            occurred_at: $r.try_get(1)?,
            action: $r.try_get(2)?,
            outcome: $r.try_get(3)?,
            actor_id: $r.try_get(4)?,
            actor_type: $r.try_get(5)?,
            target_id: $r.try_get(6)?,
            target_type: $r.try_get(7)?,
            session_id: $r.try_get(8)?,
            client_ip: $r.try_get(9)?,
            user_agent: $r.try_get(10)?,
            resource: $r.try_get(11)?,
            operation: $r.try_get(12)?,
            reason: $r.try_get(13)?,
            span_id: $r.try_get(14)?,
            trace_id: $r.try_get(15)?,
            metadata: $r.try_get(16)?,
            schema_version: $r.try_get(17)?,
        }
    };
}

/// The baseline exporter's body: streams every row of `url`'s table to /dev/null; prints
/// `raw export: N rows` on stderr.
pub(crate) fn raw_export_main(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let file = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let mut out = BufWriter::with_capacity(BUFFER, file);
    let mut n = 0u64;
    rt.block_on(async {
        if url.starts_with("postgres") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            let sql = format!(
                "SELECT {} FROM audit_events ORDER BY occurred_at, event_id",
                crate::query::PG_COLUMNS
            );
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&pool);
            while let Some(r) = rows.try_next().await? {
                serde_json::to_writer(&mut out, &raw_record!(r))?;
                out.write_all(b"\n")?;
                n += 1;
            }
        } else {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            let sql = format!(
                "SELECT {} FROM audit_events ORDER BY occurred_at, event_id",
                crate::query::SQLITE_COLUMNS
            );
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&pool);
            while let Some(r) = rows.try_next().await? {
                serde_json::to_writer(&mut out, &raw_record!(r))?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    out.flush()?;
    eprintln!("raw export: {n} rows");
    Ok(())
}
