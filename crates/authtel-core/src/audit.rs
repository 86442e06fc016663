//! The audit record: one per security-relevant occurrence, the same shape in every sink.
//!
//! An [`AuditEvent`] is built from an [`EventRecord`] by [`AuditEvent::from_record`] for the
//! events [`is_audited`] names (span stops and exceptions, and one-shot signals; never
//! starts). Its `id` is a UUIDv7: unique, time-ordered, and the idempotency key every sink
//! deduplicates on. Its JSON shape is stable and versioned by [`SCHEMA_VERSION`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::catalogue::{Event, EventKind};
use crate::metadata::Value;
use crate::outcome::Outcome;
use crate::telemetry::EventRecord;

/// The version of the audit record's JSON shape. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u16 = 1;

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
/// ```
/// use authtel_core::audit::Timestamp;
/// let t = Timestamp::from_unix_micros(1_700_000_000_123_456);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
/// assert_eq!("2023-11-14T22:13:20.123456Z".parse::<Timestamp>().unwrap(), t);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now, from the wall clock.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// From microseconds since the Unix epoch.
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
// a date-time dependency in core.
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

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not RFC 3339 UTC like \"2026-11-22T10:15:30.123456Z\"")]
pub struct TimestampError(String);

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        let err = || TimestampError(crate::metadata::truncate(s, 64).to_owned());
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return Err(err());
        }
        let mut rest = &s[19..];
        let mut micros = 0i64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            let mut scale = 100_000i64;
            for c in frac[..digits].bytes().take(6) {
                micros += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            rest = &frac[digits..];
        }
        let offset_secs = match rest {
            "Z" | "z" => 0,
            o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let oh: i64 = o[1..3].parse().map_err(|_| err())?;
                let om: i64 = o[4..6].parse().map_err(|_| err())?;
                sign * (oh * 3600 + om * 60)
            }
            _ => return Err(err()),
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
        Ok(Timestamp(secs * 1_000_000 + micros))
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
    pub fn new(action: impl Into<String>, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            schema_version: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            occurred_at: Timestamp::now(),
            action: action.into(),
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

    /// The audit record for an event, or `None` when the event is not audited
    /// ([`is_audited`]).
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// use authtel_core::{catalogue, metadata::Metadata};
    /// let meta = Metadata::new().user_id("u_1").reason("too_many_attempts");
    /// let record = EventRecord::signal(&catalogue::SECURITY_LOCKOUT, SpanContext::child_of(None), Measurements::new(), &meta);
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
        let mut audit = AuditEvent::new(record.event.name(), outcome);
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
            .or_else(|| record.exception.map(|e| e.reason.to_owned()));
        audit.span_id = Some(record.context.span_id.to_string());
        audit.trace_id = Some(record.context.root_id.to_string());
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
    fn ids_are_time_ordered() {
        let a = AuditEvent::new("auth.login.stop", Outcome::Success);
        let b = AuditEvent::new("auth.login.stop", Outcome::Success);
        assert!(a.id < b.id);
        assert_eq!(a.id.get_version_num(), 7);
    }
}
