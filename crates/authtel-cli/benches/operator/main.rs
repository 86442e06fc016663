//! The operator surface's numbers (issue 16), as JSON rows in
//! `$AUTHTEL_BENCH_DIR/operator.jsonl` for `cargo xtask bench`:
//!
//! - `cli_query/by_actor_p50/<backend>_<rows>` and `…_p99`: the first page of
//!   `authtel query --actor X` (the store call the command makes), in ms, over hundreds of
//!   distinct actors, against the same SELECT written by hand through sqlx (baseline,
//!   alternated actor by actor). Target: ≤ 10 ms p50 on 1,000,000 rows.
//! - `cli_query/by_primary_key_p50/…`: one row by id through sqlx, for scale.
//! - `cli_query/command_p50/…`: the whole `authtel query --actor X --format ndjson`
//!   process (start, connect, schema check, query, output).
//! - `cli_export/rows_per_s/…` and `cli_export/peak_rss_kib/…`: `authtel export --output
//!   /dev/null` over the whole table, against a plain sqlx stream written with serde_json
//!   (both child processes; ratio > 1 on rows/s means the CLI is faster).
//!
//! `<backend>` is `sqlite` (a temporary file) or `postgres` (a database created for the run
//! on `DATABASE_URL`'s server and dropped afterwards; skipped with a printed line when
//! `DATABASE_URL` is unset). `<rows>` is `1m`, or `100k` with `AUTHTEL_BENCH_QUICK=1`. The
//! table is seeded once per backend (see `seed.rs`: generated in the database,
//! checked column for column against rows the store's own batch writer wrote). Every row
//! also carries `rows`, `quick` and the load average when it was measured.
//!
//! Not criterion: seeding a million rows per sample is not an option, and percentiles over
//! distinct actors are the figure asked for.

use std::io::Write as _;
use std::time::Instant;

mod export;
mod query;
mod seed;

use query::{Db, QueryTimes};

/// The CLI binary.
const AUTHTEL: &str = env!("CARGO_BIN_EXE_authtel");

/// The 1-minute load average.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The rows of one run, written at the end.
struct Rows {
    lines: Vec<serde_json::Value>,
    rows: u64,
    quick: bool,
}

impl Rows {
    fn push(&mut self, case: String, value: f64, unit: &str, baseline: Option<(&str, f64)>) {
        let mut v = serde_json::json!({
            "case": case, "value": value, "unit": unit,
            "baseline": null, "baseline_value": null, "ratio": null,
            "rows": self.rows, "quick": self.quick, "load1": load1(),
        });
        if let Some((name, b)) = baseline {
            v["baseline"] = name.into();
            v["baseline_value"] = b.into();
            v["ratio"] = (value / b).into();
        }
        println!("{v}");
        self.lines.push(v);
    }

    fn query(&mut self, param: &str, t: &QueryTimes) {
        let met = if t.store.p50 <= 10.0 { "met" } else { "missed" };
        eprintln!(
            "operator bench: query by actor on {param}: p50 {:.3} ms over {} actors \
             (target ≤ 10 ms p50: {met})",
            t.store.p50, t.actors
        );
        let raw = "raw sqlx SELECT … WHERE actor_id = ? ORDER BY occurred_at, event_id LIMIT 100";
        self.push(
            format!("cli_query/by_actor_p50/{param}"),
            t.store.p50,
            "ms",
            Some((raw, t.raw.p50)),
        );
        if let Some(last) = self.lines.last_mut() {
            last["target"] = "≤ 10 ms p50".into();
            last["target_met"] = (t.store.p50 <= 10.0).into();
        }
        self.push(
            format!("cli_query/by_actor_p99/{param}"),
            t.store.p99,
            "ms",
            Some((raw, t.raw.p99)),
        );
        self.push(
            format!("cli_query/by_primary_key_p50/{param}"),
            t.by_pk.p50,
            "ms",
            None,
        );
    }

    fn export(&mut self, param: &str, cli: export::ExportRun, raw: export::ExportRun) {
        let base = "raw sqlx stream + serde_json";
        self.push(
            format!("cli_export/rows_per_s/{param}"),
            cli.rows_per_s.round(),
            "rows/s",
            Some((base, raw.rows_per_s.round())),
        );
        self.push(
            format!("cli_export/peak_rss_kib/{param}"),
            cli.peak_rss_kib as f64,
            "KiB",
            Some((base, raw.peak_rss_kib as f64)),
        );
    }

    fn write(&self) {
        let mut out = authtel_testing::bench_rows::append("operator.jsonl").unwrap();
        for l in &self.lines {
            writeln!(out, "{l}").unwrap();
        }
    }
}

/// `1m`, `100k`.
fn size_label(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // As the CLI runs its commands.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Query and export on one seeded store.
fn measure(rows: &mut Rows, rt: &tokio::runtime::Runtime, db: &Db, url: &str, backend: &str) {
    let n = rows.rows;
    let param = format!("{backend}_{}", size_label(n));
    let actors = if rows.quick { 300 } else { 900 };
    let times = rt.block_on(query::by_actor(db, actors, n));
    rows.query(&param, &times);
    let command = query::cli_process(url, if rows.quick { 10 } else { 30 });
    rows.push(
        format!("cli_query/command_p50/{param}"),
        command.p50,
        "ms",
        None,
    );
    let cli = export::cli(url, n);
    let raw = export::raw(url, n);
    eprintln!(
        "operator bench: export on {param}: {:.0} rows/s (peak {} KiB), raw {:.0} rows/s (peak {} KiB)",
        cli.rows_per_s, cli.peak_rss_kib, raw.rows_per_s, raw.peak_rss_kib
    );
    rows.export(&param, cli, raw);
}

fn sqlite(rows: &mut Rows) {
    let path = std::env::temp_dir().join(format!("authtel-bench-ops-{}.db", std::process::id()));
    let path_str = path.to_str().expect("utf-8 temp path").to_owned();
    let rt = runtime();
    let store = rt.block_on(async {
        let pool = authtel_sql::sqlite::connect(&path_str).await.unwrap();
        let store = authtel_sql::AuditStore::builder(pool).build();
        store.migrate().await.unwrap();
        let t = Instant::now();
        seed::sqlite(&store, rows.rows).await;
        eprintln!(
            "operator bench: seeded {} SQLite rows in {:.1?}",
            rows.rows,
            t.elapsed()
        );
        store
    });
    let db = Db::Sqlite(store);
    measure(rows, &rt, &db, &path_str, "sqlite");
    drop(db);
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path_str}{suffix}"));
    }
}

/// A database of its own on the shared server, dropped when this goes away.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin_url: &str) -> PgDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("authtel_bench_ops_{}_{nanos}", std::process::id());
        runtime().block_on(admin(admin_url, &format!("CREATE DATABASE {name}")));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        runtime().block_on(admin(&self.admin_url, &sql));
    }
}

async fn admin(url: &str, sql: &str) {
    use authtel_sql::sqlx::{self, AssertSqlSafe};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let query = url[start..].find('?').map_or(url.len(), |i| start + i);
    let path = url[start..query].find('/').map_or(query, |i| start + i);
    format!("{}/{name}{}", &url[..path], &url[query..])
}

fn postgres(rows: &mut Rows, admin_url: &str) {
    let database = PgDatabase::create(admin_url);
    let rt = runtime();
    let store = rt.block_on(async {
        let pool = authtel_sql::postgres::connect(&database.url).await.unwrap();
        let store = authtel_sql::AuditStore::builder(pool).build();
        store.migrate().await.unwrap();
        let t = Instant::now();
        seed::postgres(&store, rows.rows).await;
        eprintln!(
            "operator bench: seeded {} PostgreSQL rows in {:.1?}",
            rows.rows,
            t.elapsed()
        );
        store
    });
    let db = Db::Postgres(store);
    measure(rows, &rt, &db, &database.url, "postgres");
    if let Db::Postgres(store) = db {
        rt.block_on(store.pool().close());
    }
    drop(rt);
    drop(database);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(export::RAW_EXPORT_ARG) {
        let url = args.get(2).expect("--raw-export URL");
        if let Err(e) = export::raw_export_main(url) {
            eprintln!("raw export failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo test --benches` runs bench binaries without `--bench`: do nothing then.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let quick = std::env::var("AUTHTEL_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut rows = Rows {
        lines: Vec::new(),
        rows: if quick { 100_000 } else { 1_000_000 },
        quick,
    };
    sqlite(&mut rows);
    match std::env::var("DATABASE_URL") {
        Ok(url) => postgres(&mut rows, &url),
        Err(_) => eprintln!("operator bench: DATABASE_URL is not set; PostgreSQL rows skipped"),
    }
    rows.write();
}
