//! Running a forwarder's future to completion from synchronous code (sync dispatch, flush).
//!
//! Three situations, three answers:
//! - inside a multi-thread tokio runtime: `block_in_place` + the runtime's own
//!   `Handle::block_on`, so forwarders whose connections live on that runtime keep working
//!   and the other workers go on;
//! - inside a current-thread runtime: blocking its only thread would stall the future we
//!   wait for, so the future runs on a scoped helper thread driven by a private runtime;
//! - outside any runtime: the private runtime drives it on the caller's thread.
//!
//! The private runtime is a current-thread runtime with timers and the I/O driver, created
//! once per process and never dropped.

use std::future::Future;
use std::io;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};

static PRIVATE: OnceLock<Runtime> = OnceLock::new();

/// Creates the private runtime if needed; called at build so failure is a startup error.
pub(crate) fn ensure_private() -> io::Result<()> {
    if PRIVATE.get().is_none() {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let _ = PRIVATE.set(rt);
    }
    Ok(())
}

fn private() -> &'static Runtime {
    if let Err(e) = ensure_private() {
        // Only reachable if the process could start a runtime at build and no longer can.
        tracing::error!(error = %e, "authtel pipeline cannot start its private runtime");
    }
    PRIVATE
        .get()
        .expect("private runtime is created at pipeline build")
}

/// Runs `fut` to completion from synchronous code, wherever that code runs.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| private().block_on(fut))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Err(_) => private().block_on(fut),
    }
}
