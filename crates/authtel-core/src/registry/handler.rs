//! What a handler is: the trait, closures as handlers, and what happens to one that
//! keeps panicking.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use crate::record::EventRecord;

/// Something that receives events. Implementations must be cheap and must not block for
/// long: they run inline in the code that emitted the event (auth request paths). Anything
/// slow belongs behind a queue (see the pipeline crate).
///
/// Handlers may be called from many threads at once. A panic inside `handle` is caught;
/// the handler stays attached (see [`FailurePolicy`]).
///
/// ```
/// use authtel_core::registry::Handler;
/// use authtel_core::telemetry::EventRecord;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Debug, Default)]
/// struct CountLogins(AtomicU64);
/// impl Handler for CountLogins {
///     fn handle(&self, record: &EventRecord<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Handler: Send + Sync + fmt::Debug + 'static {
    /// Receives one event.
    fn handle(&self, record: &EventRecord<'_>);
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(&self, record: &EventRecord<'_>) {
        (**self).handle(record)
    }
}

/// A handler made from a closure; see [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

impl<F> Handler for FnHandler<F>
where
    F: Fn(&EventRecord<'_>) + Send + Sync + 'static,
{
    fn handle(&self, record: &EventRecord<'_>) {
        (self.0)(record)
    }
}

/// Wraps a closure as a [`Handler`].
///
/// ```
/// use authtel_core::registry::{handler_fn, Registry, Selection};
/// let registry = Registry::new();
/// registry.attach("print", Selection::All, handler_fn(|r| println!("{}", r.event))).unwrap();
/// ```
pub fn handler_fn<F>(f: F) -> FnHandler<F>
where
    F: Fn(&EventRecord<'_>) + Send + Sync + 'static,
{
    FnHandler(f)
}

/// What happens to a handler that keeps panicking.
///
/// ```
/// use authtel_core::registry::FailurePolicy;
/// let keep = FailurePolicy::default();                 // stays attached, every failure reported
/// let give_up = FailurePolicy::detach_after(5);        // detached after 5 failures in a row
/// assert_ne!(keep, give_up);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailurePolicy {
    pub(super) detach_after: Option<NonZeroU32>,
}

impl FailurePolicy {
    /// Detach after `n` consecutive panics (`0` means never).
    pub fn detach_after(n: u32) -> FailurePolicy {
        FailurePolicy {
            detach_after: NonZeroU32::new(n),
        }
    }
}
