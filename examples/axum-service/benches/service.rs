//! The service's overhead, measured the way a load generator sees it: the session check
//! (`GET /me`) and the login (`POST /login`, Argon2id at production cost) over loopback, with
//! authtel fully attached — the default logger writing to a file (a `write(2)` per line on
//! the request's thread), the SQLite audit rows and
//! outbox in each transaction, the request-context layer, Prometheus and the detectors —
//! against the same service with nothing attached (no handler, no layer, no audit rows).
//!
//! Each service runs in its own child process (this binary, re-run with
//! `AUTHTEL_BENCH_AXUM_CHILD=<parts>`), so each has its own process-global registry and
//! neither one's handlers see the other's events. This process is the load generator: one
//! keep-alive HTTP/1.1 connection per service, and the requests **alternate** between the
//! services round by round (in a shuffled order each round), so a change in the machine's load
//! moves both alike. It reports the p50 of each service's latencies and the p50 of the paired
//! differences (attached minus bare within one round), and appends them as JSON rows for
//! `cargo xtask bench` (`$AUTHTEL_BENCH_DIR/axum-service.jsonl`).
//!
//! A second service with nothing attached runs beside them as an A/A control: its "added"
//! row is the method's noise floor on this machine.
//!
//! `AUTHTEL_BENCH_AXUM_PARTS=1` also runs one service per part (logger, layer, handlers,
//! audit rows), each alone, and everything with the log file written by `tracing-appender`'s
//! writer thread or through a buffer flushed every 100 ms, to show where the added time goes.
//! `AUTHTEL_BENCH_QUICK=1` (set by `cargo xtask bench --quick`) takes fewer rounds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use authtel_axum_service::{App, Config, HashCost};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "a bench passphrase";
const CHILD_ENV: &str = "AUTHTEL_BENCH_AXUM_CHILD";

/// What a child service has attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    logger: bool,
    layer: bool,
    handlers: bool,
    audit: bool,
    /// How the log file is written.
    writer: LogWriter,
}

/// How the child writes its log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogWriter {
    /// `Mutex<File>`: one `write(2)` per line, on the request's thread.
    Blocking,
    /// `tracing-appender`'s non-blocking writer: lines go to a writer thread.
    NonBlocking,
    /// `Mutex<BufWriter<File>>` (64 KiB) flushed every 100 ms by a thread: a line is a copy
    /// into memory; a crash loses up to 100 ms of log lines (never audit rows).
    Buffered,
}

impl Parts {
    const NONE: Parts = Parts {
        logger: false,
        layer: false,
        handlers: false,
        audit: false,
        writer: LogWriter::Blocking,
    };
    const ALL: Parts = Parts {
        logger: true,
        layer: true,
        handlers: true,
        audit: true,
        writer: LogWriter::Blocking,
    };

    fn encode(self) -> String {
        format!(
            "{}{}{}{}{}",
            u8::from(self.logger),
            u8::from(self.layer),
            u8::from(self.handlers),
            u8::from(self.audit),
            self.writer as u8
        )
    }

    fn decode(text: &str) -> Option<Parts> {
        let b = text.as_bytes();
        let writer = match b.get(4) {
            Some(b'0') => LogWriter::Blocking,
            Some(b'1') => LogWriter::NonBlocking,
            Some(b'2') => LogWriter::Buffered,
            _ => return None,
        };
        (b.len() == 5 && b[..4].iter().all(|c| matches!(c, b'0' | b'1'))).then(|| Parts {
            logger: b[0] == b'1',
            layer: b[1] == b'1',
            handlers: b[2] == b'1',
            audit: b[3] == b'1',
            writer,
        })
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let parts = Parts::decode(&spec)
            .expect("AUTHTEL_BENCH_AXUM_CHILD is four 0/1 digits and a writer digit 0-2");
        child(parts);
        return;
    }
    // `cargo bench` passes `--bench` (and xtask may pass criterion flags): nothing to read.
    load_generator();
}

// ----- the child: one service -----

fn child(parts: Parts) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tag = uuid::Uuid::now_v7();
    let db = std::env::temp_dir().join(format!("authtel-axum-bench-{tag}.db"));
    let log = std::env::temp_dir().join(format!("authtel-axum-bench-{tag}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let mut _flush_on_exit = None;
    let installed = match parts.writer {
        LogWriter::Blocking => tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(file))
                .finish(),
        ),
        LogWriter::NonBlocking => {
            // As tracing-appender's docs set up a file log.
            let (writer, guard) = tracing_appender::non_blocking(file);
            _flush_on_exit = Some(guard);
            tracing::subscriber::set_global_default(
                tracing_subscriber::fmt().with_writer(writer).finish(),
            )
        }
        LogWriter::Buffered => {
            let buffered: &'static std::sync::Mutex<std::io::BufWriter<std::fs::File>> =
                Box::leak(Box::new(std::sync::Mutex::new(
                    std::io::BufWriter::with_capacity(64 * 1024, file),
                )));
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    let _ = buffered.lock().map(|mut w| w.flush());
                }
            });
            tracing::subscriber::set_global_default(
                tracing_subscriber::fmt()
                    .with_writer(move || Buffered(buffered))
                    .finish(),
            )
        }
    };
    installed.expect("one subscriber");

    let mut config = Config::for_tests(db.display().to_string());
    config.hash_cost = HashCost::production();
    config.audit_trail = parts.audit;
    config.mutations.drop_request_context = !parts.layer;
    let app = rt.block_on(App::start(config)).expect("service starts");
    if parts.logger {
        authtel::log::attach_default_logger(authtel::log::LoggerOptions::new()).expect("logger");
    }
    if parts.handlers {
        app.attach_global().expect("handlers");
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(authtel_axum_service::serve(listener, app));
    println!("{addr}");
    std::io::stdout().flush().expect("stdout");

    // Serve until the load generator closes our stdin.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = done_tx.send(());
    });
    rt.block_on(async {
        let _ = done_rx.await;
    });
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_file(log);
}

/// One line's writer into the shared buffer (a lock per line, no system call).
struct Buffered(&'static std::sync::Mutex<std::io::BufWriter<std::fs::File>>);

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ----- the load generator -----

/// A child service and one keep-alive connection to it.
struct Service {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    conn: BufReader<TcpStream>,
    addr: SocketAddr,
    token: String,
}

impl Service {
    fn spawn(name: &'static str, parts: Parts) -> Service {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(CHILD_ENV, parts.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child service starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("child prints its address");
        let addr: SocketAddr = line.trim().parse().expect("an address");
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut service = Service {
            name,
            stdin: child.stdin.take(),
            child,
            conn: BufReader::new(stream),
            addr,
            token: String::new(),
        };
        let creds = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
        let (status, _) = service.request("POST", "/register", Some(&creds), None);
        assert_eq!(status, 201, "{name}: register");
        let (status, body) = service.request("POST", "/login", Some(&creds), None);
        assert_eq!(status, 200, "{name}: login: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        service.token = json["session_token"].as_str().expect("token").to_owned();
        service
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        bearer: Option<&str>,
    ) -> (u16, String) {
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: authtel-bench/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        let stream = self.conn.get_mut();
        stream.write_all(head.as_bytes()).expect("write");
        let mut line = String::new();
        self.conn.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0;
        loop {
            line.clear();
            self.conn.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().expect("content-length");
            }
        }
        let mut buf = vec![0; length];
        self.conn.read_exact(&mut buf).expect("body");
        (status, String::from_utf8(buf).expect("utf-8"))
    }

    /// One request of `kind`, timed in nanoseconds.
    fn timed(&mut self, kind: Kind) -> f64 {
        let token = self.token.clone();
        let creds = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
        let start = Instant::now();
        let (status, body) = match kind {
            Kind::SessionCheck => self.request("GET", "/me", None, Some(&token)),
            Kind::Login => self.request("POST", "/login", Some(&creds), None),
        };
        let elapsed = start.elapsed().as_nanos() as f64;
        assert_eq!(status, 200, "{}: {}: {body}", self.name, kind.name());
        elapsed
    }
}

/// A child's CPU time (user + system, all threads, ns) and context switches so far, from
/// `/proc`: what a request costs the service beside how long it took.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_ns: f64,
    switches: f64,
}

impl Service {
    fn usage(&self) -> Usage {
        let pid = self.child.id();
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Usage::default();
        };
        // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
            .sum();
        // sysconf(_SC_CLK_TCK) is 100 on Linux; std has no call for it.
        let cpu_ns = ticks * 10_000_000.0;
        let mut switches = 0.0;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let status =
                    std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
                for line in status.lines() {
                    if let Some(n) = line
                        .strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                    {
                        switches += n.trim().parse::<f64>().unwrap_or(0.0);
                    }
                }
            }
        }
        Usage { cpu_ns, switches }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    SessionCheck,
    Login,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SessionCheck => "session_check",
            Kind::Login => "login",
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs `rounds` rounds; each round sends one request to every service in a freshly shuffled
/// order (so no service always follows the same neighbour, whose leftover work would land
/// on it). Returns each service's latencies (ns), in round order.
fn alternate(services: &mut [Service], kind: Kind, warm_up: usize, rounds: usize) -> Vec<Vec<f64>> {
    for _ in 0..warm_up {
        for s in services.iter_mut() {
            s.timed(kind);
        }
    }
    let n = services.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    let mut order: Vec<usize> = (0..n).collect();
    // xorshift64*: a fixed seed, so runs shuffle alike; no dependency needed.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..rounds {
        for k in (1..n).rev() {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let j = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (k as u64 + 1)) as usize;
            order.swap(k, j);
        }
        for &i in &order {
            samples[i].push(services[i].timed(kind));
        }
    }
    samples
}

struct Summary {
    p50_us: f64,
    baseline_p50_us: f64,
    added_p50_us: f64,
}

fn summarize(samples: &[Vec<f64>], case: usize, baseline: usize) -> Summary {
    let mut diffs: Vec<f64> = samples[case]
        .iter()
        .zip(&samples[baseline])
        .map(|(c, b)| c - b)
        .collect();
    Summary {
        p50_us: median(&mut samples[case].clone()) / 1_000.0,
        baseline_p50_us: median(&mut samples[baseline].clone()) / 1_000.0,
        added_p50_us: median(&mut diffs) / 1_000.0,
    }
}

fn load_generator() {
    let quick = std::env::var_os("AUTHTEL_BENCH_QUICK").is_some();
    let with_parts = std::env::var_os("AUTHTEL_BENCH_AXUM_PARTS").is_some();
    let mut services = vec![
        Service::spawn("nothing attached", Parts::NONE),
        Service::spawn("fully attached", Parts::ALL),
        // A/A control: a second bare service. Its "added" is the noise floor of the method
        // (two identical processes); a part's cost is only readable above it.
        Service::spawn("nothing again", Parts::NONE),
    ];
    if with_parts {
        for (name, parts) in [
            (
                "logger only",
                Parts {
                    logger: true,
                    ..Parts::NONE
                },
            ),
            (
                "layer only",
                Parts {
                    layer: true,
                    ..Parts::NONE
                },
            ),
            (
                "handlers only",
                Parts {
                    handlers: true,
                    ..Parts::NONE
                },
            ),
            (
                "audit rows only",
                Parts {
                    audit: true,
                    ..Parts::NONE
                },
            ),
            (
                "all, log threaded",
                Parts {
                    writer: LogWriter::NonBlocking,
                    ..Parts::ALL
                },
            ),
            (
                "all, log buffered",
                Parts {
                    writer: LogWriter::Buffered,
                    ..Parts::ALL
                },
            ),
        ] {
            services.push(Service::spawn(name, parts));
        }
    }
    let (session_rounds, login_rounds) = if quick { (3_000, 20) } else { (20_000, 120) };

    let mut rows = Vec::new();
    for (kind, warm_up, rounds) in [
        (Kind::SessionCheck, 1_000, session_rounds),
        (Kind::Login, 5, login_rounds),
    ] {
        let before: Vec<Usage> = services.iter().map(Service::usage).collect();
        let samples = alternate(&mut services, kind, warm_up, rounds);
        let per_request: Vec<Usage> = services
            .iter()
            .zip(&before)
            .map(|(s, b)| {
                let a = s.usage();
                // Warm-up requests are inside the window too.
                let n = (rounds + warm_up) as f64;
                Usage {
                    cpu_ns: (a.cpu_ns - b.cpu_ns) / n,
                    switches: (a.switches - b.switches) / n,
                }
            })
            .collect();
        println!(
            "axum_service/{} ({rounds} alternating rounds, p50 over loopback):",
            kind.name()
        );
        println!(
            "  {:<16} service CPU {:>8.1} µs/request, {:.1} context switches/request",
            services[0].name,
            per_request[0].cpu_ns / 1_000.0,
            per_request[0].switches
        );
        for (case, service) in services.iter().enumerate().skip(1) {
            let s = summarize(&samples, case, 0);
            println!(
                "  {:<16} {:>10.1} µs vs nothing attached {:>10.1} µs: added {:+.1} µs at p50 of paired differences ({:+.2} %)",
                service.name,
                s.p50_us,
                s.baseline_p50_us,
                s.added_p50_us,
                100.0 * s.added_p50_us / s.baseline_p50_us
            );
            println!(
                "  {:<16} service CPU {:>8.1} µs/request ({:+.1}), {:.1} context switches/request ({:+.1})",
                "",
                per_request[case].cpu_ns / 1_000.0,
                (per_request[case].cpu_ns - per_request[0].cpu_ns) / 1_000.0,
                per_request[case].switches,
                per_request[case].switches - per_request[0].switches
            );
            let label = service.name.replace(' ', "_");
            rows.push(format!(
                r#"{{"case":"axum_service/{}_{label}_p50","value":{:.2},"unit":"µs","baseline":"same service, nothing attached (p50)","baseline_value":{:.2}}}"#,
                kind.name(),
                s.p50_us,
                s.baseline_p50_us
            ));
            rows.push(format!(
                r#"{{"case":"axum_service/{}_{label}_added_p50","value":{:.2},"unit":"µs added (paired)"}}"#,
                kind.name(),
                s.added_p50_us
            ));
        }
    }
    if let Some(dir) = std::env::var_os("AUTHTEL_BENCH_DIR") {
        std::fs::create_dir_all(&dir).expect("bench dir");
        let path = std::path::Path::new(&dir).join("axum-service.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("rows file");
        for row in rows {
            writeln!(file, "{row}").expect("row");
        }
    }
}
