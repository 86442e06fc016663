//! `authtel export` of 1,000,000 SQLite rows stays in constant memory: the child's peak
//! resident set (VmHWM, polled from /proc) stays far under a bound that a whole-table
//! buffer would blow through. Also measures (prints, never asserts) export rows/s and the
//! p50 of a 100-row query by actor on the same table.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use authtel_core::audit::Timestamp;
use authtel_sql::AuditQuery;
use support::{Backend, Fixture, Store, command};

const ROWS: u64 = 1_000_000;
/// Far above the expected few MiB (one 1000-row page plus a 256 KiB buffer), far below the
/// ~400 MiB the rows would take as records in memory.
const PEAK_BOUND_KIB: u64 = 64 * 1024;

/// Seeds `ROWS` rows in one statement (one transaction): 1000 actors, one row per 10 ms.
fn seed(f: &Fixture, start: Timestamp) {
    let Store::Sqlite(store) = &f.store else {
        unreachable!("SQLite fixture");
    };
    let sql = format!(
        "INSERT INTO audit_events (event_id, occurred_at, action, outcome, actor_id, actor_type, \
         client_ip, user_agent, metadata, schema_version) \
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         SELECT printf('00000000-0000-7000-8000-%012x', i), {} + i * 10000, 'auth.login.stop', \
         CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END, 'u_' || (i % 1000), 'user', \
         '203.0.113.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64)', \
         '{{\"method\":\"password\"}}', 1 FROM n",
        ROWS - 1,
        start.unix_micros()
    );
    let done = f.block_on(async {
        use authtel_sql::sqlx::{AssertSqlSafe, query};
        // One connection with a cache that holds the indexes: far fewer page writes.
        // The IP and action indexes play no part here; the actor index is rebuilt after
        // the insert (one sort instead of a million B-tree insertions), for the query below.
        let mut conn = store.pool().acquire().await.unwrap();
        for stmt in [
            "PRAGMA cache_size = -262144",
            "DROP INDEX audit_events_ip_time",
            "DROP INDEX audit_events_action_time",
            "DROP INDEX audit_events_actor_time",
        ] {
            query(stmt).execute(&mut *conn).await.unwrap();
        }
        let done = query(AssertSqlSafe(sql)).execute(&mut *conn).await.unwrap();
        query("CREATE INDEX audit_events_actor_time ON audit_events (actor_id, occurred_at)")
            .execute(&mut *conn)
            .await
            .unwrap();
        done
    });
    assert_eq!(done.rows_affected(), ROWS);
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn export_of_a_million_rows_runs_in_constant_memory() {
    let f = Fixture::new(Backend::Sqlite, "million", &[]).unwrap();
    let started = Instant::now();
    seed(&f, Timestamp::from_unix_micros(1_700_000_000_000_000));
    eprintln!("seeded {ROWS} rows in {:?}", started.elapsed());

    let out = support::temp_db("million").with_extension("ndjson");
    let mut child = command(&[
        "--database-url",
        &f.url,
        "export",
        "--output",
        out.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut peak = 0u64;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "export did not finish in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    eprintln!(
        "export peak RSS (VmHWM) {peak} KiB; {}",
        stderr.lines().last().unwrap_or("")
    );
    assert!(peak > 0, "no /proc reading of the child");
    assert!(
        peak < PEAK_BOUND_KIB,
        "export peak RSS {peak} KiB over {PEAK_BOUND_KIB} KiB"
    );
    assert!(
        stderr.contains(&format!("exported {ROWS} rows in")),
        "{stderr}"
    );
    assert!(
        stderr.contains("authtel: exported 100000 rows"),
        "progress lines: {stderr}"
    );

    let mut lines = 0u64;
    let mut last = String::new();
    for line in BufReader::new(std::fs::File::open(&out).unwrap()).lines() {
        last = line.unwrap();
        lines += 1;
    }
    assert_eq!(lines, ROWS);
    assert!(
        last.contains(&format!("00000000-0000-7000-8000-{:012x}", ROWS - 1)),
        "{last}"
    );
    std::fs::remove_file(&out).unwrap();

    // Query by actor: 100 of the 1000 rows of one actor, through the store (in-process).
    let Store::Sqlite(store) = &f.store else {
        unreachable!()
    };
    let q = AuditQuery::new().actor("u_42").limit(100);
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let page = f.block_on(store.query(&q)).unwrap();
            assert_eq!(page.events.len(), 100);
            t.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "query by actor on {ROWS} rows, p50 over 20 runs (in-process): {:?}",
        times[10]
    );
}
