//! Who may use the console. A request is authenticated by, in order: a session cookie (set
//! by `POST /login` with the bearer token, or on the first request an application
//! [`Authorizer`] allowed), an `Authorization: Bearer` header (token mode), or the
//! application's [`Authorizer`]. The resulting [`Reader`] then passes the same
//! [`AccessPolicy`] the recent-audit history uses (default: the `admin` role).
//!
//! Sessions live in memory (a restart logs everyone out), expire after
//! [`SESSION_TTL`], and carry the CSRF token every state-changing form must echo.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authtel_audit::{AccessDenied, Reader};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::ConsoleError;

/// How long a console session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The fewest bytes a bearer token may have.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Sessions kept at most; the oldest is dropped beyond this.
const MAX_SESSIONS: usize = 10_000;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "authtel_console";

/// The reader id of requests authenticated by the bearer token.
pub const TOKEN_READER: &str = "console-token";

/// Why a request was refused before reaching a page.
///
/// ```
/// use authtel_console::Refusal;
/// let r = Refusal::Unauthenticated("no session cookie".into());
/// assert!(r.to_string().contains("log in"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No credentials, or an expired session: HTTP 401.
    #[error(
        "not logged in ({0}): log in at the console's /login page with the access token, or send `Authorization: Bearer <token>`"
    )]
    Unauthenticated(String),
    /// Credentials were given but do not grant access: HTTP 403.
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
}

/// An application's own authentication for the console (its SSO session, mTLS identity,
/// …): map a request to the [`Reader`] it acts for, or refuse. Called once per request,
/// under no lock; it must be quick.
///
/// ```
/// use authtel_audit::Reader;
/// use authtel_console::{Authorizer, Refusal};
/// use axum::http::request::Parts;
///
/// #[derive(Debug)]
/// struct FromProxyHeader;
/// impl Authorizer for FromProxyHeader {
///     fn authorize(&self, request: &Parts) -> Result<Reader, Refusal> {
///         match request.headers.get("x-authenticated-admin").and_then(|v| v.to_str().ok()) {
///             Some(id) => Ok(Reader::new(id).with_role("admin")),
///             None => Err(Refusal::Unauthenticated("no x-authenticated-admin header".into())),
///         }
///     }
/// }
/// let (parts, _) = axum::http::Request::new(()).into_parts();
/// assert!(FromProxyHeader.authorize(&parts).is_err());
/// ```
pub trait Authorizer: Send + Sync + fmt::Debug + 'static {
    /// The reader this request acts for, or why not.
    fn authorize(&self, request: &Parts) -> Result<Reader, Refusal>;
}

/// A bearer token, compared in constant time. Its `Debug` never shows it.
///
/// ```
/// use authtel_console::AccessToken;
/// let t = AccessToken::new("correct horse battery staple").unwrap();
/// assert!(t.matches(b"correct horse battery staple"));
/// assert!(!t.matches(b"correct horse battery stapler"));
/// assert!(!format!("{t:?}").contains("horse"));
/// assert!(AccessToken::new("short").is_err());
/// ```
#[derive(Clone)]
pub struct AccessToken(Vec<u8>);

impl AccessToken {
    /// A token of at least [`MIN_TOKEN_BYTES`] bytes (surrounding whitespace is trimmed,
    /// so a token file's newline does not count).
    pub fn new(token: impl AsRef<str>) -> Result<AccessToken, ConsoleError> {
        let t = token.as_ref().trim();
        if t.len() < MIN_TOKEN_BYTES {
            return Err(ConsoleError::WeakToken { len: t.len() });
        }
        Ok(AccessToken(t.as_bytes().to_vec()))
    }

    /// Whether `candidate` is the token (constant time in the token's contents).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(candidate))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// A logged-in browser.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) reader: Reader,
    pub(crate) csrf: String,
    expires: Instant,
}

/// The sessions of one console.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `reader`: its cookie value and CSRF token.
    pub(crate) fn create(&self, reader: Reader) -> Result<(String, Session), ConsoleError> {
        let id = random_hex()?;
        let session = Session {
            reader,
            csrf: random_hex()?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session named by the request's cookie.
    pub(crate) fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Ends the session named by the request's cookie.
    pub(crate) fn remove(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }
}

/// 32 random bytes as hex, from the operating system.
fn random_hex() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConsoleError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether `given` equals the session's CSRF token (constant time).
pub(crate) fn csrf_matches(session: &Session, given: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// How a console authenticates: a token, an application authorizer, or both.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) token: Option<AccessToken>,
    pub(crate) authorizer: Option<Box<dyn Authorizer>>,
    pub(crate) policy: Box<dyn authtel_audit::AccessPolicy>,
    pub(crate) sessions: Sessions,
}

/// Who a request acts for, and the session it came with (or created).
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    pub(crate) reader: Reader,
    pub(crate) session: Option<Session>,
    /// A session created for this request, whose cookie the response must set.
    pub(crate) new_cookie: Option<String>,
}

impl Gate {
    /// Authenticates `parts` and checks the access policy.
    pub(crate) fn admit(&self, parts: &Parts) -> Result<Viewer, Refusal> {
        let viewer = self.authenticate(parts)?;
        self.policy.check(&viewer.reader)?;
        Ok(viewer)
    }

    fn authenticate(&self, parts: &Parts) -> Result<Viewer, Refusal> {
        if let Some(session) = self.sessions.find(&parts.headers) {
            // With an application authorizer, the session must still belong to whoever
            // the application says this is (a logout there ends it here).
            if let Some(authorizer) = &self.authorizer
                && cookie(&parts.headers, SESSION_COOKIE).is_some()
                && self.token.is_none()
            {
                let reader = authorizer.authorize(parts)?;
                if reader.id() != session.reader.id() {
                    return self.authorizer_session(reader);
                }
            }
            return Ok(Viewer {
                reader: session.reader.clone(),
                session: Some(session),
                new_cookie: None,
            });
        }
        if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION)
            && let Some(token) = &self.token
        {
            let given = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    Refusal::Unauthenticated(
                        "the Authorization header is not `Bearer <token>`".to_owned(),
                    )
                })?;
            if token.matches(given.trim().as_bytes()) {
                return Ok(Viewer {
                    reader: Reader::new(TOKEN_READER).with_role("admin"),
                    session: None,
                    new_cookie: None,
                });
            }
            return Err(Refusal::Forbidden(AccessDenied::new(
                "bearer token",
                "the token is wrong; use the token the console was started with",
            )));
        }
        if let Some(authorizer) = &self.authorizer {
            let reader = authorizer.authorize(parts)?;
            return self.authorizer_session(reader);
        }
        let why = if cookie(&parts.headers, SESSION_COOKIE).is_some() {
            "the session has expired or the console restarted"
        } else {
            "no session cookie and no Authorization header"
        };
        Err(Refusal::Unauthenticated(why.to_owned()))
    }

    /// A session for a reader the application's authorizer admitted, so forms get a CSRF
    /// token bound to a cookie.
    fn authorizer_session(&self, reader: Reader) -> Result<Viewer, Refusal> {
        let (id, session) = self
            .sessions
            .create(reader.clone())
            .map_err(|e| Refusal::Unauthenticated(format!("could not start a session: {e}")))?;
        Ok(Viewer {
            reader,
            session: Some(session),
            new_cookie: Some(id),
        })
    }

    /// Checks a login form's token; on success, the new session's cookie value.
    pub(crate) fn login(&self, token: &str) -> Result<String, Refusal> {
        let Some(expected) = &self.token else {
            return Err(Refusal::Forbidden(AccessDenied::new(
                "login form",
                "this console has no access token; sign in through the application",
            )));
        };
        if !expected.matches(token.trim().as_bytes()) {
            return Err(Refusal::Forbidden(AccessDenied::new(
                "login form",
                "the token is wrong; use the token the console was started with",
            )));
        }
        let reader = Reader::new(TOKEN_READER).with_role("admin");
        self.policy.check(&reader)?;
        let (id, _) = self
            .sessions
            .create(reader)
            .map_err(|e| Refusal::Unauthenticated(format!("could not start a session: {e}")))?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; authtel_console=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn sessions_are_random_and_found_by_cookie() {
        let s = Sessions::default();
        let (a, sa) = s.create(Reader::new("x")).unwrap();
        let (b, _) = s.create(Reader::new("y")).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("{SESSION_COOKIE}={a}").parse().unwrap(),
        );
        let found = s.find(&h).unwrap();
        assert_eq!(found.reader.id(), "x");
        assert!(csrf_matches(&found, &sa.csrf));
        assert!(!csrf_matches(&found, "nope"));
        s.remove(&h);
        assert!(s.find(&h).is_none());
    }
}
