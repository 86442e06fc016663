//! Where the current request context lives: a per-thread stack of entered contexts, and a
//! one-word mirror of its top that the emit path reads.
//!
//! Why a stack rather than "the previous one" kept in each guard: guards dropped out of
//! order (a guard moved into a longer-lived value) must still leave the newest live context
//! in force, never one already exited. Each entry owns a strong reference, so a guard leaked
//! with `mem::forget` leaks a context, never a dangling pointer.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Fields, RequestContext};

thread_local! {
    /// The top of this thread's stack (null when empty): the one read an emit makes. No
    /// destructor and a const initialiser, so reading it is a plain thread-local load.
    static TOP: Cell<*const Fields> = const { Cell::new(std::ptr::null()) };
    /// Entered contexts, oldest first, with their tokens (which grow, so the stack stays
    /// sorted by them).
    static STACK: Stack = const { Stack(RefCell::new(Vec::new())) };
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// The stack; clears [`TOP`] when the thread's locals are destroyed, so an emit from a later
/// thread-local destructor (the stack still held a leaked guard's entry) sees no context
/// rather than a freed one.
struct Stack(RefCell<Vec<(u64, Arc<Fields>)>>);

impl Drop for Stack {
    fn drop(&mut self) {
        TOP.set(std::ptr::null());
    }
}

/// The token of a context entered while this thread's stack was already destroyed (from a
/// thread-local destructor): nothing was installed.
const NOTHING_ENTERED: u64 = u64::MAX;

/// Whether a context is in force on this thread: one thread-local load.
#[inline]
pub(crate) fn is_set() -> bool {
    !TOP.get().is_null()
}

/// The context in force on this thread, if any.
pub(crate) fn current() -> Option<Arc<Fields>> {
    let top = TOP.get();
    if top.is_null() {
        return None;
    }
    // SAFETY: a non-null `TOP` is the pointer of the stack's last entry, which holds a
    // strong reference; nothing ran since it was read, so that entry is still there. Taking
    // one more strong reference before making an `Arc` of it keeps the count right.
    unsafe {
        Arc::increment_strong_count(top);
        Some(Arc::from_raw(top))
    }
}

fn push(fields: &Arc<Fields>) -> u64 {
    STACK
        .try_with(|stack| {
            let token = NEXT_TOKEN.get();
            NEXT_TOKEN.set(token.wrapping_add(1) % NOTHING_ENTERED);
            let mut stack = stack.0.borrow_mut();
            stack.push((token, fields.clone()));
            TOP.set(Arc::as_ptr(fields));
            token
        })
        .unwrap_or(NOTHING_ENTERED)
}

fn pop(token: u64) {
    if token == NOTHING_ENTERED {
        return;
    }
    let _ = STACK.try_with(|stack| {
        let removed = {
            let mut stack = stack.0.borrow_mut();
            let removed = match stack.last() {
                Some((t, _)) if *t == token => stack.pop(),
                _ => stack
                    .iter()
                    .position(|(t, _)| *t == token)
                    .map(|i| stack.remove(i)),
            };
            TOP.set(
                stack
                    .last()
                    .map_or(std::ptr::null(), |(_, f)| Arc::as_ptr(f)),
            );
            removed
        };
        // Dropped after the stack is consistent and unborrowed.
        drop(removed);
    });
}

/// The context entered on this thread until the guard drops; see [`RequestContext::enter`].
/// Not `Send`: it belongs to the thread that entered.
#[must_use = "the context is left when the guard is dropped"]
pub struct ContextGuard {
    token: u64,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    pub(super) fn enter(fields: &Arc<Fields>) -> ContextGuard {
        ContextGuard {
            token: push(fields),
            _not_send: PhantomData,
        }
    }
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContextGuard")
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        pop(self.token);
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside a request context: the context is in force during each
    /// `poll` of the inner future, on whichever thread polls it; see
    /// [`RequestContext::scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        #[pin]
        inner: F,
        context: RequestContext,
    }
}

impl<F> WithContext<F> {
    pub(super) fn new(inner: F, context: RequestContext) -> WithContext<F> {
        WithContext { inner, context }
    }

    /// The context this future runs in.
    pub fn context(&self) -> &RequestContext {
        &self.context
    }
}

impl<F: fmt::Debug> fmt::Debug for WithContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithContext")
            .field("inner", &self.inner)
            .field("context", &self.context)
            .finish()
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // The guard leaves the context also when the poll panics.
        let _entered = this.context.enter();
        this.inner.poll(cx)
    }
}
