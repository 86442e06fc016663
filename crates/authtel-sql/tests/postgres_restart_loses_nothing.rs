//! Restart PostgreSQL (an immediate shutdown, i.e. a crash) while records are being written
//! and relayed: nothing committed is lost, and the relay resumes on its own.
//!
//! The test runs its own throwaway cluster (initdb + pg_ctl as user `postgres`, on a free
//! loopback port) so restarting it disturbs nobody else's tests. It needs the Debian
//! PostgreSQL binaries that `cargo xtask services` uses; without them it skips, unless
//! `CI`/`AUTHTEL_REQUIRE_SERVICES` is set, in which case it fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditQuery, AuditStore, Relay, RelayConfig};

#[derive(Debug, Default)]
struct Dedup(Mutex<HashSet<uuid::Uuid>>);
impl Forwarder for Dedup {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.0.lock().unwrap().extend(batch.iter().map(|e| e.id()));
        Box::pin(async { Ok(()) })
    }
}

/// A private cluster, stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("authtel-pg-restart-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        Command::new("chown")
            .args(["postgres:postgres", dir.to_str()?])
            .status()
            .ok()?
            .success()
            .then_some(())?;
        let cluster = Cluster { bin, dir, port };
        let data = cluster.dir.join("data");
        cluster
            .pg(
                "initdb",
                &[
                    "-D",
                    data.to_str()?,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                ],
            )
            .then_some(())?;
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .ok()?;
        cluster.ctl(&["start", "-w", "-t", "60"]).then_some(cluster)
    }

    fn pg(&self, tool: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn ctl(&self, args: &[&str]) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let mut all = vec![
            "-D",
            data.to_str().unwrap_or(""),
            "-l",
            log.to_str().unwrap_or(""),
        ];
        all.extend_from_slice(args);
        self.pg("pg_ctl", &all)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.ctl(&["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_nothing_committed() {
    let Some(cluster) = Cluster::start() else {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_some();
        assert!(
            !required,
            "could not start a private PostgreSQL cluster (initdb/pg_ctl as user postgres)"
        );
        eprintln!("skipping: no PostgreSQL binaries to start a private cluster");
        return;
    };
    let pool = authtel_sql::postgres::connect(&cluster.url())
        .await
        .unwrap();
    let store = AuditStore::builder(pool)
        .with_schema("audit")
        .unwrap()
        .with_forwarder("kafka")
        .unwrap()
        .build();
    store.migrate().await.unwrap();
    let dedup = Arc::new(Dedup::default());
    let relay = Relay::new(
        &store,
        RelayConfig::default()
            .with_batch_size(25)
            .with_lease(Duration::from_secs(2))
            .with_poll_interval(Duration::from_millis(20)),
    )
    .with_forwarder("kafka", dedup.clone())
    .unwrap()
    .spawn();

    let mut committed = HashSet::new();
    let mut failed_commits = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let cluster = Arc::new(cluster);
    let mut restart: Option<tokio::task::JoinHandle<bool>> = None;
    while committed.len() < 200 || restart.as_ref().is_some_and(|r| !r.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after the restart"
        );
        if committed.len() >= 50 && restart.is_none() {
            // A crash while writes and deliveries go on: immediate shutdown (no checkpoint),
            // then start again.
            let c = cluster.clone();
            restart = Some(tokio::task::spawn_blocking(move || {
                c.ctl(&["restart", "-m", "immediate", "-w", "-t", "60"])
            }));
        }
        let e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
        let result = async {
            let mut tx = store.begin().await?;
            tx.record(&e).await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(_) => {
                committed.insert(e.id());
            }
            Err(_) => {
                failed_commits += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(restart.unwrap().await.unwrap(), "pg_ctl restart failed");

    let stored: HashSet<uuid::Uuid> = store
        .query(&AuditQuery::new().limit(1000))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.id())
        .collect();
    assert!(committed.is_subset(&stored), "a committed record was lost");
    let deadline = Instant::now() + Duration::from_secs(120);
    while dedup.0.lock().unwrap().len() < stored.len() {
        assert!(
            Instant::now() < deadline,
            "the relay did not resume after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *dedup.0.lock().unwrap(),
        stored,
        "every stored record delivered"
    );
    eprintln!(
        "restart: {} committed, {failed_commits} writes failed during the restart, relay db errors {}",
        committed.len(),
        relay
            .stats()
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(relay.shutdown(Duration::from_secs(30)).await);
}
