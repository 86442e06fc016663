//! authtel-log: the default logger. It writes what authtel sees into [`tracing`], as
//! structured events that any `tracing` subscriber (fmt, JSON, journald, OpenTelemetry)
//! can format and filter.
//!
//! It logs every span stop, every span exception and every one-shot signal; span starts
//! are skipped (the stop carries the duration). Each category logs under its own target
//! ([`Category::log_target`](authtel_core::catalogue::Category::log_target)):
//! `authtel::auth`, `authtel::security`, `authtel::mfa`, … so
//! `RUST_LOG=info,authtel::auth=warn` quiets routine logins while keeping security signals.
//!
//! | event | level |
//! |---|---|
//! | span exception, signal of severity error | `ERROR` |
//! | signal of severity warn (lockout, rate limit, denied authorization, …) | `WARN` |
//! | everything else | the configured level (default `INFO`) |
//!
//! # Fields
//! Only fields the metadata policy approved reach the log: `event`, `outcome`,
//! `duration_ms`, `span_id`, `parent_id`, `root_id`, `trace_id` (inside a distributed trace:
//! a `traceparent` through the request context), `error_type`, `exception`,
//! `exception_reason`, `count`, the typed metadata fields (`user_id`, `session_id`,
//! `client_ip`, `user_agent`, `provider`, `method`, `reason`, `operation`, `caller`,
//! `resource`, `rate_limit_key`, `attempts_remaining`, `admin`, `tenant_id`, `client_id`,
//! `grant_type`, `aal`, `is_mfa`, `factors` as `password,totp`) and the extra fields
//! rendered together as one `extra` field (`tenant=acme device=phone`). Secrets were
//! redacted by the policy before the logger saw them; nothing is ever logged through a
//! `Debug` dump.
//!
//! # In applications
//! ```
//! use authtel_log::{attach_default_logger, detach_default_logger, LoggerOptions};
//! use authtel_core::catalogue::Category;
//!
//! attach_default_logger(LoggerOptions::new().with_categories([Category::Auth, Category::Security]))
//!     .expect("the default logger is attached once, at startup");
//! # detach_default_logger().unwrap();
//! ```
//!
//! # In tests
//! [`Logger::build`] returns an unattached handler; attach it to a scoped
//! [`Registry`] and capture the output with
//! `tracing::subscriber::with_default`, as this crate's own tests do.
//!
//! # Supported Rust versions
//! 1.94 and newer.

mod emit;
mod logger;
mod options;
mod text;

pub use logger::Logger;
pub use options::LoggerOptions;

use authtel_core::registry::{AttachError, DetachError, Registry};

/// The id the default logger is attached under.
pub const DEFAULT_LOGGER_ID: &str = "authtel-default-logger";

/// Attaches the default logger to the global registry under [`DEFAULT_LOGGER_ID`].
///
/// A second call, without [`detach_default_logger`] in between, returns
/// [`AttachError::AlreadyExists`].
///
/// ```
/// use authtel_log::{attach_default_logger, detach_default_logger, LoggerOptions};
/// use authtel_core::registry::AttachError;
///
/// attach_default_logger(LoggerOptions::new()).unwrap();
/// assert!(matches!(attach_default_logger(LoggerOptions::new()), Err(AttachError::AlreadyExists(_))));
/// detach_default_logger().unwrap();
/// ```
pub fn attach_default_logger(options: LoggerOptions) -> Result<(), AttachError> {
    Logger::build(options).attach_to(Registry::global())
}

/// Detaches the default logger from the global registry.
///
/// ```
/// use authtel_log::detach_default_logger;
/// use authtel_core::registry::DetachError;
/// // Nothing attached yet: the error names the id.
/// assert!(matches!(detach_default_logger(), Err(DetachError::NotFound(id)) if id == "authtel-default-logger"));
/// ```
pub fn detach_default_logger() -> Result<(), DetachError> {
    Registry::global().detach(DEFAULT_LOGGER_ID)
}
