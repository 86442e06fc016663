//! Outcomes: how an operation ended, and how a span derives it from a return value.

use std::fmt;

/// How an operation ended. Shared by span stops and audit records.
///
/// ```
/// use authtel_core::outcome::Outcome;
/// assert_eq!(Outcome::Denied.as_str(), "denied");
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked.
    Success,
    /// It failed in an expected way (wrong password, expired token).
    Failure,
    /// It was refused by an authorization decision.
    Denied,
    /// It broke (a panic, an unreachable dependency).
    Error,
}

impl Outcome {
    /// Every outcome, for building closed label sets.
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Denied,
        Outcome::Error,
    ];

    /// The lowercase name: `success`, `failure`, `denied`, `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value a span can read its outcome from: implemented for `Result`, `bool`, `Option`,
/// `()` and [`Outcome`]; implement it for your own return types.
///
/// ```
/// use authtel_core::outcome::{Outcome, SpanOutcome};
/// struct LoginResult { ok: bool }
/// impl SpanOutcome for LoginResult {
///     fn outcome(&self) -> Outcome { if self.ok { Outcome::Success } else { Outcome::Failure } }
/// }
/// assert_eq!(LoginResult { ok: false }.outcome(), Outcome::Failure);
/// let r: Result<(), std::io::Error> = Err(std::io::ErrorKind::Other.into());
/// assert_eq!(r.outcome(), Outcome::Failure);
/// assert_eq!(r.error_type(), Some("std::io::error::Error"));
/// ```
pub trait SpanOutcome {
    /// The outcome this value stands for.
    fn outcome(&self) -> Outcome;

    /// A low-cardinality name of the error, if the value is one (`error.type` in
    /// OpenTelemetry terms). Defaults to none.
    fn error_type(&self) -> Option<&'static str> {
        None
    }
}

impl<T, E> SpanOutcome for Result<T, E> {
    fn outcome(&self) -> Outcome {
        match self {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }

    fn error_type(&self) -> Option<&'static str> {
        self.as_ref().err().map(|_| std::any::type_name::<E>())
    }
}

impl SpanOutcome for bool {
    fn outcome(&self) -> Outcome {
        if *self {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

impl<T> SpanOutcome for Option<T> {
    fn outcome(&self) -> Outcome {
        if self.is_some() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

impl SpanOutcome for () {
    fn outcome(&self) -> Outcome {
        Outcome::Success
    }
}

impl SpanOutcome for Outcome {
    fn outcome(&self) -> Outcome {
        *self
    }
}
