//! authtel-core: typed authentication telemetry.
//!
//! Auth code says what happened — a login, a token check, an MFA lockout, an authorization
//! decision — through one small API, and every sink (logs, SQL audit trail, Kafka, OTLP,
//! Prometheus) understands it the same way.
//!
//! - [`catalogue`]: every event as a typed `static` with a stable dotted name.
//! - [`telemetry`]: [`telemetry::span`], [`telemetry::span_async`], [`telemetry::start`]
//!   and [`telemetry::event()`].
//! - [`registry`]: attach handlers; a panicking handler is isolated and reported.
//! - [`metadata`]: typed fields, read only through the policy.
//! - [`vocabulary`]: the codes of the `method`, `reason` and `operation` fields.
//! - [`pseudonym`]: keyed pseudonyms for emails and other values no sink may store.
//! - [`policy`]: the one screen that keeps secrets out of every sink, and the limits table.
//! - [`context`]: the request context (client address, user agent, request id, trace)
//!   every event emitted while handling a request inherits.
//! - [`audit`]: the audit record every sink stores.
//! - [`authorization`]: audit authorization decisions (allowed, denied, error).
//! - [`forward`]: the contract sink crates implement.
//!
//! # In libraries
//! Emit only: wrap operations in [`telemetry::span`], send signals with [`telemetry::event()`].
//! With nothing attached, that costs one atomic load.
//!
//! # In applications
//! Attach handlers (the default logger, sinks) once at startup, through the `authtel` facade.
//!
//! ```
//! use authtel_core::{catalogue, telemetry, metadata::Metadata, registry::{handler_fn, Registry, Selection}};
//! let registry = Registry::new();
//! registry.attach("print", Selection::All, handler_fn(|r| println!("{} {:?}", r.event, r.outcome))).unwrap();
//! let _scope = registry.enter();
//! let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || Ok::<_, ()>(()));
//! ```
//!
//! # Feature flags
//! - `internal-logs` (default): report the library's own faults through `tracing`.
//!
//! # Supported Rust versions
//! 1.94 and newer.

pub mod audit;
pub mod authorization;
pub mod catalogue;
pub mod context;
pub mod forward;
pub mod metadata;
pub mod outcome;
pub mod policy;
pub mod pseudonym;
mod record;
pub mod registry;
mod span_id;
pub mod telemetry;
mod trace_parent;
pub mod vocabulary;

pub use catalogue::{Category, Event, SpanDef};
pub use metadata::Metadata;
pub use outcome::Outcome;
pub use vocabulary::{AuthMethod, Reason};

/// Emits a one-shot signal, like [`telemetry::event()`], but evaluates its arguments only
/// when a handler could hear it: with nothing attached, the whole statement is one relaxed
/// atomic load.
///
/// Also reachable as `telemetry::event!`.
///
/// ```
/// use authtel_core::{catalogue, event, metadata::Metadata, telemetry::Measurements};
/// # let registry = authtel_core::registry::Registry::new();
/// # let _scope = registry.enter();
/// let user = "u_9";
/// event!(&catalogue::MFA_LOCKOUT, Measurements::new().count(1), Metadata::new().user_id(user));
/// ```
#[macro_export]
macro_rules! event {
    ($event:expr, $measurements:expr, $metadata:expr $(,)?) => {
        if $crate::telemetry::is_active() {
            // The arguments are built inside an out-of-line function, so the call site
            // keeps only the load, the branch and a call: cheap, and easy to inline.
            $crate::telemetry::__event_with(|| ($event, $measurements, $metadata))
        }
    };
}
