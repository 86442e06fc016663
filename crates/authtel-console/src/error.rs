//! What can go wrong: [`ConsoleError`] when building or serving the console, and the HTTP
//! error pages (status, what failed, what to do), which carry the same security headers as
//! every other response.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::access::Refusal;
use crate::html::{Html, escape};

/// Building or serving the console failed.
///
/// ```
/// use authtel_console::ConsoleError;
/// let e = ConsoleError::NoAccessPolicy;
/// assert!(e.to_string().contains("with_token"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// Neither a token nor an authorizer was given: the console refuses to serve the audit
    /// trail to anyone who asks.
    #[error(
        "the console has no access policy: call with_token(..) (a bearer token of at least 16 bytes) or with_authorizer(..) (the application's own authentication) before build()"
    )]
    NoAccessPolicy,
    /// The bearer token is too short to resist guessing.
    #[error(
        "the console access token has {len} bytes, fewer than 16: generate one with `head -c 32 /dev/urandom | base64`"
    )]
    WeakToken {
        /// Its length.
        len: usize,
    },
    /// The listen address is not loopback and remote access was not allowed.
    #[error(
        "refusing to listen on {addr}: it is not a loopback address and the console speaks plain HTTP; listen on 127.0.0.1 and put a TLS proxy in front, or allow remote listening explicitly"
    )]
    NotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// The base path given to `mounted_at` is not `/segment[/segment…]`.
    #[error(
        "mount path {0:?} must start with '/', not end with '/', and hold only letters, digits, '-', '_', '.' and '/'"
    )]
    InvalidMountPath(String),
    /// The operating system's random number generator failed.
    #[error("could not draw random bytes for a session or CSRF token: {0}")]
    Random(String),
    /// Binding or serving the listen socket failed.
    #[error("{doing} {addr} failed: check that the port is free (`ss -ltnp`) and allowed")]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An HTTP error page: status, what failed, what to do.
#[derive(Debug)]
pub(crate) struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) what: String,
    pub(crate) hint: String,
}

impl PageError {
    pub(crate) fn new(
        status: StatusCode,
        what: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        PageError {
            status,
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// A bad query parameter or form field.
    pub(crate) fn bad_input(what: impl Into<String>, hint: impl Into<String>) -> Self {
        PageError::new(StatusCode::BAD_REQUEST, what, hint)
    }

    /// A store operation failed while `doing`.
    pub(crate) fn store(doing: &'static str) -> impl FnOnce(authtel_sql::SqlError) -> PageError {
        move |e| {
            tracing::warn!(error = %e, "authtel console: {doing} failed");
            let hint = if e.is_transient() {
                "the database did not answer: check that it is running and reachable, then reload"
            } else {
                "check the console's log for the full error; `authtel doctor` checks the store"
            };
            PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{doing} failed: {e}"),
                hint,
            )
        }
    }

    /// A failed CSRF check: nothing was changed.
    pub(crate) fn csrf(why: &str) -> Self {
        PageError::new(
            StatusCode::FORBIDDEN,
            format!("refused a state-changing request: {why}; nothing was changed"),
            "reload the page and submit the form again (forms carry a token bound to your session)",
        )
    }
}

impl From<Refusal> for PageError {
    fn from(r: Refusal) -> PageError {
        match r {
            Refusal::Unauthenticated(_) => PageError::new(
                StatusCode::UNAUTHORIZED,
                r.to_string(),
                "open /login and paste the console's access token",
            ),
            Refusal::Forbidden(_) => PageError::new(
                StatusCode::FORBIDDEN,
                r.to_string(),
                "ask whoever runs the console for access",
            ),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = format!(
            "<h1>{}</h1><p class=\"error\">{}</p><p>What to do: {}</p>",
            self.status,
            escape(&self.what),
            escape(&self.hint)
        );
        let mut response = Html::bare("error", &body).into_response();
        *response.status_mut() = self.status;
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"authtel console\""),
            );
        }
        response
    }
}
