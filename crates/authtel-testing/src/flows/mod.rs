//! The completeness kit: describe your auth flows, run them, and check that each one emits
//! exactly the events it should, with the fields dashboards, detectors and auditors need.
//!
//! An auth service's telemetry is only as good as its least instrumented path. The kit
//! makes that testable from the application's own test suite:
//!
//! 1. Describe each flow ([`Flow`]): the events it must emit ([`Expect`]), each with its
//!    outcome and required fields; whether each must also leave a committed audit record;
//!    whether the flow runs inside a request (then every event and record must carry the
//!    client's address and user agent); or that it is a rolled-back transaction, which must
//!    leave no audit record at all.
//! 2. Run the flow against the application and collect what it produced into an
//!    [`Observation`] — the captured events ([`Capture::mark`](crate::Capture::mark) and
//!    [`Capture::events_since`](crate::Capture::events_since) slice them per flow) and the
//!    audit records it committed.
//! 3. [`FlowSuite::check`] compares the two. Each problem names the flow, the event and
//!    the missing field, so a failure reads like a bug report:
//!    `flow "logout": auth.logout.stop (success) expected exactly once, emitted 0 times`.
//! 4. [`FlowSuite::coverage`] lists the catalogue events the whole run never emitted.
//!
//! ```
//! use authtel_core::{catalogue, telemetry, metadata::Metadata, Outcome};
//! use authtel_testing::Capture;
//! use authtel_testing::flows::{Expect, Field, Flow, FlowSuite, Observation};
//!
//! let capture = Capture::new();
//! let _scope = capture.enter();
//! let mut suite = FlowSuite::new();
//!
//! let flow = Flow::new("login ok").with_request_context().expect(
//!     Expect::stop(&catalogue::AUTH_LOGIN, Outcome::Success).field(Field::UserId),
//! );
//! let mark = capture.mark();
//! let ip = "203.0.113.9".parse().unwrap();
//! let meta = Metadata::new().user_id("u_1").client_ip(ip).user_agent("curl/8");
//! let _ = telemetry::span(&catalogue::AUTH_LOGIN, meta, || Ok::<_, ()>(()));
//! suite.check(&flow, &Observation::new(capture.events_since(mark))).unwrap();
//!
//! // The same flow without the request context fails, naming event and field.
//! let mark = capture.mark();
//! let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || Ok::<_, ()>(()));
//! let err = suite.check(&flow, &Observation::new(capture.events_since(mark))).unwrap_err();
//! assert!(err.to_string().contains("auth.login.stop is missing field client_ip"), "{err}");
//!
//! let coverage = suite.coverage();
//! assert!(coverage.emitted().contains(&"auth.login.stop"));
//! assert!(coverage.never_emitted().contains(&"auth.logout.stop"));
//! ```

mod check;
mod coverage;

pub use check::{FlowFailure, FlowSuite, Observation, Problem};
pub use coverage::Coverage;

use authtel_core::catalogue::{Event, SpanDef};
use authtel_core::outcome::Outcome;

/// A field an expected event (and its audit record) must carry.
///
/// ```
/// use authtel_testing::flows::Field;
/// assert_eq!(Field::ClientIp.key(), "client_ip");
/// assert_eq!(Field::Extra("mfa_step").key(), "mfa_step");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `user_id`: the account's opaque id.
    UserId,
    /// `session_id`: the session (or token family), never the token.
    SessionId,
    /// `client_ip`: the client's address.
    ClientIp,
    /// `user_agent`: the client's user agent.
    UserAgent,
    /// `method`: how the user authenticated (`password`, `totp`).
    Method,
    /// `reason`: why it failed or was denied.
    Reason,
    /// `caller`: who asked (authorization decisions).
    Caller,
    /// `resource`: what was asked for (authorization decisions).
    Resource,
    /// `operation`: what was to be done (authorization decisions).
    Operation,
    /// Any other metadata key.
    Extra(&'static str),
}

impl Field {
    /// The metadata key as events carry it.
    pub fn key(self) -> &'static str {
        match self {
            Field::UserId => "user_id",
            Field::SessionId => "session_id",
            Field::ClientIp => "client_ip",
            Field::UserAgent => "user_agent",
            Field::Method => "method",
            Field::Reason => "reason",
            Field::Caller => "caller",
            Field::Resource => "resource",
            Field::Operation => "operation",
            Field::Extra(key) => key,
        }
    }
}

/// One event a flow must emit exactly once.
///
/// ```
/// use authtel_core::{catalogue, Outcome};
/// use authtel_testing::flows::{Expect, Field};
/// let e = Expect::stop(&catalogue::AUTH_LOGIN, Outcome::Failure)
///     .field(Field::UserId)
///     .audited();
/// assert_eq!(e.event().name(), "auth.login.stop");
/// assert_eq!(e.outcome(), Some(Outcome::Failure));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    event: &'static Event,
    outcome: Option<Outcome>,
    fields: Vec<Field>,
    audited: bool,
}

impl Expect {
    /// The stop of `span`, ending with `outcome`.
    pub fn stop(span: &'static SpanDef, outcome: Outcome) -> Expect {
        Expect::signal(span.stop()).outcome_is(outcome)
    }

    /// A one-shot signal (or any event), whatever its outcome.
    pub fn signal(event: &'static Event) -> Expect {
        Expect {
            event,
            outcome: None,
            fields: Vec::new(),
            audited: false,
        }
    }

    /// Requires this outcome.
    pub fn outcome_is(mut self, outcome: Outcome) -> Expect {
        self.outcome = Some(outcome);
        self
    }

    /// Requires the event to carry `field`.
    pub fn field(mut self, field: Field) -> Expect {
        if !self.fields.contains(&field) {
            self.fields.push(field);
        }
        self
    }

    /// Requires every field in `fields`.
    pub fn fields(self, fields: impl IntoIterator<Item = Field>) -> Expect {
        fields.into_iter().fold(self, Expect::field)
    }

    /// Requires exactly one committed audit record of this event (same name and outcome),
    /// carrying the same fields.
    pub fn audited(mut self) -> Expect {
        self.audited = true;
        self
    }

    /// The event expected.
    pub fn event(&self) -> &'static Event {
        self.event
    }

    /// The outcome required, if any.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// The fields required (besides the request context's).
    pub fn required_fields(&self) -> &[Field] {
        &self.fields
    }

    /// Whether a committed audit record is required.
    pub fn is_audited(&self) -> bool {
        self.audited
    }
}

/// One auth flow of the application and what it must emit.
///
/// By default a flow is strict: besides its expected events it may emit span starts and
/// nothing else. [`Flow::allow_other_events`] relaxes that.
///
/// ```
/// use authtel_core::{catalogue, Outcome};
/// use authtel_testing::flows::{Expect, Flow};
/// let flow = Flow::new("duplicate registration")
///     .rolled_back()
///     .expect(Expect::stop(&catalogue::AUTH_REGISTER, Outcome::Failure));
/// assert_eq!(flow.name(), "duplicate registration");
/// assert!(flow.is_rolled_back());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    name: String,
    expected: Vec<Expect>,
    request_context: bool,
    rolled_back: bool,
    strict: bool,
}

impl Flow {
    /// A flow called `name` (used in every failure message).
    pub fn new(name: impl Into<String>) -> Flow {
        Flow {
            name: name.into(),
            expected: Vec::new(),
            request_context: false,
            rolled_back: false,
            strict: true,
        }
    }

    /// Adds an expected event.
    pub fn expect(mut self, expect: Expect) -> Flow {
        self.expected.push(expect);
        self
    }

    /// The flow runs inside a request: every expected event and audit record must carry
    /// `client_ip` and `user_agent`.
    pub fn with_request_context(mut self) -> Flow {
        self.request_context = true;
        self
    }

    /// The flow's transaction rolls back: it must leave no audit record at all.
    pub fn rolled_back(mut self) -> Flow {
        self.rolled_back = true;
        self
    }

    /// Events other than the expected ones (and span starts) are allowed.
    pub fn allow_other_events(mut self) -> Flow {
        self.strict = false;
        self
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The expected events.
    pub fn expected(&self) -> &[Expect] {
        &self.expected
    }

    /// Whether the request context is required.
    pub fn has_request_context(&self) -> bool {
        self.request_context
    }

    /// Whether the flow must leave no audit record.
    pub fn is_rolled_back(&self) -> bool {
        self.rolled_back
    }

    /// Whether unexpected events fail the flow.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Every field `expect` requires in this flow: its own, plus the request context's.
    pub(crate) fn required(&self, expect: &Expect) -> Vec<Field> {
        let mut fields = expect.fields.clone();
        if self.request_context {
            for f in [Field::ClientIp, Field::UserAgent] {
                if !fields.contains(&f) {
                    fields.push(f);
                }
            }
        }
        fields
    }
}
