//! The authtel forwarding pipeline: how audit records get from authentication code to the
//! SQL audit store, Kafka and OTLP without ever making a login wait on, or fail because
//! of, a slow or broken destination — and without losing a record when one is down.
//!
//! Each destination is a [`Forwarder`](authtel_core::forward::Forwarder) registered with a
//! [`ForwarderConfig`]. Per forwarder the pipeline provides:
//!
//! - **two lane types** around one delivery core: the queued lane ([`Dispatch::Auto`], the
//!   default, and [`Dispatch::Async`]: bounded queue, worker tasks, batches — on the
//!   application's runtime, or for `Auto` outside one on the pipeline's own worker thread,
//!   never on the publishing thread) and the inline lane ([`Dispatch::Sync`], chosen
//!   explicitly, blocks its caller);
//! - **retries** of transient failures with exponential backoff and full jitter
//!   ([`RetryPolicy`]); permanent failures and exhausted retries go to a **dead-letter**
//!   file and the `pipeline.forward.error` signal;
//! - **backpressure** when the queue is full ([`Backpressure`]): drop (the default; counted,
//!   never audit records unless allowed), **spill** to JSON-lines files replayed in order
//!   ([`FsyncPolicy`] decides durability), or block (explicit; never stalls a runtime);
//!   [`Pipeline::publish_async`] waits for room as a task;
//! - a **circuit breaker** ([`BreakerConfig`]): while open, records spill;
//! - **sampling and rate limiting** for non-security telemetry only
//!   ([`Pipeline::publish_telemetry`]);
//! - **self-metrics** ([`Pipeline::metrics`]), configuration from `AUTHTEL_*`
//!   variables ([`EnvConfig`]), and operator tools: [`Pipeline::wait_replayed`],
//!   [`Pipeline::replay_dead_letters`], [`read_dead_letters`].
//!
//! docs/operations-pipeline.md states each promise with its conditions.
//!
//! Delivery is at-least-once: a record can arrive twice (after a retry or a crash during
//! replay) and destinations deduplicate on its id. With one worker (the default) records
//! arrive in the order the pipeline accepted them, whether they went through the spill or
//! not — so per user too, which audit consumers rely on.
//!
//! # In applications
//!
//! ```no_run
//! use authtel_core::registry::{Registry, Selection};
//! use authtel_pipeline::{Backpressure, EnvConfig, ForwarderConfig, Pipeline};
//! # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
//! # #[derive(Debug)] struct KafkaForwarder;
//! # impl Forwarder for KafkaForwarder { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let builder = Pipeline::builder().env(EnvConfig::from_env()?);
//! let kafka = builder
//!     .forwarder_config("kafka", KafkaForwarder)
//!     .backpressure(Backpressure::Spill)
//!     .spill_dir("/var/lib/myapp/authtel-spill");
//! let pipeline = builder.forwarder(kafka).build()?;
//! let _flush_at_exit = pipeline.flush_guard(std::time::Duration::from_secs(5));
//! Registry::global().attach("pipeline", Selection::All, pipeline.handler())?;
//! # Ok(()) }
//! ```
//!
//! # In libraries
//!
//! Libraries emit events through `authtel_core::telemetry` and never build a pipeline;
//! the application decides where records go.
//!
//! # Feature flags
//!
//! None. The crate needs tokio with `rt`, `rt-multi-thread`, `net`, `sync`, `time`.
//!
//! # Supported Rust versions
//!
//! The workspace's `rust-version` (1.94) and newer.

mod blocking;
mod breaker;
mod config;
mod dead_letter;
mod deliverer;
mod delivery;
mod env;
mod error;
mod files;
mod forwarder_config;
mod inline;
mod lane;
mod limit;
mod metrics;
mod pipeline;
mod queue;
mod queued;
mod random;
mod signals;
mod spill;

pub use config::{
    Backpressure, BreakerConfig, ConfigError, Dispatch, FsyncPolicy, RateLimit, RetryPolicy,
    Settings,
};
pub use dead_letter::{DeadLetters, read_dead_letters};
pub use deliverer::{Deliverer, RecordOutcome};
pub use env::EnvConfig;
pub use error::{BuildError, DeadLetterError, FlushError, PublishError, ReplayError};
pub use forwarder_config::ForwarderConfig;
pub use metrics::{BreakerState, ForwarderMetrics, LATENCY_BUCKETS, Latency};
pub use pipeline::{FlushGuard, Pipeline, PipelineBuilder};
