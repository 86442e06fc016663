//! The console's live stream with 100 SSE clients, as JSON rows in
//! `$AUTHTEL_BENCH_DIR/console.jsonl` for `cargo xtask bench` (issue 16):
//!
//! - `console_sse/delivery_p50/100_clients_poll_<P>` and `…_p99`: records committed one at a
//!   time (`AuditStore::begin` → `record` → `commit`, 20-30 ms apart), each timed from the
//!   commit's return to the moment the *last* of the 100 clients has read it off its
//!   socket, in ms; P is the console's poll interval: 250 ms (the default of
//!   `authtel console` and `ConsoleBuilder`) and 50 ms (the lowest it accepts). Baseline:
//!   the same with one client.
//! - `console_sse/records_per_s/100_clients_poll_250ms`: a burst of records stored by the
//!   batch writer, divided by the time from the first commit until every client has read
//!   the last one; baseline: one client. `deliveries_per_s` (records × clients) is an extra
//!   field.
//!
//! The console runs as an application mounts it: `Console::router()` served by axum on
//! 127.0.0.1:0, a bearer token, self-audit on (each connection records
//! `audit.history.read`; clients count only the bench's `auth.login.stop` records), over a
//! SQLite file store opened with `authtel_sql::sqlite::connect`. The clients are raw HTTP/1.1
//! connections on loopback, on the same two-worker runtime as the server, so their reading
//! and parsing shares the machine with it. Every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authtel_console::Console;
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder as _;
use authtel_core::outcome::Outcome;
use authtel_sql::AuditStore;
use authtel_sql::sqlite::Sqlite;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "bench-token-0123456789abcdef";
const ACTION: &str = "auth.login.stop";

/// A login record; `i` picks its actor and address.
fn record(i: u64) -> AuditEvent {
    let e = AuditEvent::new(ACTION, Outcome::Success).expect("a catalogue action");
    fill(e, i)
}

/// Every field of the bench's records, in one place.
fn fill(e: AuditEvent, i: u64) -> AuditEvent {
    e.with_actor(Party::new(format!("u_{}", i % 1000), "user"))
        .with_client_ip(std::net::Ipv4Addr::new(203, 0, 113, (i % 250) as u8).into())
        .with_user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0")
        .with_session_id(format!("s_{i}"))
        .with_metadata("method", "password")
        .expect("small metadata")
}

/// A console on a fresh SQLite store, served on loopback.
struct Server {
    store: AuditStore<Sqlite>,
    addr: SocketAddr,
    path: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(poll: Duration) -> Server {
        let path = std::env::temp_dir()
            .join(format!(
                "authtel-bench-sse-{}-{}.db",
                std::process::id(),
                poll.as_millis()
            ))
            .to_str()
            .expect("utf-8 temp path")
            .to_owned();
        let pool = authtel_sql::sqlite::connect(&path).await.unwrap();
        let store = AuditStore::builder(pool).build();
        store.migrate().await.unwrap();
        let console = Console::builder(store.clone())
            .with_token(TOKEN)
            .unwrap()
            .with_poll_interval(poll)
            .build()
            .unwrap();
        let listener = authtel_console::bind("127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = console.router();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Server {
            store,
            addr,
            path,
            stop: Some(tx),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path));
        }
    }
}

/// One `text/event-stream` connection, decoded incrementally (chunked transfer, then SSE).
struct Client {
    stream: TcpStream,
    /// Bytes read and not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked body not yet split into events.
    body: Vec<u8>,
}

/// The record ids a client read, each with the time it was read.
type Arrivals = Vec<(String, Instant)>;

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /stream/events HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
             accept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut c = Client {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let end = loop {
            if let Some(i) = c.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(c.read(deadline).await, "no response head within 30 s");
        };
        let head = String::from_utf8_lossy(&c.raw[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "stream refused: {head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        c.raw.drain(..end + 4);
        c
    }

    /// Reads more bytes (false at the deadline or end of stream).
    async fn read(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 16 * 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => false,
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Ok(Err(e)) => panic!("reading the event stream: {e}"),
        }
    }

    /// Moves complete chunks from `raw` to `body`.
    fn dechunk(&mut self) {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size = std::str::from_utf8(&self.raw[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .expect("a chunk size line");
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// Complete events in `body`: `ready` events counted, bench records' ids collected.
    fn events(&mut self, at: Instant, ready: &mut bool, out: &mut Arrivals) {
        self.dechunk();
        let mut used = 0;
        while let Some(i) = self.body[used..].windows(2).position(|w| w == b"\n\n") {
            let block = &self.body[used..used + i];
            used += i + 2;
            let text = String::from_utf8_lossy(block);
            for line in text.lines() {
                if line.starts_with("event:") && line.contains("ready") {
                    *ready = true;
                }
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                if !data.contains(&format!("\"action\":\"{ACTION}\"")) {
                    continue;
                }
                let id = data
                    .find("\"id\":\"")
                    .and_then(|j| data.get(j + 6..j + 6 + 36))
                    .expect("an audit event carries the record id");
                out.push((id.to_owned(), at));
            }
        }
        self.body.drain(..used);
    }

    /// Reads until the stream said `ready` (then bumps `connected`) and `expect` bench
    /// records arrived, or the deadline.
    async fn follow(
        mut self,
        expect: usize,
        connected: Arc<AtomicUsize>,
        deadline: Instant,
    ) -> Arrivals {
        let mut got = Vec::with_capacity(expect);
        let mut ready = false;
        let mut counted = false;
        while got.len() < expect {
            if !self.read(deadline).await {
                break;
            }
            self.events(Instant::now(), &mut ready, &mut got);
            if ready && !counted {
                counted = true;
                connected.fetch_add(1, Ordering::SeqCst);
            }
        }
        got
    }
}

/// `clients` connected and following, each expecting `expect` records.
async fn open_clients(
    addr: SocketAddr,
    clients: usize,
    expect: usize,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<Arrivals>> {
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let c = Client::connect(addr).await;
        tasks.push(tokio::spawn(c.follow(expect, connected.clone(), deadline)));
    }
    let wait_until = Instant::now() + Duration::from_secs(30);
    while connected.load(Ordering::SeqCst) < clients {
        assert!(
            Instant::now() < wait_until,
            "only {} of {clients} streams ready after 30 s",
            connected.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tasks
}

/// Every client's arrivals; panics unless each client got exactly `ids`.
async fn collect(tasks: Vec<tokio::task::JoinHandle<Arrivals>>, ids: &[String]) -> Vec<Arrivals> {
    let mut all = Vec::with_capacity(tasks.len());
    for t in tasks {
        let got = t.await.unwrap();
        let seen: Vec<&String> = got.iter().map(|(id, _)| id).collect();
        assert_eq!(
            seen.len(),
            ids.len(),
            "a client got {} of {} records before its deadline",
            seen.len(),
            ids.len()
        );
        assert!(
            seen.iter().zip(ids).all(|(a, b)| *a == b),
            "a client got the records out of order or others than committed"
        );
        all.push(got);
    }
    all
}

/// p50 and p99 in ms.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

/// Commit-to-last-client latency of `n` records committed one by one.
async fn latency(server: &Server, clients: usize, n: usize, poll: Duration) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(60) + n as u32 * Duration::from_millis(40);
    let tasks = open_clients(server.addr, clients, n, deadline).await;
    // Let the connections' own audit records stream past before timing anything.
    tokio::time::sleep(poll * 2 + Duration::from_millis(100)).await;
    let mut ids = Vec::with_capacity(n);
    let mut committed = Vec::with_capacity(n);
    for i in 0..n {
        let e = record(i as u64);
        ids.push(e.id().to_string());
        let mut tx = server.store.begin().await.unwrap();
        tx.record(&e).await.unwrap();
        tx.commit().await.unwrap();
        committed.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(20 + (i as u64 * 7) % 11)).await;
    }
    let all = collect(tasks, &ids).await;
    let per_record = (0..n)
        .map(|i| {
            let last = all.iter().map(|got| got[i].1).max().unwrap();
            last.saturating_duration_since(committed[i])
        })
        .collect();
    percentiles(per_record)
}

/// Records per second reaching every one of `clients` from a burst of `n`.
async fn throughput(server: &Server, clients: usize, n: usize, poll: Duration) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    let tasks = open_clients(server.addr, clients, n, deadline).await;
    tokio::time::sleep(poll * 2 + Duration::from_millis(100)).await;
    let records: Vec<AuditEvent> = (0..n as u64).map(record).collect();
    let ids: Vec<String> = records.iter().map(|e| e.id().to_string()).collect();
    let writer = authtel_sql::BatchWriter::new(&server.store);
    let started = Instant::now();
    for chunk in records.chunks(500) {
        writer.forward(chunk).await.unwrap();
    }
    let all = collect(tasks, &ids).await;
    let last = all.iter().map(|got| got[n - 1].1).max().unwrap();
    n as f64 / last.duration_since(started).as_secs_f64()
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn row(lines: &mut Vec<serde_json::Value>, case: &str, value: f64, unit: &str, base: (&str, f64)) {
    let v = serde_json::json!({
        "case": case, "value": value, "unit": unit,
        "baseline": base.0, "baseline_value": base.1, "ratio": value / base.1,
        "load1": load1(),
    });
    println!("{v}");
    lines.push(v);
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let quick = std::env::var("AUTHTEL_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (n_latency, n_burst) = if quick { (60, 1000) } else { (200, 5000) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut lines = Vec::new();
    rt.block_on(async {
        for poll_ms in [250u64, 50] {
            let poll = Duration::from_millis(poll_ms);
            let server = Server::start(poll).await;
            let (one50, one99) = latency(&server, 1, n_latency, poll).await;
            let (p50, p99) = latency(&server, 100, n_latency, poll).await;
            let base = "1 client, same stream";
            let label = format!("100_clients_poll_{poll_ms}ms");
            row(
                &mut lines,
                &format!("console_sse/delivery_p50/{label}"),
                p50,
                "ms",
                (base, one50),
            );
            row(
                &mut lines,
                &format!("console_sse/delivery_p99/{label}"),
                p99,
                "ms",
                (base, one99),
            );
            if poll_ms == 250 {
                let one = throughput(&server, 1, n_burst, poll).await;
                let hundred = throughput(&server, 100, n_burst, poll).await;
                row(
                    &mut lines,
                    &format!("console_sse/records_per_s/{label}"),
                    hundred.round(),
                    "records/s",
                    (base, one.round()),
                );
                if let Some(last) = lines.last_mut() {
                    last["deliveries_per_s"] = (hundred * 100.0).round().into();
                    last["burst"] = n_burst.into();
                }
            }
        }
    });
    for l in &mut lines {
        l["quick"] = quick.into();
        l["records_timed"] = n_latency.into();
    }
    let mut out = authtel_testing::bench_rows::append("console.jsonl").unwrap();
    for l in &lines {
        use std::io::Write as _;
        writeln!(out, "{l}").unwrap();
    }
}
