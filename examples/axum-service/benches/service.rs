//! The service's overhead: the session check (`GET /me`) and the login (`POST /login`,
//! Argon2id at production cost) over loopback, with authtel fully attached — the default
//! logger writing to a file, the SQLite audit rows and outbox in each transaction, the
//! request-context layer, Prometheus and the detectors — against the same service with
//! nothing attached (no handler, no layer, no audit rows).
//!
//! Each request goes over one keep-alive HTTP/1.1 connection per service. The baselines run
//! first, then the handlers are attached to the global registry (the baseline service has
//! none, so it emits nothing), then the attached cases run: `cargo xtask bench` pairs
//! `session_check@session_check_nothing_attached` with its baseline, and the same for login.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;

use authtel_axum_service::{App, Config, HashCost};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

struct Server {
    app: App,
    conn: BufReader<TcpStream>,
    addr: SocketAddr,
    token: String,
    db: PathBuf,
}

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "a bench passphrase";

impl Server {
    async fn start(attached: bool) -> Server {
        let db =
            std::env::temp_dir().join(format!("authtel-axum-bench-{}.db", uuid::Uuid::now_v7()));
        let mut config = Config::for_tests(db.display().to_string());
        config.hash_cost = HashCost::production();
        if !attached {
            config.audit_trail = false;
            // Leaves the request-context layer out of the router.
            config.mutations.drop_request_context = true;
        }
        let app = App::start(config).await.expect("service starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(authtel_axum_service::serve(listener, app.clone()));
        let conn = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
        let mut server = Server {
            app,
            conn,
            addr,
            token: String::new(),
            db,
        };
        let creds = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
        let (status, _) = server
            .request("POST", "/register", Some(&creds), None)
            .await;
        assert_eq!(status, 201);
        let (status, body) = server.request("POST", "/login", Some(&creds), None).await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        server.token = json["session_token"].as_str().expect("token").to_owned();
        server
    }

    async fn request(
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
        let stream = self.conn.get_mut();
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(body.as_bytes()).await.expect("write");
        let mut line = String::new();
        self.conn.read_line(&mut line).await.expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0;
        loop {
            line.clear();
            self.conn.read_line(&mut line).await.expect("header");
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
        self.conn.read_exact(&mut buf).await.expect("body");
        (status, String::from_utf8(buf).expect("utf-8"))
    }

    async fn session_check(&mut self) -> u16 {
        let token = self.token.clone();
        self.request("GET", "/me", None, Some(&token)).await.0
    }

    async fn login(&mut self) -> u16 {
        let creds = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
        self.request("POST", "/login", Some(&creds), None).await.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let log = std::env::temp_dir().join(format!("authtel-axum-bench-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");

    let mut bare = rt.block_on(Server::start(false));
    let mut full = rt.block_on(Server::start(true));
    let mut group = c.benchmark_group("axum_service");
    run(
        &rt,
        &mut group,
        "baseline:session_check_nothing_attached",
        &mut bare,
        Kind::Session,
    );
    run(
        &rt,
        &mut group,
        "baseline:login_nothing_attached",
        &mut bare,
        Kind::Login,
    );

    // `AUTHTEL_BENCH_AXUM_NO_LOG=1` leaves the default logger out, to see its share.
    if std::env::var_os("AUTHTEL_BENCH_AXUM_NO_LOG").is_none() {
        authtel::log::attach_default_logger(authtel::log::LoggerOptions::new()).expect("logger");
    }
    full.app.attach_global().expect("handlers");
    run(
        &rt,
        &mut group,
        "session_check@session_check_nothing_attached",
        &mut full,
        Kind::Session,
    );
    run(
        &rt,
        &mut group,
        "login@login_nothing_attached",
        &mut full,
        Kind::Login,
    );
    group.finish();
    drop((bare, full));
    let _ = std::fs::remove_file(log);
}

#[derive(Clone, Copy)]
enum Kind {
    Session,
    Login,
}

fn run(
    rt: &Runtime,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    server: &mut Server,
    kind: Kind,
) {
    group.bench_function(name, |b| {
        b.iter(|| {
            let status = rt.block_on(async {
                match kind {
                    Kind::Session => server.session_check().await,
                    Kind::Login => server.login().await,
                }
            });
            assert_eq!(status, 200);
            black_box(status)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
