//! authtel-console: the web console for the authtel SQL audit trail, as an axum router an
//! application mounts in its own service, or standalone through `authtel console`.
//!
//! Pages (server-rendered HTML, one small JS file for the live stream, no build step):
//! - `/`: the live security stream, over server-sent events. Each event's id is the
//!   record's position in commit order, so a browser that reconnects with `Last-Event-ID`
//!   gets exactly what it missed, for as long as the store holds it.
//! - `/search`: the filters of `authtel query` (actor, IP, action, outcome, time range),
//!   cursor pagination, and `/records/{id}` for one record.
//! - `/timeline`: logins, failures, lockouts and denials per minute, drawn as SVG on the
//!   server.
//! - `/outbox`: per-forwarder pending, oldest age, retrying and dead entries; requeue and
//!   purge forms (POST, CSRF-protected).
//! - `/detections`: the detector signals (`security.*`) in the store.
//!
//! Every page read and every operator action is itself recorded in the store
//! (`audit.history.read`, `audit.requeue`, `audit.purge`, with the reader as actor).
//!
//! The console is a security boundary: [`ConsoleBuilder::build`] refuses to build without an
//! access policy (a bearer token, or the application's [`Authorizer`]); every reader then
//! passes an [`authtel_audit::AccessPolicy`] (default: the `admin` role, as for the recent
//! history). Every response carries a strict CSP (no inline script), `X-Frame-Options:
//! DENY`, `Cache-Control: no-store`, `nosniff` and `Referrer-Policy: no-referrer`. No GET
//! changes anything; state changes are POST forms with a CSRF token bound to the session
//! cookie (`HttpOnly; SameSite=Strict`). Every stored value is escaped when rendered.
//!
//! # In applications
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = authtel_sql::sqlite::connect("/var/lib/app/audit.db").await?;
//! let store = authtel_sql::AuditStore::builder(pool).build();
//! let console = authtel_console::Console::builder(store)
//!     .with_token(std::env::var("AUTHTEL_CONSOLE_TOKEN")?)?
//!     .mounted_at("/ops/audit")?
//!     .build()?;
//! let app = axum::Router::new().nest("/ops/audit", console.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//! - `sqlite` (default): serve an `AuditStore<Sqlite>`.
//! - `postgres`: serve an `AuditStore<Postgres>` (the live stream included, on the feed
//!   positions of schema migration 2).
//!
//! See `docs/console.md`.
//!
//! # Supported Rust versions
//! 1.94 and newer.

// Without a backend feature the crate has the trait but no implementation; keep that build
// (used by feature-matrix checks) free of dead-code noise.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_imports, unused_macros)
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

mod access;
mod error;
mod html;
mod pages;
mod store;
mod trail;

pub use access::{AccessToken, Authorizer, MIN_TOKEN_BYTES, Refusal, SESSION_TTL, TOKEN_READER};
pub use error::ConsoleError;
pub use store::{ConsoleStore, StoreFuture};
pub use trail::{HISTORY_READ, PURGE, READER_TYPE, REQUEUE};

use access::{Gate, SESSION_COOKIE, Sessions, Viewer};
use error::PageError;
use html::Html;

/// Not public API: helpers re-exported for doctests.
#[doc(hidden)]
pub mod __private {
    pub use crate::html::escape;
}

/// The Content-Security-Policy of every response: scripts, styles and connections only from
/// the console itself, no inline script, no framing, forms post only to the console.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// How often the live stream looks for new records by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn ConsoleStore>,
    pub(crate) gate: Gate,
    pub(crate) base: String,
    pub(crate) poll: Duration,
    pub(crate) self_audit: bool,
}

/// A built console: call [`router`](Console::router) to mount it, or
/// [`serve`](Console::serve) to run it on its own.
#[derive(Clone, Debug)]
pub struct Console {
    shared: Arc<Shared>,
}

/// Configures a [`Console`]; see [`Console::builder`].
#[derive(Debug)]
pub struct ConsoleBuilder {
    store: Arc<dyn ConsoleStore>,
    token: Option<AccessToken>,
    authorizer: Option<Box<dyn Authorizer>>,
    policy: Box<dyn authtel_audit::AccessPolicy>,
    base: String,
    poll: Duration,
    self_audit: bool,
}

impl Console {
    /// Starts configuring a console on `store`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authtel_console::{Console, ConsoleError};
    /// let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await?).build();
    /// // No access policy: refused.
    /// assert!(matches!(Console::builder(store.clone()).build(), Err(ConsoleError::NoAccessPolicy)));
    /// let console = Console::builder(store).with_token("0123456789abcdef0123")?.build()?;
    /// let _router: axum::Router = console.router();
    /// # Ok(()) }
    /// ```
    pub fn builder(store: impl ConsoleStore) -> ConsoleBuilder {
        ConsoleBuilder {
            store: Arc::new(store),
            token: None,
            authorizer: None,
            policy: Box::new(authtel_audit::RequireRole::admin()),
            base: String::new(),
            poll: DEFAULT_POLL_INTERVAL,
            self_audit: true,
        }
    }

    /// The router: mount it with `Router::nest` at the path given to
    /// [`ConsoleBuilder::mounted_at`] (or serve it at the root).
    pub fn router(&self) -> Router {
        let shared = self.shared.clone();
        Router::new()
            .route("/", get(pages::stream::page))
            .route("/stream/events", get(pages::stream::events))
            .route("/search", get(pages::search::page))
            .route("/records/{id}", get(pages::search::detail))
            .route("/timeline", get(pages::timeline::page))
            .route("/timeline.svg", get(pages::timeline::svg))
            .route("/outbox", get(pages::outbox::page))
            .route("/outbox/requeue", post(pages::outbox::requeue))
            .route("/purge", post(pages::outbox::purge))
            .route("/detections", get(pages::detect::page))
            .route("/logout", post(logout))
            .route_layer(from_fn_with_state(shared.clone(), require_access))
            .route("/login", get(login_form).post(login))
            .route("/assets/console.js", get(script))
            .route("/assets/console.css", get(stylesheet))
            .fallback(not_found)
            .layer(from_fn(security_headers))
            .with_state(shared)
    }

    /// Serves the console on `addr` until `shutdown` completes. Refuses a non-loopback
    /// address unless `allow_remote` (the console speaks plain HTTP: put TLS in front).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await?).build();
    /// let console = authtel_console::Console::builder(store).with_token("0123456789abcdef0123")?.build()?;
    /// let err = console.serve("0.0.0.0:0".parse()?, false, async {}).await.unwrap_err();
    /// assert!(err.to_string().contains("not a loopback address"));
    /// # Ok(()) }
    /// ```
    pub async fn serve(
        self,
        addr: SocketAddr,
        allow_remote: bool,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let listener = bind(addr, allow_remote).await?;
        self.serve_on(listener, shutdown).await
    }

    /// Serves the console on an already bound listener (tests bind `127.0.0.1:0`).
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ConsoleError::Io {
                doing: "serving the console on",
                addr,
                source,
            })
    }
}

/// Binds `addr`, refusing a non-loopback one unless `allow_remote`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let l = authtel_console::bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
/// assert!(l.local_addr().unwrap().ip().is_loopback());
/// assert!(authtel_console::bind("0.0.0.0:0".parse().unwrap(), false).await.is_err());
/// # }
/// ```
pub async fn bind(
    addr: SocketAddr,
    allow_remote: bool,
) -> Result<tokio::net::TcpListener, ConsoleError> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(ConsoleError::NotLoopback { addr });
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Io {
            doing: "binding",
            addr,
            source,
        })
}

impl ConsoleBuilder {
    /// Admits requests carrying this bearer token (`Authorization: Bearer …`, or pasted into
    /// the login page), as reader [`TOKEN_READER`] with the `admin` role. At least
    /// [`MIN_TOKEN_BYTES`] bytes.
    pub fn with_token(mut self, token: impl AsRef<str>) -> Result<Self, ConsoleError> {
        self.token = Some(AccessToken::new(token)?);
        Ok(self)
    }

    /// Admits requests the application's own authentication accepts.
    pub fn with_authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.authorizer = Some(Box::new(authorizer));
        self
    }

    /// Who of the admitted readers may read (default [`authtel_audit::RequireRole::admin`]).
    pub fn with_access_policy(mut self, policy: impl authtel_audit::AccessPolicy) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// The path the application nests the router under (`/ops/audit`), so links and cookies
    /// point there. Default: the root.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await.unwrap()).build();
    /// assert!(authtel_console::Console::builder(store).mounted_at("ops/").is_err());
    /// # }
    /// ```
    pub fn mounted_at(mut self, path: &str) -> Result<Self, ConsoleError> {
        let valid = path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
        if !valid {
            return Err(ConsoleError::InvalidMountPath(path.to_owned()));
        }
        self.base = path.to_owned();
        Ok(self)
    }

    /// How often the live stream polls the store (default [`DEFAULT_POLL_INTERVAL`];
    /// clamped to 50 ms..10 s).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.clamp(Duration::from_millis(50), Duration::from_secs(10));
        self
    }

    /// Whether the console records each page read ([`HISTORY_READ`]) and each requeue and
    /// purge ([`REQUEUE`], [`PURGE`]) in the store it serves, with the reader as actor.
    /// Default on; turn it off only when the application records console access itself.
    pub fn with_self_audit(mut self, on: bool) -> Self {
        self.self_audit = on;
        self
    }

    /// The console, or [`ConsoleError::NoAccessPolicy`] when neither a token nor an
    /// authorizer was given.
    pub fn build(self) -> Result<Console, ConsoleError> {
        if self.token.is_none() && self.authorizer.is_none() {
            return Err(ConsoleError::NoAccessPolicy);
        }
        Ok(Console {
            shared: Arc::new(Shared {
                store: self.store,
                gate: Gate {
                    token: self.token,
                    authorizer: self.authorizer,
                    policy: self.policy,
                    sessions: Sessions::default(),
                },
                base: self.base,
                poll: self.poll,
                self_audit: self.self_audit,
            }),
        })
    }
}

impl Shared {
    /// The session cookie for `id`.
    fn session_cookie(&self, id: &str, max_age: u64) -> HeaderValue {
        let path = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={id}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("authtel_console=; Max-Age=0"))
    }
}

/// Admits the request (session, bearer token or authorizer, then the access policy) and
/// hands the [`Viewer`] to the page.
async fn require_access(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let viewer = match shared.gate.admit(&parts) {
        Ok(v) => v,
        Err(refusal) => {
            if let Refusal::Forbidden(_) = &refusal {
                tracing::warn!(reason = %refusal, path = parts.uri.path(), "authtel console: a request was refused");
            }
            return PageError::from(refusal).into_response();
        }
    };
    if parts.method == axum::http::Method::GET {
        let resource = format!(
            "{}{}",
            shared.base,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let entry = trail::Entry {
            action: HISTORY_READ,
            outcome: authtel_core::outcome::Outcome::Success,
            resource,
            operation: "read",
            reason: None,
        };
        if let Err(e) = shared.audit(&viewer.reader, entry).await {
            return e.into_response();
        }
    }
    let new_cookie = viewer.new_cookie.clone();
    parts.extensions.insert(viewer);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(id) = new_cookie {
        response.headers_mut().append(
            header::SET_COOKIE,
            shared.session_cookie(&id, access::SESSION_TTL.as_secs()),
        );
    }
    response
}

/// Adds the security headers to every response, errors and 404s included.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn not_found(State(shared): State<Arc<Shared>>) -> PageError {
    let _ = &shared;
    PageError::new(
        StatusCode::NOT_FOUND,
        "no such console page",
        "use the links at the top of the console",
    )
}

const LOGIN_FORM: &str = "<h1>Log in</h1><form method=\"post\" action=\"{base}/login\">\
     <label>Access token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label> \
     <button type=\"submit\">Log in</button></form>";

async fn login_form(State(shared): State<Arc<Shared>>) -> Html {
    let body = LOGIN_FORM.replace("{base}", &html::escape(&shared.base));
    Html::page("log in", &shared.base, &body)
}

/// The login form's fields.
#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(shared): State<Arc<Shared>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    match shared.gate.login(&form.token) {
        Ok(id) => {
            let to = format!("{}/", shared.base);
            let mut r = Redirect::to(&to).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                shared.session_cookie(&id, access::SESSION_TTL.as_secs()),
            );
            r
        }
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "authtel console: a login was refused");
            PageError::from(refusal).into_response()
        }
    }
}

/// The logout form's fields.
#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, PageError> {
    pages::check_csrf(&viewer, &headers, &form.csrf)?;
    shared.gate.sessions.remove(&headers);
    let mut r = Redirect::to(&format!("{}/login", shared.base)).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, shared.session_cookie("", 0));
    Ok(r)
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    )
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
