//! Private tansu brokers: one per test, on its own port and directory, for fault injection
//! (freeze, kill, restart).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{service_env, services_required, unique_topic};

/// Where a private broker keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `memory://`: fast, gone when the process dies.
    Memory,
    /// `sqlite://`: a SQLite file in the broker's own directory (tansu built with `libsql`),
    /// so a broker killed and restarted keeps every topic and record.
    Sqlite,
}

/// A tansu broker of our own on a free loopback port with its own directory and log file,
/// so freezing or killing it disturbs no other test. Killed when dropped.
pub struct PrivateBroker {
    bin: String,
    port: u16,
    storage: Storage,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// The first line of `tansu --help` that lists the storage engines compiled in.
pub fn storage_engines(bin: &str) -> String {
    Command::new(bin)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Storage engines:"))
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// A loopback port that is free now and lies below the kernel's ephemeral range, so no
/// client's outgoing connection can take it (or connect to itself on it) while the broker
/// is down between a crash and its restart.
fn free_port_below_ephemeral_range() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let floor = 20_000u16.min(low.saturating_sub(2_000));
    let span = u32::from(low - floor);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = floor + ((seed.wrapping_add(n.wrapping_mul(37))) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {floor}..{low}");
}

impl PrivateBroker {
    /// A private broker on memory storage; `None` (skipped) without `TANSU_BIN`.
    pub fn start(test: &str) -> Option<PrivateBroker> {
        PrivateBroker::start_with(test, Storage::Memory)
    }

    /// A private broker on `storage`. `None` (skipped) when `TANSU_BIN` is unset or lacks
    /// the engine and services are optional; panics naming the fix when they are required.
    pub fn start_with(test: &str, storage: Storage) -> Option<PrivateBroker> {
        let bin = service_env("TANSU_BIN", test)?;
        if storage == Storage::Sqlite {
            let engines = storage_engines(&bin);
            if !engines.contains("libsql") && !engines.contains("sqlite") {
                let why = format!(
                    "{test}: {bin} has no persistent storage engine (`tansu --help` lists \
                     storage engines: {engines:?}); run `cargo xtask services install`, which \
                     builds tansu with the libsql engine once (12-15 min)"
                );
                assert!(!services_required(), "{why}");
                eprintln!("SKIPPED {why}");
                return None;
            }
        }
        let port = free_port_below_ephemeral_range();
        let dir = std::env::temp_dir().join(unique_topic("authtel-tansu"));
        std::fs::create_dir_all(&dir).expect("create broker dir");
        let log = dir.join("tansu.log");
        let mut broker = PrivateBroker {
            bin,
            port,
            storage,
            dir,
            log,
            child: None,
            starts: 0,
        };
        broker.spawn();
        Some(broker)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    fn storage_url(&self) -> &'static str {
        match self.storage {
            Storage::Memory => "memory://tansu/",
            // Relative to the broker's working directory (its own temp dir).
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }

    /// The last `lines` lines of the broker's stdout and stderr (all its starts).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last {lines} lines of {} ---\n{}",
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Starts the broker and waits, bounded, until it answers a metadata request.
    fn spawn(&mut self) {
        self.starts += 1;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open broker log");
        use std::io::Write;
        writeln!(
            log,
            "=== start {} of tansu on {url} with {} ===",
            self.starts,
            self.storage_url()
        )
        .unwrap();
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", self.storage_url()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        self.wait_until_answering();
        if self.storage == Storage::Sqlite && self.starts == 1 {
            index_tansu_headers(&self.dir.join("tansu.db"));
        }
    }

    /// Bounded wait until the broker answers a metadata request; fails with its log tail if
    /// it exits or stays silent.
    fn wait_until_answering(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("reconnect.backoff.max.ms", "200")
            .create()
            .expect("metadata client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let child = self.child.as_mut().expect("broker running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "private tansu on port {} exited ({status}) at start {}\n{}",
                    self.port,
                    self.starts,
                    self.log_tail(30)
                );
            }
            if consumer
                .fetch_metadata(None, Duration::from_millis(500))
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private tansu on port {} did not answer metadata requests within 60 s\n{}",
                self.port,
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {}", self.pid());
    }

    /// SIGSTOP: the broker keeps its data and its port but answers nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// SIGKILL, and wait until the process is gone (reaped): its port is closed.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().expect("SIGKILL tansu");
        child.wait().expect("reap tansu");
    }

    /// Starts the broker again on the same port and storage, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        self.spawn();
    }

    /// "running (pid N, F open files)" or how the broker process ended, for failure messages.
    pub fn status(&mut self) -> String {
        match self.child.as_mut() {
            None => "killed by the test".to_owned(),
            Some(c) => match c.try_wait() {
                Ok(None) => {
                    let fds = std::fs::read_dir(format!("/proc/{}/fd", c.id()))
                        .map(|d| d.count())
                        .unwrap_or(0);
                    format!("running (pid {}, {fds} open files)", c.id())
                }
                Ok(Some(status)) => format!("exited: {status}"),
                Err(e) => format!("unknown: {e}"),
            },
        }
    }
}

/// tansu 0.6.0's SQLite engine reads each fetched record's headers with a query on
/// `header (topition, offset_id)`, a table it gives no index: every record costs a scan of
/// all headers (about 25 ms per record at 300,000 header rows, so 50,000 records with six
/// CloudEvents headers each take 20 minutes to read back). The index makes the same read take
/// seconds. It is created once the broker has created its tables, and changes only speed.
fn index_tansu_headers(db: &std::path::Path) {
    let url = format!("sqlite://{}", db.display());
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let pool = authtel_sql::sqlite::connect(&url)
                        .await
                        .unwrap_or_else(|e| panic!("open tansu's database {url}: {e}"));
                    authtel_sql::sqlx::query(
                        "CREATE INDEX IF NOT EXISTS authtel_test_header_by_record \
                         ON header (topition, offset_id)",
                    )
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("index tansu's header table in {url}: {e}"));
                    pool.close().await;
                });
        })
        .join()
        .unwrap();
    });
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        // Keep the directory (log, database) when the test failed, for the post-mortem.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
