//! authtel-otlp: authentication telemetry over OpenTelemetry (OTLP).
//!
//! Every catalogue span (`auth.login`, `mfa.verify`, …) becomes an OpenTelemetry span with
//! standard attributes, inside the application's trace when one is active; every signal
//! (`security.lockout`, …) and audit record becomes an OpenTelemetry log record with
//! `event.name` set, at WARN for security signals. Exports go over gRPC or HTTP/protobuf,
//! with a retry window, counted failures, and flush/shutdown with a deadline. The attribute
//! table is in [`attributes`] and `docs/otlp.md`; how parenting works is in [`correlation`].
//!
//! # In libraries
//! Don't depend on this crate: emit through `authtel_core::telemetry`.
//!
//! # In applications
//! ```no_run
//! use authtel_otlp::{OtlpSink, Protocol};
//! use std::time::{Duration, Instant};
//!
//! let sink = OtlpSink::builder()
//!     .with_protocol(Protocol::Grpc)
//!     .with_endpoint("http://collector:4317")
//!     .with_headers([("x-api-key", "…")])
//!     .with_timeout(Duration::from_secs(5))
//!     .with_service_name("accounts")
//!     .attach()?; // global registry; `build()` + `attach_to(&registry)` to choose
//! // … run …
//! sink.shutdown(Instant::now() + Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! With no endpoint given, the standard `OTEL_EXPORTER_OTLP_*` variables apply.
//!
//! # Feature flags
//! - `tracing-bridge`: parent root authtel spans under the current `tracing` span when
//!   `tracing-opentelemetry` bridges it (the current OpenTelemetry `Context` is always
//!   used).
//!
//! # Supported Rust versions
//! 1.94 and newer.

pub mod attributes;
pub mod correlation;
mod export;
mod handler;
mod sink;

pub use correlation::{TraceIds, current_trace_ids, otel_span_id, stamp_trace_ids, trace_ids};
pub use export::{ExportStats, LOG_QUEUE_CAPACITY};
pub use handler::{OtlpHandler, SCOPE_NAME};
pub use sink::{
    BuildError, DEFAULT_RETRY_WINDOW, FlushError, HANDLER_ID, OtlpSink, OtlpSinkBuilder, Protocol,
};
