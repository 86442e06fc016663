//! Filters and keyset pagination for reading the audit trail back.
//!
//! Pages are ordered by `(occurred_at, event_id)`, oldest first. A [`Cursor`] names the last
//! row of a page; the next page starts strictly after it, so rows inserted meanwhile never
//! shift a page and every row is returned exactly once.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::outcome::Outcome;
use uuid::Uuid;

use crate::SqlError;

/// The largest page [`AuditQuery::limit`] accepts; larger values are clamped.
pub const MAX_PAGE: u32 = 10_000;

/// What to read: every filter is optional and they combine with AND.
///
/// ```
/// use authtel_core::outcome::Outcome;
/// use authtel_sql::AuditQuery;
/// let q = AuditQuery::new().actor("u_1").outcome(Outcome::Failure).limit(50);
/// assert_eq!(q.page_size(), 50);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    pub(crate) tenant_id: Option<String>,
    pub(crate) actor_id: Option<String>,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) action: Option<String>,
    pub(crate) outcome: Option<Outcome>,
    pub(crate) from: Option<Timestamp>,
    pub(crate) until: Option<Timestamp>,
    pub(crate) after: Option<Cursor>,
    pub(crate) limit: Option<u32>,
}

impl AuditQuery {
    /// Everything, in pages of 100.
    pub fn new() -> AuditQuery {
        AuditQuery::default()
    }

    /// Only records of tenant `id` ([`AuditEvent::tenant_id`]): a query for one tenant never
    /// returns another's rows, nor rows without a tenant. Uses the `(tenant_id, occurred_at)`
    /// index.
    ///
    /// ```
    /// use authtel_sql::AuditQuery;
    /// let q = AuditQuery::new().tenant("acme").actor("u_1");
    /// assert_ne!(q, AuditQuery::new().actor("u_1"));
    /// ```
    pub fn tenant(mut self, id: impl Into<String>) -> Self {
        self.tenant_id = Some(id.into());
        self
    }

    /// Only records whose actor id is `id`.
    pub fn actor(mut self, id: impl Into<String>) -> Self {
        self.actor_id = Some(id.into());
        self
    }

    /// Only records from this client IP.
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// Only records of this action (`auth.login.stop`).
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Only records with this outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only records at or after `t`.
    pub fn from(mut self, t: Timestamp) -> Self {
        self.from = Some(t);
        self
    }

    /// Only records strictly before `t`.
    pub fn until(mut self, t: Timestamp) -> Self {
        self.until = Some(t);
        self
    }

    /// Continue after this cursor (from [`Page::next`]).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Page size, 1 to [`MAX_PAGE`]; default 100.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// The page size this query will use.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, MAX_PAGE)
    }
}

/// An opaque position in the `(occurred_at, event_id)` order. Its text form is stable, so it
/// can travel through an HTTP API.
///
/// ```
/// use authtel_sql::Cursor;
/// let e = authtel_core::audit::AuditEvent::new("auth.login.stop", authtel_core::Outcome::Success).unwrap();
/// let c = Cursor::after_event(&e);
/// assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
/// assert!("nonsense".parse::<Cursor>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    pub(crate) occurred_at: i64,
    pub(crate) event_id: Uuid,
}

impl Cursor {
    /// The cursor just after `event`.
    pub fn after_event(event: &AuditEvent) -> Cursor {
        Cursor {
            occurred_at: event.occurred_at().unix_micros(),
            event_id: event.id(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c1.{:x}.{}", self.occurred_at, self.event_id.simple())
    }
}

impl FromStr for Cursor {
    type Err = SqlError;

    fn from_str(s: &str) -> Result<Cursor, SqlError> {
        let bad = || SqlError::InvalidCursor(authtel_core::metadata::truncate(s, 80).to_owned());
        let mut parts = s.split('.');
        let (Some("c1"), Some(t), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let occurred_at = u64::from_str_radix(t, 16).map_err(|_| bad())? as i64;
        let event_id = Uuid::try_parse(id).map_err(|_| bad())?;
        Ok(Cursor {
            occurred_at,
            event_id,
        })
    }
}

/// One page of records and the cursor for the next one (`None` when this was the last).
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The records, oldest first.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
}
