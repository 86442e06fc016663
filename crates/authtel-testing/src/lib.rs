//! authtel-testing: capture what your code emits and assert on it.
//!
//! Telemetry is part of an auth library's contract — dashboards, alerts and the audit trail
//! read it — so it deserves tests. This crate gives them two pieces:
//!
//! - [`CaptureHandler`]: a [`Handler`](authtel_core::registry::Handler) that keeps an owned
//!   copy ([`CapturedEvent`]) of every event it hears, metadata included.
//! - [`Capture`]: a harness that builds a scoped
//!   [`Registry`](authtel_core::registry::Registry), attaches a capture to every event and
//!   enters it on the current thread, plus assertions ([`Capture::assert_emitted`],
//!   [`Capture::assert_field`], [`Capture::assert_no_secret`], …).
//!
//! Because each test captures into its own scoped registry, tests run in parallel without
//! seeing each other's events, and the process-global registry is never touched.
//!
//! ```
//! use authtel_core::{catalogue, telemetry, metadata::Metadata};
//! use authtel_testing::Capture;
//!
//! let capture = Capture::new();
//! let _scope = capture.enter();
//!
//! let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || {
//!     Err::<(), _>("invalid_password")
//! });
//!
//! capture.assert_emitted(&["auth.login.start", "auth.login.stop"]);
//! capture.assert_field("auth.login.stop", "user_id", "u_1");
//! capture.assert_no_secret(&["hunter2"]);
//! ```
//!
//! [`bench_rows`] opens the rows files non-criterion benches write for `cargo xtask bench`.
//!
//! # In libraries and applications
//! Use it from `[dev-dependencies]` only: it keeps every event in memory.
//!
//! # Feature flags
//! None yet. A module `otlp` (an in-process OTLP receiver for exporter tests) may be added
//! behind a feature `otlp-receiver`.
//!
//! # Supported Rust versions
//! 1.94 and newer.

pub mod bench_rows;
mod buffer;
mod capture;
pub mod flows;
mod harness;
#[cfg(feature = "otlp-receiver")]
pub mod otlp;

pub use buffer::SharedBuffer;
pub use capture::{CaptureHandler, CapturedEvent, CapturedException};
pub use harness::{Capture, SecretFound};
