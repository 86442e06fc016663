//! Periodic retention cleanup on a plain thread, stopped by a guard.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Stops the background cleanup of [`RecentAuditStore::spawn_cleanup`] when stopped or
/// dropped, and waits for the thread to finish.
///
/// [`RecentAuditStore::spawn_cleanup`]: crate::RecentAuditStore::spawn_cleanup
#[derive(Debug)]
#[must_use = "dropping the guard stops the cleanup thread at once"]
pub struct CleanupGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CleanupGuard {
    /// Runs `tick` every `every` until stopped, or until `tick` returns false (the store is
    /// gone).
    pub(crate) fn spawn(
        store_name: &str,
        every: Duration,
        tick: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<CleanupGuard> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("authtel-audit-cleanup-{store_name}"))
            .spawn(move || {
                // The channel doubles as the timer: a message or a hang-up ends the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if !tick() {
                        break;
                    }
                }
            })?;
        Ok(CleanupGuard {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}
