//! Who may read the audit history: every query names a [`Reader`], and the store's
//! [`AccessPolicy`] decides. The default, [`RequireRole::admin`], allows readers holding the
//! `admin` role and refuses everyone else — audit history names users, IPs and resources,
//! so reading it is itself a privileged act.

use std::fmt;

/// The identity on whose behalf a query runs: an opaque id and its roles.
///
/// ```
/// use authtel_audit::Reader;
/// let ops = Reader::new("ops_console").with_role("admin");
/// assert!(ops.has_role("admin"));
/// assert_eq!(ops.id(), "ops_console");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    id: String,
    roles: Vec<String>,
}

impl Reader {
    /// A reader with no roles.
    pub fn new(id: impl Into<String>) -> Reader {
        Reader {
            id: id.into(),
            roles: Vec::new(),
        }
    }

    /// Adds a role.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Reader {
        self.roles.push(role.into());
        self
    }

    /// The reader's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The reader's roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Whether the reader holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// A reader was refused access to the audit history.
///
/// ```
/// use authtel_audit::AccessDenied;
/// let e = AccessDenied::new("intern", "reads are limited to office hours");
/// assert_eq!(e.reader(), "intern");
/// assert!(e.to_string().contains("office hours"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reader {reader:?} may not read the audit history: {reason}")]
pub struct AccessDenied {
    reader: String,
    reason: String,
}

impl AccessDenied {
    /// A refusal of `reader`, saying why and, ideally, what would grant access.
    pub fn new(reader: impl Into<String>, reason: impl Into<String>) -> AccessDenied {
        AccessDenied {
            reader: reader.into(),
            reason: reason.into(),
        }
    }

    /// The refused reader's id.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Decides whether a reader may query a store. Called once per query, under no lock; it
/// must be quick and must not query the store itself.
///
/// ```
/// use authtel_audit::{AccessDenied, AccessPolicy, Reader};
///
/// #[derive(Debug)]
/// struct AuditorsOnly;
/// impl AccessPolicy for AuditorsOnly {
///     fn check(&self, reader: &Reader) -> Result<(), AccessDenied> {
///         if reader.has_role("auditor") {
///             Ok(())
///         } else {
///             Err(AccessDenied::new(reader.id(), "it lacks the \"auditor\" role"))
///         }
///     }
/// }
/// assert!(AuditorsOnly.check(&Reader::new("a").with_role("auditor")).is_ok());
/// ```
pub trait AccessPolicy: Send + Sync + fmt::Debug + 'static {
    /// `Ok` to allow the query, or why not.
    fn check(&self, reader: &Reader) -> Result<(), AccessDenied>;
}

/// Allows readers holding one role; the default policy is [`RequireRole::admin`].
///
/// ```
/// use authtel_audit::{AccessPolicy, Reader, RequireRole};
/// let policy = RequireRole::admin();
/// assert!(policy.check(&Reader::new("ops").with_role("admin")).is_ok());
/// assert!(policy.check(&Reader::new("guest")).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequireRole {
    role: String,
}

impl RequireRole {
    /// Allows readers holding `role`.
    pub fn new(role: impl Into<String>) -> RequireRole {
        RequireRole { role: role.into() }
    }

    /// Allows readers holding the `admin` role: the default.
    pub fn admin() -> RequireRole {
        RequireRole::new("admin")
    }
}

impl Default for RequireRole {
    fn default() -> Self {
        RequireRole::admin()
    }
}

impl AccessPolicy for RequireRole {
    fn check(&self, reader: &Reader) -> Result<(), AccessDenied> {
        if reader.has_role(&self.role) {
            Ok(())
        } else {
            Err(AccessDenied::new(
                reader.id(),
                format!(
                    "it lacks the {:?} role; give the reader that role, or build the store with an AccessPolicy that allows it",
                    self.role
                ),
            ))
        }
    }
}

/// An [`AccessPolicy`] made from a closure; see [`policy_fn`].
pub struct FnPolicy<F>(F);

impl<F> fmt::Debug for FnPolicy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnPolicy")
    }
}

impl<F> AccessPolicy for FnPolicy<F>
where
    F: Fn(&Reader) -> Result<(), AccessDenied> + Send + Sync + 'static,
{
    fn check(&self, reader: &Reader) -> Result<(), AccessDenied> {
        (self.0)(reader)
    }
}

/// Wraps a closure as an [`AccessPolicy`].
///
/// ```
/// use authtel_audit::{policy_fn, AccessDenied, AccessPolicy, Reader};
/// let only_ops = policy_fn(|r: &Reader| {
///     if r.id() == "ops" { Ok(()) } else { Err(AccessDenied::new(r.id(), "only \"ops\" may read")) }
/// });
/// assert!(only_ops.check(&Reader::new("ops")).is_ok());
/// ```
pub fn policy_fn<F>(f: F) -> FnPolicy<F>
where
    F: Fn(&Reader) -> Result<(), AccessDenied> + Send + Sync + 'static,
{
    FnPolicy(f)
}
