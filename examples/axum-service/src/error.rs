//! What a request can fail with, as HTTP responses and as low-cardinality reasons for
//! telemetry (the `reason` of an audit row, the `error_type` of a failed span).

use std::time::Duration;

use authtel::outcome::{Outcome, SpanOutcome};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A request that did not succeed. The `reason` strings are stable and never carry input.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body is malformed or a field is out of bounds.
    #[error("invalid request: {0}")]
    BadRequest(&'static str),
    /// Email already registered.
    #[error("this email is already registered")]
    Duplicate,
    /// Wrong password, unknown account, bad or expired token: the client learns nothing more.
    #[error("invalid credentials")]
    InvalidCredentials(&'static str),
    /// The account is locked after too many wrong passwords.
    #[error("the account is locked; try again later")]
    Locked,
    /// The detectors asked to slow this client down.
    #[error("too many attempts; retry after {} s", .0.as_secs())]
    RateLimited(Duration),
    /// A rotated refresh token came back: the whole token family is revoked.
    #[error("refresh token reuse detected; the session is revoked")]
    RefreshReuse,
    /// No valid session on the request.
    #[error("not signed in")]
    Unauthenticated,
    /// Signed in, but not allowed.
    #[error("not allowed")]
    Forbidden(&'static str),
    /// The service itself failed (database, random source); details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::Internal(message.into())
    }

    /// The stable, low-cardinality reason recorded in telemetry and audit rows.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Duplicate => "duplicate",
            ApiError::InvalidCredentials(why) => why,
            ApiError::Locked => "account_locked",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::RefreshReuse => "reuse_detected",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(why) => why,
            ApiError::Internal(_) => "internal",
        }
    }

    /// The outcome a span or audit row ending in this error reports.
    pub fn outcome(&self) -> Outcome {
        match self {
            ApiError::Internal(_) => Outcome::Error,
            ApiError::Forbidden(_) | ApiError::RateLimited(_) => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Duplicate => StatusCode::CONFLICT,
            ApiError::InvalidCredentials(_) | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Locked => StatusCode::LOCKED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RefreshReuse => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<authtel::sql::SqlError> for ApiError {
    fn from(e: authtel::sql::SqlError) -> ApiError {
        ApiError::Internal(format!("the audit store failed: {e}"))
    }
}

impl From<authtel::sql::sqlx::Error> for ApiError {
    fn from(e: authtel::sql::sqlx::Error) -> ApiError {
        ApiError::Internal(format!("the database failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // The cause stays in the server's log; the client gets no internals.
            ApiError::Internal(cause) => {
                tracing::error!(target: "axum_service", cause = %cause, "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": self.reason(), "message": message });
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited(wait) = self {
            let secs = wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The result of an instrumented operation: its outcome and, on failure, its reason as
/// the span's `error_type`.
#[derive(Debug)]
pub(crate) struct Step<T>(pub(crate) Result<T, ApiError>);

impl<T> SpanOutcome for Step<T> {
    fn outcome(&self) -> Outcome {
        match &self.0 {
            Ok(_) => Outcome::Success,
            Err(e) => e.outcome(),
        }
    }

    fn error_type(&self) -> Option<&'static str> {
        self.0.as_ref().err().map(ApiError::reason)
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("opening the database {url} failed: {cause}; check the path and its permissions")]
    Database {
        /// The database URL (no password in a SQLite URL).
        url: String,
        /// What the driver said.
        cause: String,
    },
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}
