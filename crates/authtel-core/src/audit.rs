//! The audit record: one per security-relevant occurrence, the same shape in every sink.
//!
//! An [`AuditEvent`] is built from an [`EventRecord`] by [`AuditEvent::from_record`] for the
//! events [`is_audited`] names (span stops and exceptions, and one-shot signals; never
//! starts). Its `id` is a UUIDv7: unique, time-ordered, and the idempotency key every sink
//! deduplicates on. Its JSON shape is stable and versioned by [`SCHEMA_VERSION`]; the JSON
//! Schema is `docs/audit-event.schema.json`.
//!
//! Records built elsewhere — an application action through [`AuditEvent::for_action`], a
//! record read back from a queue — go through [`AuditEvent::sanitize`] before a sink keeps
//! them: it applies the secret policy at every depth of the metadata and enforces the
//! [`MAX_METADATA_BYTES`] and [`MAX_METADATA_DEPTH`] bounds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::catalogue::{self, Event, EventKind, NameError};
use crate::metadata::{self, REDACTED, Value};
use crate::outcome::Outcome;
use crate::policy;
use crate::record::EventRecord;

/// The version of the audit record's JSON shape. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u16 = 1;

/// Largest serialized (compact JSON) size of a record's `metadata`, in bytes.
pub const MAX_METADATA_BYTES: usize = policy::LIMITS.metadata_bytes;

/// Deepest nesting of a record's `metadata`: a top-level value is at depth 1, a value
/// inside a top-level object or array at depth 2, and so on.
pub const MAX_METADATA_DEPTH: usize = policy::LIMITS.metadata_depth;

/// Why an audit record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The action is not a valid event name, or an application action uses a prefix
    /// reserved for the library's catalogue.
    #[error(transparent)]
    InvalidAction(#[from] NameError),
    /// The metadata serializes to more than [`MAX_METADATA_BYTES`].
    #[error(
        "audit record {id} carries {bytes} bytes of metadata, over the {max}-byte cap: keep large payloads out of audit records and store a reference to them instead"
    )]
    MetadataTooLarge {
        /// The record's id.
        id: Uuid,
        /// Its metadata's serialized size.
        bytes: usize,
        /// [`MAX_METADATA_BYTES`].
        max: usize,
    },
    /// The metadata nests deeper than [`MAX_METADATA_DEPTH`].
    #[error(
        "audit record {id} nests metadata deeper than {max} levels under key {key:?}: flatten the structure"
    )]
    MetadataTooDeep {
        /// The record's id.
        id: Uuid,
        /// The top-level key under which the nesting went too deep.
        key: String,
        /// [`MAX_METADATA_DEPTH`].
        max: usize,
    },
    /// The record declares a schema version this build does not read.
    #[error(
        "audit record {id} has schema version {found}, this build reads version {SCHEMA_VERSION}: upgrade authtel where the record is read"
    )]
    UnsupportedSchemaVersion {
        /// The record's id.
        id: Uuid,
        /// The version it declared.
        found: u16,
    },
}

/// Whether an event becomes an audit record: stops, exceptions and signals do; starts don't.
///
/// ```
/// use authtel_core::{audit::is_audited, catalogue};
/// assert!(is_audited(catalogue::AUTH_LOGIN.stop()));
/// assert!(!is_audited(catalogue::AUTH_LOGIN.start()));
/// assert!(is_audited(&catalogue::SECURITY_LOCKOUT));
/// ```
pub fn is_audited(event: &Event) -> bool {
    match event.kind() {
        EventKind::SpanStart => false,
        EventKind::SpanStop | EventKind::SpanException | EventKind::Signal => true,
    }
}

/// A point in time with microsecond precision, serialized as RFC 3339 UTC
/// (`2026-11-22T10:15:30.123456Z`).
///
/// The range that RFC 3339 can write is [`Timestamp::MIN`] to [`Timestamp::MAX`] (years 0000 to
/// 9999); parsing refuses anything outside it with a [`TimestampError`], never a panic.
///
/// ```
/// use authtel_core::audit::Timestamp;
/// let t = Timestamp::from_unix_micros(1_700_000_000_123_456);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
/// assert_eq!("2023-11-14T22:13:20.123456Z".parse::<Timestamp>().unwrap(), t);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest timestamp RFC 3339 can write, `0000-01-01T00:00:00.000000Z`.
    ///
    /// ```
    /// use authtel_core::audit::Timestamp;
    /// assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000000Z");
    /// ```
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000_000);

    /// The latest timestamp RFC 3339 can write, `9999-12-31T23:59:59.999999Z`.
    ///
    /// ```
    /// use authtel_core::audit::Timestamp;
    /// assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
    /// ```
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Now, from the wall clock.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// From microseconds since the Unix epoch.
    ///
    /// Values outside [`Timestamp::MIN`]..=[`Timestamp::MAX`] are kept, but their text form is
    /// not RFC 3339 and does not parse back.
    pub const fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_micros(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(self.0.unsigned_abs())
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }
}

// Civil-from-days and days-from-civil (Howard Hinnant's algorithms), for RFC 3339 without
// a date-time dependency in core. `tests/timestamps_match_the_time_crate.rs` checks them
// against the `time` crate over the whole supported range.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

/// Why a timestamp did not parse: the input (its first 64 bytes) and what is wrong with it.
///
/// ```
/// use authtel_core::audit::Timestamp;
/// let err = "2026-02-30T00:00:00Z".parse::<Timestamp>().unwrap_err();
/// assert!(err.to_string().contains("day"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {input:?} is not RFC 3339 like \"2026-11-22T10:15:30.123456Z\": {reason}")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses RFC 3339 (`T` or `t` between date and time, `Z`, `z` or `±hh:mm` after it).
    /// Fraction digits past the sixth are truncated; a leap second (`23:59:60` UTC on the last
    /// day of a month) becomes the microsecond before the next minute, as the `time` crate does.
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        let err = |reason| TimestampError {
            input: crate::metadata::truncate(s, 64).to_owned(),
            reason,
        };
        // Everything is read byte by byte, so no input can split a character.
        let b = s.as_bytes();
        let digits = |at: usize, n: usize, what: &'static str| -> Result<i64, TimestampError> {
            let part = b.get(at..at + n).ok_or_else(|| err(what))?;
            part.iter().try_fold(0i64, |acc, &c| match c {
                b'0'..=b'9' => Ok(acc * 10 + i64::from(c - b'0')),
                _ => Err(err(what)),
            })
        };
        let literal = |at: usize, want: &[u8], what: &'static str| match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(err(what)),
        };
        let y = digits(0, 4, "the year is not four digits")?;
        literal(4, b"-", "no '-' after the year")?;
        let mo = digits(5, 2, "the month is not two digits")?;
        literal(7, b"-", "no '-' after the month")?;
        let d = digits(8, 2, "the day is not two digits")?;
        literal(10, b"Tt", "no 'T' between date and time")?;
        let h = digits(11, 2, "the hour is not two digits")?;
        literal(13, b":", "no ':' after the hour")?;
        let mi = digits(14, 2, "the minute is not two digits")?;
        literal(16, b":", "no ':' after the minute")?;
        let mut se = digits(17, 2, "the second is not two digits")?;
        if !(1..=12).contains(&mo) {
            return Err(err("the month is not 01 to 12"));
        }
        let (mo, d_u32) = (mo as u32, d as u32);
        if d == 0 || d_u32 > days_in_month(y, mo) {
            return Err(err("the day is not in that month"));
        }
        if h > 23 || mi > 59 || se > 60 {
            return Err(err("the time of day is out of range"));
        }
        let mut at = 19;
        let mut micros = 0i64;
        if b.get(at) == Some(&b'.') {
            let n = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return Err(err("no digits after the '.'"));
            }
            let mut scale = 100_000i64;
            for &c in b[at + 1..at + 1 + n].iter().take(6) {
                micros += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            at += 1 + n;
        }
        let offset_secs = match b.get(at) {
            Some(b'Z' | b'z') if b.len() == at + 1 => 0,
            Some(&sign @ (b'+' | b'-')) if b.len() == at + 6 => {
                let oh = digits(at + 1, 2, "the offset hour is not two digits")?;
                literal(at + 3, b":", "no ':' in the offset")?;
                let om = digits(at + 4, 2, "the offset minute is not two digits")?;
                if oh > 23 || om > 59 {
                    return Err(err("the offset is out of range"));
                }
                let secs = oh * 3600 + om * 60;
                if sign == b'-' { -secs } else { secs }
            }
            _ => return Err(err("it does not end in 'Z' or an offset like '+01:00'")),
        };
        let leap = se == 60;
        if leap {
            se = 59;
            micros = 999_999;
        }
        let days = days_from_civil(y, mo, d_u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
        let t = Timestamp(secs * 1_000_000 + micros);
        if leap {
            let (ly, lm, ld) = civil_from_days(secs.div_euclid(86_400));
            if secs.rem_euclid(86_400) != 86_399 || ld != days_in_month(ly, lm) {
                return Err(err(
                    "a leap second is only 23:59:60 UTC on a month's last day",
                ));
            }
        }
        if !(Timestamp::MIN..=Timestamp::MAX).contains(&t) {
            return Err(err("it is outside years 0000 to 9999 in UTC"));
        }
        Ok(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Who acted, or what was acted upon: an opaque id and its type (`user`, `service`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Party {
    /// Opaque id (never an email).
    pub id: String,
    /// What kind of party: `user`, `service`, `api_token`, `anonymous`, …
    #[serde(rename = "type")]
    pub kind: String,
}

impl Party {
    /// A party of kind `kind`.
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> Party {
        Party {
            id: id.into(),
            kind: kind.into(),
        }
    }
}

/// One audit record. See the module docs and `docs/audit-event.schema.json`.
///
/// ```
/// use authtel_core::audit::AuditEvent;
/// use authtel_core::outcome::Outcome;
/// let e = AuditEvent::new("auth.login.stop", Outcome::Failure);
/// let json = serde_json::to_string(&e).unwrap();
/// let back: AuditEvent = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, e);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Shape version, [`SCHEMA_VERSION`].
    pub schema_version: u16,
    /// UUIDv7: unique, time-ordered; the idempotency key.
    pub id: Uuid,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The catalogue's dotted event name (`auth.login.stop`) or an application action.
    pub action: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Who acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Party>,
    /// What was acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Party>,
    /// The session's opaque id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The client's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// The client's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The resource (authorization decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The operation (authorization decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Why it failed or was denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The span id (16 hex digits) for correlation with logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// A trace id (32 hex digits) when the event happened inside a distributed trace, or
    /// the root span id (16 hex digits) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Further policy-approved fields, bounded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl AuditEvent {
    /// A record for `action` with a fresh UUIDv7 id, happening now.
    ///
    /// Built inside a [request context](crate::context) (an audit row an application writes
    /// itself, in its own transaction), it starts with the context's client IP, user agent,
    /// trace id and `request_id` / `tenant` metadata, as every emitted event does; set a
    /// field afterwards to override it.
    ///
    /// ```
    /// use authtel_core::{audit::AuditEvent, context::RequestContext, outcome::Outcome};
    /// let ctx = RequestContext::builder().client_ip("203.0.113.7".parse()?).request_id("r-1").build();
    /// let e = ctx.in_scope(|| AuditEvent::new("auth.register.stop", Outcome::Success));
    /// assert_eq!(e.client_ip, Some("203.0.113.7".parse()?));
    /// assert_eq!(e.metadata["request_id"], "r-1");
    /// assert_eq!(AuditEvent::new("auth.register.stop", Outcome::Success).client_ip, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(action: impl Into<String>, outcome: Outcome) -> AuditEvent {
        let mut audit = AuditEvent::bare(action.into(), outcome);
        if let Some(ctx) = crate::context::RequestContext::current() {
            audit.inherit(&ctx);
        }
        audit
    }

    /// The context's fields, read through the policy as every getter of it is.
    fn inherit(&mut self, ctx: &crate::context::RequestContext) {
        self.client_ip = ctx.client_ip();
        self.user_agent = ctx.user_agent().map(str::to_owned);
        self.trace_id = ctx
            .trace_parent()
            .map(|tp| tp.trace_id_hex().as_str().to_owned());
        for (key, value) in [
            (crate::context::REQUEST_ID_KEY, ctx.request_id()),
            (crate::context::TENANT_KEY, ctx.tenant()),
        ] {
            if let Some(value) = value {
                self.metadata.insert(key.to_owned(), value.into());
            }
        }
    }

    /// A record with nothing but its id, time, action and outcome.
    fn bare(action: String, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            schema_version: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            occurred_at: Timestamp::now(),
            action,
            outcome,
            actor: None,
            target: None,
            session_id: None,
            client_ip: None,
            user_agent: None,
            resource: None,
            operation: None,
            reason: None,
            span_id: None,
            trace_id: None,
            metadata: BTreeMap::new(),
        }
    }

    /// A record for an application action (`billing.invoice.viewed`), validated against the
    /// catalogue's name grammar and kept out of the library's reserved prefixes
    /// ([`catalogue::validate_application_name`]).
    ///
    /// ```
    /// use authtel_core::audit::{AuditError, AuditEvent};
    /// use authtel_core::outcome::Outcome;
    /// let e = AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).unwrap();
    /// assert_eq!(e.action, "billing.invoice.viewed");
    /// assert!(matches!(
    ///     AuditEvent::for_action("auth.login.stop", Outcome::Success),
    ///     Err(AuditError::InvalidAction(_))
    /// ));
    /// ```
    pub fn for_action(action: &str, outcome: Outcome) -> Result<AuditEvent, AuditError> {
        catalogue::validate_application_name(action)?;
        Ok(AuditEvent::new(action, outcome))
    }

    /// Checks the record without changing it: the action is a catalogue event or a valid
    /// application action, the schema version is [`SCHEMA_VERSION`], and the metadata is
    /// within [`MAX_METADATA_DEPTH`] and [`MAX_METADATA_BYTES`]. It does not look for
    /// secrets; [`AuditEvent::sanitize`] does, and validates too.
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::outcome::Outcome;
    /// let mut e = AuditEvent::new("security.lockout", Outcome::Failure);
    /// assert!(e.validate().is_ok());
    /// e.action = "Not A Name".into();
    /// assert!(e.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(AuditError::UnsupportedSchemaVersion {
                id: self.id,
                found: self.schema_version,
            });
        }
        if !is_catalogue_name(&self.action) {
            catalogue::validate_application_name(&self.action)?;
        }
        for (key, value) in &self.metadata {
            if deeper_than(value, MAX_METADATA_DEPTH) {
                return Err(AuditError::MetadataTooDeep {
                    id: self.id,
                    key: metadata::truncate(key, metadata::MAX_KEY_LEN).to_owned(),
                    max: MAX_METADATA_DEPTH,
                });
            }
        }
        let bytes = self.metadata_size();
        if bytes > MAX_METADATA_BYTES {
            return Err(AuditError::MetadataTooLarge {
                id: self.id,
                bytes,
                max: MAX_METADATA_BYTES,
            });
        }
        Ok(())
    }

    /// Applies the secret policy ([`crate::policy`]) to the whole record and then
    /// [`validate`]s it. Text fields and metadata strings with a credential or an email in
    /// them become `"[REDACTED]"`, and so does any metadata value — at any depth — under a
    /// key that names a secret (booleans excepted); an identifier (actor or target id,
    /// session id, the `rate_limit_key`) holding an email or a credential is redacted (a
    /// party) or dropped (the others); span and trace ids that are not lowercase hex of the
    /// right length are dropped; metadata entries whose key is a value are removed. Returns
    /// how many values were changed; they are added to [`crate::policy::redaction_count`]
    /// once. Idempotent: a sanitized record sanitizes to itself and returns 0.
    ///
    /// Records decoded from JSON are not sanitized by decoding: every sink calls
    /// [`screened`](AuditEvent::screened) before it writes one.
    ///
    /// [`validate`]: AuditEvent::validate
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::metadata::REDACTED;
    /// use authtel_core::outcome::Outcome;
    /// let mut e = AuditEvent::for_action("billing.card.added", Outcome::Success).unwrap();
    /// e.metadata.insert("card".into(), serde_json::json!({"last4": "4242", "auth": {"api_key": "k_123"}}));
    /// e.reason = Some("verify failed: password=hunter2".into());
    /// assert_eq!(e.sanitize().unwrap(), 2);
    /// assert_eq!(e.metadata["card"]["auth"]["api_key"], REDACTED);
    /// assert_eq!(e.metadata["card"]["last4"], "4242");
    /// assert_eq!(e.reason.as_deref(), Some(REDACTED));
    /// assert_eq!(e.sanitize().unwrap(), 0);
    /// ```
    pub fn sanitize(&mut self) -> Result<usize, AuditError> {
        let mut changed = 0;
        for party in [&mut self.actor, &mut self.target].into_iter().flatten() {
            if policy::check_identifier(&party.id).is_err() {
                REDACTED.clone_into(&mut party.id);
                changed += 1;
            }
            changed += screen_string(&mut party.kind);
        }
        if self
            .session_id
            .as_deref()
            .is_some_and(|id| policy::check_identifier(id).is_err())
        {
            self.session_id = None;
            changed += 1;
        }
        for text in [
            &mut self.user_agent,
            &mut self.resource,
            &mut self.operation,
            &mut self.reason,
        ]
        .into_iter()
        .flatten()
        {
            changed += screen_string(text);
        }
        for (id, hex_len) in [
            (&mut self.span_id, &[16][..]),
            (&mut self.trace_id, &[16, 32][..]),
        ] {
            if id.as_deref().is_some_and(|v| !is_lowercase_hex(v, hex_len)) {
                *id = None;
                changed += 1;
            }
        }
        let before = self.metadata.len();
        self.metadata
            .retain(|k, v| !policy::key_is_a_value(k, v) && !refused_identifier(k, v));
        changed += before - self.metadata.len();
        for (key, value) in self.metadata.iter_mut() {
            changed += policy::screen_json(key, value, 1);
        }
        policy::note(changed as u64, 0);
        self.validate()?;
        Ok(changed)
    }

    /// Whether [`sanitize`](AuditEvent::sanitize) would change nothing (checked without
    /// copying the record).
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::outcome::Outcome;
    /// let mut e = AuditEvent::new("security.lockout", Outcome::Failure);
    /// assert!(e.is_screened());
    /// e.user_agent = Some("Bearer 8fK2xQ9aB7".into());
    /// assert!(!e.is_screened());
    /// ```
    pub fn is_screened(&self) -> bool {
        let parties_ok = [&self.actor, &self.target].into_iter().flatten().all(|p| {
            (p.id == REDACTED || policy::check_identifier(&p.id).is_ok())
                && string_is_screened(&p.kind)
        });
        let texts_ok = [
            &self.user_agent,
            &self.resource,
            &self.operation,
            &self.reason,
        ]
        .into_iter()
        .flatten()
        .all(|t| string_is_screened(t));
        parties_ok
            && texts_ok
            && self
                .session_id
                .as_deref()
                .is_none_or(|id| policy::check_identifier(id).is_ok())
            && self
                .span_id
                .as_deref()
                .is_none_or(|v| is_lowercase_hex(v, &[16]))
            && self
                .trace_id
                .as_deref()
                .is_none_or(|v| is_lowercase_hex(v, &[16, 32]))
            && self.metadata.iter().all(|(k, v)| {
                !policy::key_is_a_value(k, v)
                    && !refused_identifier(k, v)
                    && policy::json_is_screened(k, v, 1)
            })
    }

    /// This record as sinks may write it: borrowed when it is already screened (the
    /// common case: records built by [`AuditEvent::from_record`] or decoded from JSON), else
    /// a sanitized copy. The one call every sink makes before it writes a record.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::outcome::Outcome;
    /// let mut e = AuditEvent::new("security.lockout", Outcome::Failure);
    /// assert!(matches!(e.screened(), Ok(Cow::Borrowed(_))));
    /// e.metadata.insert("pw".into(), "hunter2".into());
    /// assert_eq!(e.screened().unwrap().metadata["pw"], "[REDACTED]");
    /// ```
    pub fn screened(&self) -> Result<Cow<'_, AuditEvent>, AuditError> {
        if self.is_screened() {
            self.validate()?;
            return Ok(Cow::Borrowed(self));
        }
        let mut copy = self.clone();
        copy.sanitize()?;
        Ok(Cow::Owned(copy))
    }

    /// The size of the metadata as compact JSON, in bytes (what [`MAX_METADATA_BYTES`]
    /// bounds).
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::outcome::Outcome;
    /// let mut e = AuditEvent::new("security.lockout", Outcome::Failure);
    /// assert_eq!(e.metadata_size(), 0);
    /// e.metadata.insert("k".into(), serde_json::json!(1));
    /// assert_eq!(e.metadata_size(), r#"{"k":1}"#.len());
    /// ```
    pub fn metadata_size(&self) -> usize {
        if self.metadata.is_empty() {
            return 0;
        }
        let mut counter = ByteCounter(0);
        // Writing into a counter cannot fail, and a map of JSON values always serializes.
        let _ = serde_json::to_writer(&mut counter, &self.metadata);
        counter.0
    }

    /// The audit record for an event, or `None` when the event is not audited
    /// ([`is_audited`]).
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// use authtel_core::{catalogue, metadata::Metadata};
    /// let meta = Metadata::new().user_id("u_1").reason("too_many_attempts");
    /// let measurements = Measurements::new();
    /// let record = EventRecord::signal(&catalogue::SECURITY_LOCKOUT, SpanContext::child_of(None), &measurements, &meta);
    /// let audit = AuditEvent::from_record(&record).unwrap();
    /// assert_eq!(audit.action, "security.lockout");
    /// assert_eq!(audit.actor.unwrap().id, "u_1");
    /// ```
    pub fn from_record(record: &EventRecord<'_>) -> Option<AuditEvent> {
        if !is_audited(record.event) {
            return None;
        }
        let m = record.metadata;
        let outcome = record.outcome.unwrap_or(match record.event.kind() {
            EventKind::SpanException => Outcome::Error,
            _ => default_signal_outcome(record.event),
        });
        // Not `new`: the record's metadata already holds the context it was emitted in.
        let mut audit = AuditEvent::bare(record.event.name().to_owned(), outcome);
        if let Some(t) = record.measurements.system_time {
            audit.occurred_at = Timestamp::from(t);
        }
        audit.actor = m
            .get_user_id()
            .map(|id| Party::new(id, "user"))
            .or_else(|| m.get_caller().map(|id| Party::new(id, "caller")));
        audit.session_id = m.get_session_id().map(str::to_owned);
        audit.client_ip = m.get_client_ip();
        audit.user_agent = m.get_user_agent().map(str::to_owned);
        audit.resource = m.get_resource().map(str::to_owned);
        audit.operation = m.get_operation().map(str::to_owned);
        audit.reason = m
            .get_reason()
            .map(str::to_owned)
            .or_else(|| record.exception.and_then(|e| e.reason).map(str::to_owned));
        audit.span_id = Some(record.context.span_id.to_string());
        // Inside a distributed trace (a `traceparent`, usually from the request context) the
        // trace's id; else the root span's id.
        audit.trace_id = Some(match m.get_trace_parent() {
            Some(tp) => tp.trace_id_hex().as_str().to_owned(),
            None => record.context.root_id.to_string(),
        });
        let mut put = |k: &str, v: serde_json::Value| {
            audit.metadata.insert(k.to_owned(), v);
        };
        if let Some(p) = m.get_provider() {
            put("provider", p.into());
        }
        if let Some(p) = m.get_method() {
            put("method", p.into());
        }
        if let Some(n) = m.get_attempts_remaining() {
            put("attempts_remaining", n.into());
        }
        if let Some(a) = m.get_admin() {
            put("admin", a.into());
        }
        if let Some(k) = m.get_rate_limit_key() {
            put("rate_limit_key", k.into());
        }
        if let Some(e) = record.error_type {
            put("error_type", e.into());
        }
        if let Some(d) = record.measurements.duration {
            put("duration_ms", serde_json::json!(d.as_secs_f64() * 1000.0));
        }
        for (k, v) in m.extra() {
            put(k, value_to_json(v));
        }
        Some(audit)
    }

    /// The key that orders this record among its peers: the actor id, else the client IP,
    /// else `"anonymous"`. Kafka uses it as the message key.
    pub fn partition_key(&self) -> String {
        match (&self.actor, self.client_ip) {
            (Some(a), _) => a.id.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "anonymous".to_owned(),
        }
    }
}

/// Counts bytes written, for sizing JSON without building it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn is_catalogue_name(name: &str) -> bool {
    type Names = std::collections::HashSet<&'static str, BuildFnv>;
    static NAMES: std::sync::OnceLock<Names> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| catalogue::all().iter().map(|e| e.name()).collect())
        .contains(name)
}

/// FNV-1a, for the fixed set of catalogue names: nobody can add keys to it, so an unkeyed
/// hash cannot be forced into collisions, and it is several times cheaper than SipHash on
/// every record a store validates.
#[derive(Clone, Copy, Default)]
struct BuildFnv;

struct Fnv(u64);

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Whether a JSON value nests deeper than `max` (scalars and empty containers have depth
/// 1). Descends at most `max + 1` levels, so a hostile value cannot exhaust the stack.
fn deeper_than(value: &serde_json::Value, max: usize) -> bool {
    if max == 0 {
        return true;
    }
    match value {
        serde_json::Value::Array(items) => items.iter().any(|v| deeper_than(v, max - 1)),
        serde_json::Value::Object(map) => map.values().any(|v| deeper_than(v, max - 1)),
        _ => false,
    }
}

/// Screens a text field in place; returns 1 when it was redacted.
fn screen_string(text: &mut String) -> usize {
    match policy::screen(text) {
        Some(kept) => {
            let keep = kept.len();
            text.truncate(keep);
            0
        }
        None => {
            REDACTED.clone_into(text);
            1
        }
    }
}

fn string_is_screened(text: &str) -> bool {
    policy::text_is_screened(text)
}

/// Whether a metadata entry is an identifier the policy refuses (`rate_limit_key`).
fn refused_identifier(key: &str, value: &serde_json::Value) -> bool {
    key == "rate_limit_key"
        && value
            .as_str()
            .is_some_and(|v| policy::check_identifier(v).is_err())
}

/// Whether `v` is lowercase hex of one of the lengths in `lens` (span and trace ids).
fn is_lowercase_hex(v: &str, lens: &[usize]) -> bool {
    lens.contains(&v.len()) && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn default_signal_outcome(event: &Event) -> Outcome {
    match event.name() {
        "authorization.denied" => Outcome::Denied,
        "authorization.error" => Outcome::Error,
        _ if event.severity() >= crate::catalogue::Severity::Warn => Outcome::Failure,
        _ => Outcome::Success,
    }
}

fn value_to_json(v: Value<'_>) -> serde_json::Value {
    match v {
        Value::Str(s) => s.into(),
        Value::I64(n) => n.into(),
        Value::U64(n) => n.into(),
        Value::F64(n) => {
            serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Bool(b) => b.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for micros in [
            0,
            1,
            -1,
            951_782_400_000_000,
            4_102_444_799_999_999,
            -62_135_596_800_000_000,
        ] {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t, "{t}");
        }
        assert_eq!(
            "2026-11-22T10:00:00+01:00"
                .parse::<Timestamp>()
                .unwrap()
                .to_string(),
            "2026-11-22T09:00:00.000000Z"
        );
        assert!("2026-13-01T00:00:00Z".parse::<Timestamp>().is_err());
        assert!("garbage".parse::<Timestamp>().is_err());
    }

    #[test]
    fn application_actions_are_validated_and_kept_out_of_reserved_prefixes() {
        assert!(AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).is_ok());
        for (bad, want_reserved) in [
            ("security.lockout", true),
            ("authtel.anything", true),
            ("Billing.Invoice", false),
            ("billing", false),
            ("billing..x", false),
        ] {
            let err = AuditEvent::for_action(bad, Outcome::Success).unwrap_err();
            let reserved = matches!(err, AuditError::InvalidAction(NameError::Reserved { .. }));
            assert_eq!(reserved, want_reserved, "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn validate_accepts_catalogue_actions_and_refuses_unknown_reserved_ones() {
        let mut e = AuditEvent::new("auth.login.stop", Outcome::Success);
        assert_eq!(e.validate(), Ok(()));
        e.action = "auth.not_in_catalogue".into();
        assert!(matches!(e.validate(), Err(AuditError::InvalidAction(_))));
        e.action = "auth.login.stop".into();
        e.schema_version = SCHEMA_VERSION + 1;
        assert!(matches!(
            e.validate(),
            Err(AuditError::UnsupportedSchemaVersion { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn sanitize_redacts_secrets_at_every_depth_and_counts_them() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpM";
        let mut e = AuditEvent::for_action("billing.card.added", Outcome::Success).unwrap();
        e.reason = Some(format!("token={jwt}"));
        e.metadata
            .insert("password".into(), serde_json::json!("hunter2"));
        e.metadata.insert(
            "request".into(),
            serde_json::json!({
                "headers": {"Cookie": "sid=abc", "accept": "json"},
                "items": [{"refresh_token": "r1"}, "Bearer xyz", "plain"],
                "nested": {"deeper": {"client_secret": "s3"}}
            }),
        );
        let before = metadata::redaction_count();
        assert_eq!(e.sanitize(), Ok(6));
        assert!(metadata::redaction_count() >= before + 6);
        let text = serde_json::to_string(&e).unwrap();
        for secret in ["hunter2", "sid=abc", "r1", "xyz", "s3", jwt] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(e.metadata["request"]["headers"]["accept"], "json");
        assert_eq!(e.metadata["request"]["items"][2], "plain");
        // Already redacted: a second pass changes nothing.
        assert_eq!(e.sanitize(), Ok(0));
    }

    #[test]
    fn oversized_metadata_is_a_typed_error() {
        let mut e = AuditEvent::for_action("billing.export.done", Outcome::Success).unwrap();
        for i in 0..64 {
            e.metadata
                .insert(format!("row{i}"), serde_json::json!("x".repeat(200)));
        }
        let err = e.sanitize().unwrap_err();
        assert!(
            matches!(err, AuditError::MetadataTooLarge { bytes, max, .. } if bytes > max && max == MAX_METADATA_BYTES),
            "{err}"
        );
        assert!(err.to_string().contains("over the 8192-byte cap"), "{err}");
    }

    #[test]
    fn too_deep_metadata_is_a_typed_error() {
        let mut e = AuditEvent::for_action("billing.export.done", Outcome::Success).unwrap();
        e.metadata
            .insert("ok".into(), serde_json::json!({"a": {"b": {"c": 1}}}));
        assert_eq!(e.validate(), Ok(()));
        e.metadata.insert(
            "deep".into(),
            serde_json::json!({"a": {"b": {"c": {"d": 1}}}}),
        );
        assert!(matches!(
            e.sanitize(),
            Err(AuditError::MetadataTooDeep { key, max: MAX_METADATA_DEPTH, .. }) if key == "deep"
        ));
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = AuditEvent::new("auth.login.stop", Outcome::Success);
        let b = AuditEvent::new("auth.login.stop", Outcome::Success);
        assert!(a.id < b.id);
        assert_eq!(a.id.get_version_num(), 7);
    }
}
