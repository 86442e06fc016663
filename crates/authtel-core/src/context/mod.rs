//! The request context: who is asking (client address, user agent), which request and
//! tenant, which distributed trace — set once per request and inherited by every event and
//! span emitted while handling it.
//!
//! Without it, every call site must thread the client IP and user agent through to its
//! [`Metadata`], and real services forget: an audit trail with an empty IP on most rows.
//! With it, the HTTP layer (`authtel-tower`, or your own code) sets the context once, and
//! every record emitted inside it — on the calling thread, or in a future across `.await`
//! points and worker threads — carries its fields.
//!
//! # What a record inherits
//! When a handler receives a record emitted inside a context, the record's metadata is the
//! call site's metadata with the context's fields filled in **where the call site left
//! them unset** (the call site wins):
//!
//! | context field     | metadata field                                  |
//! |-------------------|-------------------------------------------------|
//! | client address    | [`Metadata::get_client_ip`]                     |
//! | user agent        | [`Metadata::get_user_agent`] (screened as text) |
//! | request id        | extra field [`REQUEST_ID_KEY`] (`request_id`)   |
//! | tenant            | [`Metadata::get_tenant_id`] ([`TENANT_KEY`])    |
//! | `traceparent`     | [`Metadata::get_trace_parent`]: audit records take its trace id |
//!
//! The request id is an extra field, so every sink (the logger's `extra`, the SQL metadata
//! column, Kafka's JSON, OTLP attributes) carries it with no code of its own; the tenant is
//! the standard `tenant_id` field, which audit records keep as their own (a SQL column, part
//! of the Kafka key). An event whose call site already filled all
//! [`MAX_EXTRA_FIELDS`](crate::metadata::MAX_EXTRA_FIELDS) extra fields goes without the
//! request id. Every value is read through [`crate::policy`] like any
//! other metadata: a user agent holding a credential reads as `[REDACTED]`, and so does a
//! request id that looks like a random token (use UUIDs).
//!
//! The merge happens once, where the registry hands a record to its handlers, and only when
//! someone listens: with nothing attached an emit stays one atomic load; with handlers and
//! no context it adds one thread-local load. Audit rows the application builds itself
//! ([`AuditEvent::new`](crate::audit::AuditEvent::new), for its own transaction) start with
//! the same fields.
//!
//! # Setting it
//! ```
//! use authtel_core::context::RequestContext;
//! use authtel_core::{catalogue, metadata::Metadata, registry::{handler_fn, Registry, Selection}, telemetry};
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let registry = Registry::new();
//! let s = seen.clone();
//! registry.attach("ips", Selection::All, handler_fn(move |r| {
//!     s.lock().unwrap().push(r.metadata.get_client_ip());
//! }))?;
//! let _scope = registry.enter();
//!
//! let ctx = RequestContext::builder()
//!     .client_ip("203.0.113.7".parse()?)
//!     .user_agent("Mozilla/5.0")
//!     .request_id("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
//!     .build();
//! {
//!     let _entered = ctx.enter();
//!     telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Metadata::new().user_id("u_1"));
//! }
//! assert_eq!(seen.lock().unwrap()[0], Some("203.0.113.7".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In async code wrap the request's future: `ctx.scope(handle(request)).await`. The
//! context is in force during each poll of the wrapped future, whichever thread polls it,
//! and nowhere else: a task spawned from inside does not inherit it (wrap it too).

mod scope;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use crate::metadata::Metadata;
use crate::policy::{self, LIMITS, SCREENED_PREFIX};

pub use crate::trace_parent::{TraceIdText, TraceParent, TraceParentError};
pub use scope::{ContextGuard, WithContext};

/// The extra-field key under which records carry the context's request id.
pub const REQUEST_ID_KEY: &str = "request_id";
/// The standard field under which records carry the context's tenant
/// ([`Metadata::tenant_id`]; an audit record's [`tenant_id`](crate::audit::AuditEvent::tenant_id)).
pub const TENANT_KEY: &str = "tenant_id";

/// Longest user agent a context keeps, in bytes: what the policy's screen reads
/// ([`SCREENED_PREFIX`]), so a credential that starts inside the part a sink writes is seen
/// whole and redacted. Sinks write at most [`MAX_TEXT_LEN`](crate::policy::MAX_TEXT_LEN)
/// bytes of it.
pub const MAX_USER_AGENT_LEN: usize = SCREENED_PREFIX;

/// What a context holds. Shared (`Arc`) by every clone of the context and by the entries
/// of the threads it is entered on.
pub(crate) struct Fields {
    client_ip: Option<IpAddr>,
    user_agent: Option<Box<str>>,
    request_id: Option<Box<str>>,
    tenant: Option<Box<str>>,
    trace_parent: Option<TraceParent>,
}

impl Fields {
    /// Fills this context's fields into `metadata` where it left them unset (in place: the
    /// metadata is a few hundred bytes, and every move of it is a copy).
    #[inline]
    pub(crate) fn fill<'m>(&'m self, metadata: &mut Metadata<'m>) {
        metadata.inherit(
            self.client_ip,
            self.user_agent.as_deref(),
            self.tenant.as_deref(),
            self.trace_parent.as_ref(),
            (REQUEST_ID_KEY, self.request_id.as_deref()),
        );
    }
}

/// Whether a request context is in force on this thread (one thread-local load).
#[inline]
pub(crate) fn is_set() -> bool {
    scope::is_set()
}

/// The context in force on this thread, for the registry's merge.
pub(crate) fn current_fields() -> Option<Arc<Fields>> {
    scope::current()
}

/// One request's context; cheap to clone (a reference count). Build it with
/// [`RequestContext::builder`], then [`enter`](RequestContext::enter) it on a thread or
/// wrap a future in it with [`scope`](RequestContext::scope).
///
/// ```
/// use authtel_core::context::RequestContext;
/// let ctx = RequestContext::builder().tenant("acme").build();
/// assert!(RequestContext::current().is_none());
/// let _entered = ctx.enter();
/// assert_eq!(RequestContext::current().unwrap().tenant(), Some("acme"));
/// ```
#[derive(Clone)]
pub struct RequestContext {
    fields: Arc<Fields>,
}

impl RequestContext {
    /// A builder with every field unset.
    pub fn builder() -> RequestContextBuilder {
        RequestContextBuilder::default()
    }

    /// The context in force on this thread (entered, or the one of the future being
    /// polled), if any.
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// assert!(RequestContext::current().is_none());
    /// ```
    pub fn current() -> Option<RequestContext> {
        scope::current().map(|fields| RequestContext { fields })
    }

    /// Puts this context in force on the current thread until the guard drops; contexts
    /// nest (the newest is in force). Drop guards in reverse order of entering; a guard
    /// dropped out of order still leaves the newest live context in force.
    ///
    /// Do not hold the guard across an `.await`: the task may move to another thread. Use
    /// [`scope`](RequestContext::scope) for futures.
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// let outer = RequestContext::builder().request_id("r-1").build();
    /// let inner = RequestContext::builder().request_id("r-2").build();
    /// let _a = outer.enter();
    /// {
    ///     let _b = inner.enter();
    ///     assert_eq!(RequestContext::current().unwrap().request_id(), Some("r-2"));
    /// }
    /// assert_eq!(RequestContext::current().unwrap().request_id(), Some("r-1"));
    /// ```
    pub fn enter(&self) -> ContextGuard {
        ContextGuard::enter(&self.fields)
    }

    /// Runs `f` with this context in force on the current thread.
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// let ctx = RequestContext::builder().tenant("acme").build();
    /// let tenant = ctx.in_scope(|| RequestContext::current().and_then(|c| c.tenant().map(str::to_owned)));
    /// assert_eq!(tenant.as_deref(), Some("acme"));
    /// ```
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }

    /// Wraps `future` so this context is in force during each of its polls, on whichever
    /// thread polls it (runtime-agnostic, like `tracing`'s `Instrument`). Spans created
    /// inside the future, and their stops, inherit it.
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// async fn handle() -> Option<String> {
    ///     RequestContext::current().and_then(|c| c.request_id().map(str::to_owned))
    /// }
    /// let ctx = RequestContext::builder().request_id("r-9").build();
    /// let fut = ctx.scope(handle());
    /// # let out = futures_lite_block_on(fut);
    /// # assert_eq!(out.as_deref(), Some("r-9"));
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> WithContext<F> {
        WithContext::new(future, self.clone())
    }

    /// A builder holding this context's fields, to derive a context with one more (a tenant
    /// known only after authentication). Enter the result inside this one: it takes over
    /// for the rest of the request's scope.
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// let ctx = RequestContext::builder().request_id("r-1").build();
    /// let with_tenant = ctx.to_builder().tenant("acme").build();
    /// assert_eq!(with_tenant.request_id(), Some("r-1"));
    /// assert_eq!(with_tenant.tenant(), Some("acme"));
    /// ```
    pub fn to_builder(&self) -> RequestContextBuilder {
        let f = &*self.fields;
        RequestContextBuilder {
            client_ip: f.client_ip,
            user_agent: f.user_agent.clone(),
            request_id: f.request_id.clone(),
            tenant: f.tenant.clone(),
            trace_parent: f.trace_parent,
        }
    }

    /// The client's address.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.fields.client_ip
    }

    /// The client's user agent, as the policy lets it out (a credential in it reads as
    /// `[REDACTED]`; at most [`MAX_TEXT_LEN`](crate::policy::MAX_TEXT_LEN) bytes).
    ///
    /// ```
    /// use authtel_core::context::RequestContext;
    /// let ctx = RequestContext::builder().user_agent("curl/8.5 Authorization: Bearer abc.def").build();
    /// assert_eq!(ctx.user_agent(), Some("[REDACTED]"));
    /// ```
    pub fn user_agent(&self) -> Option<&str> {
        self.fields.user_agent.as_deref().map(policy::screen_text)
    }

    /// The request id, as the policy lets it out.
    pub fn request_id(&self) -> Option<&str> {
        self.fields.request_id.as_deref().map(policy::screen_text)
    }

    /// The tenant, as the policy lets it out.
    pub fn tenant(&self) -> Option<&str> {
        self.fields
            .tenant
            .as_deref()
            .filter(|t| policy::check_identifier(t).is_ok())
    }

    /// The caller's trace, from a W3C `traceparent`.
    pub fn trace_parent(&self) -> Option<TraceParent> {
        self.fields.trace_parent
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("client_ip", &self.client_ip())
            .field("user_agent", &self.user_agent())
            .field("request_id", &self.request_id())
            .field("tenant", &self.tenant())
            .field("trace_parent", &self.trace_parent())
            .finish()
    }
}

/// Builds a [`RequestContext`]; see [`RequestContext::builder`].
///
/// Values are bounded here and screened when read: a user agent is kept up to
/// [`MAX_USER_AGENT_LEN`] bytes; a request id or tenant is kept only if it is non-empty, at
/// most [`Limits::id_bytes`](crate::policy::Limits::id_bytes) bytes and free of control
/// characters (else the context goes without it).
///
/// ```
/// use authtel_core::context::{RequestContext, TraceParent};
/// let ctx = RequestContext::builder()
///     .client_ip("2001:db8::7".parse()?)
///     .user_agent("Mozilla/5.0")
///     .request_id("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
///     .tenant("acme")
///     .trace_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?)
///     .build();
/// assert_eq!(ctx.tenant(), Some("acme"));
/// assert_eq!(RequestContext::builder().request_id("a\nb").build().request_id(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "call build() to get the context"]
pub struct RequestContextBuilder {
    client_ip: Option<IpAddr>,
    user_agent: Option<Box<str>>,
    request_id: Option<Box<str>>,
    tenant: Option<Box<str>>,
    trace_parent: Option<TraceParent>,
}

impl RequestContextBuilder {
    /// The client's address (after resolving trusted proxies: the address of the party
    /// that sent the request, never a header an untrusted peer could forge).
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        // An IPv4 client seen through a dual-stack socket is recorded as IPv4.
        self.client_ip = Some(ip.to_canonical());
        self
    }

    /// The client's `User-Agent`, cut to [`MAX_USER_AGENT_LEN`] bytes.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        let kept = policy::truncate(user_agent, MAX_USER_AGENT_LEN);
        self.user_agent = (!kept.is_empty()).then(|| kept.into());
        self
    }

    /// The request's id (from a `x-request-id` header, or generated).
    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = bounded_id(id);
        self
    }

    /// The tenant the request is for.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = bounded_id(tenant);
        self
    }

    /// The caller's trace, parsed from a W3C `traceparent` with [`TraceParent::parse`].
    pub fn trace_parent(mut self, trace_parent: TraceParent) -> Self {
        self.trace_parent = Some(trace_parent);
        self
    }

    /// The context.
    pub fn build(self) -> RequestContext {
        RequestContext {
            fields: Arc::new(Fields {
                client_ip: self.client_ip,
                user_agent: self.user_agent,
                request_id: self.request_id,
                tenant: self.tenant,
                trace_parent: self.trace_parent,
            }),
        }
    }
}

fn bounded_id(id: &str) -> Option<Box<str>> {
    let ok = !id.is_empty() && id.len() <= LIMITS.id_bytes && !id.chars().any(char::is_control);
    ok.then(|| id.into())
}
