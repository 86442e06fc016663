//! PostgreSQL: the throwaway cluster under `$AUTHTEL_SERVICES_DIR/pg`, run as the `postgres`
//! user (`initdb`, `pg_ctl` through `runuser`), and whether its postmaster is running.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{PG_PORT, ensure_port_free, services_dir, wait_port};
use crate::util::Cmd;

/// `/usr/lib/postgresql/<newest>/bin`, if a server with `initdb` is installed.
pub(super) fn pg_bin_dir() -> Option<PathBuf> {
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

fn pg_data() -> PathBuf {
    services_dir().join("pg/data")
}

/// The postmaster's pid from `postmaster.pid`, if that process is still a postgres. A machine
/// that rebooted or had its processes killed leaves the file behind with a dead pid (or one
/// reused by another program), and `pg_ctl stop` then fails with "No such process".
pub(super) fn running_pg_pid() -> Option<u32> {
    running_postmaster(&pg_data())
}

fn running_postmaster(data: &Path) -> Option<u32> {
    let pid_file = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: u32 = pid_file.lines().next()?.trim().parse().ok()?;
    // The program's own name (argv[0]), not anywhere in its arguments: a test binary run
    // with a filter like `services::postgres::tests::…` is not a postmaster.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let program = cmdline.split(|&b| b == 0).next()?;
    let name = program.rsplit(|&b| b == b'/').next()?;
    name.starts_with(b"postgres").then_some(pid)
}

fn runuser_postgres(program: &Path) -> Cmd {
    Cmd::new("runuser", ["-u", "postgres", "--"]).with_args([program.as_os_str()])
}

pub(super) fn start_pg() -> Result<()> {
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

/// Stops the cluster; `Ok(true)` if one was running.
pub(super) fn stop_pg() -> Result<bool> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::*;
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
