//! CloudEvents 1.0 in Kafka binary mode: the audit record's JSON is the message value, the
//! event attributes travel as `ce_`-prefixed headers.
//!
//! Binary mode (rather than structured mode) lets consumers route and filter on headers
//! without parsing the value, and keeps the value a plain audit record that any JSON reader
//! understands.
//!
//! | header | value |
//! |---|---|
//! | `ce_specversion` | `1.0` |
//! | `ce_id` | the record's UUIDv7 id |
//! | `ce_source` | configurable, e.g. `authtel://login-service` |
//! | `ce_type` | the record's action, e.g. `auth.login.stop` |
//! | `ce_time` | `occurred_at`, RFC 3339 UTC with microseconds |
//! | `content-type` | `application/json` |
//!
//! # Reading the stream
//! Any Kafka client can consume it. With rdkafka:
//!
//! ```no_run
//! use authtel_kafka::cloudevents::{self, decode, header_str};
//! use rdkafka::ClientConfig;
//! use rdkafka::consumer::{Consumer, StreamConsumer};
//! use rdkafka::message::Message;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let consumer: StreamConsumer = ClientConfig::new()
//!     .set("bootstrap.servers", "127.0.0.1:9092")
//!     .set("group.id", "fraud-scoring")
//!     .set("enable.auto.commit", "false")
//!     .create()?;
//! consumer.subscribe(&["auth-audit"])?;
//! loop {
//!     let m = consumer.recv().await?;
//!     let headers = m.headers();
//!     // Route on headers without parsing the value.
//!     if headers.and_then(|h| header_str(h, cloudevents::TYPE)) != Some("security.lockout") {
//!         continue;
//!     }
//!     let event = decode(m.payload(), headers)?; // checks ce_id against the record
//!     println!("lockout of {:?} at {}", event.actor(), event.occurred_at());
//!     consumer.commit_message(&m, rdkafka::consumer::CommitMode::Async)?;
//! }
//! # }
//! ```

use authtel_core::audit::AuditEvent;
use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::error::DecodeError;

/// The CloudEvents spec version header.
pub const SPECVERSION: &str = "ce_specversion";
/// The event id header (the audit record's id).
pub const ID: &str = "ce_id";
/// The event source header.
pub const SOURCE: &str = "ce_source";
/// The event type header (the audit record's action).
pub const TYPE: &str = "ce_type";
/// The event time header (RFC 3339).
pub const TIME: &str = "ce_time";
/// The content type header.
pub const CONTENT_TYPE: &str = "content-type";
/// The CloudEvents version written.
pub const SPEC_VERSION_VALUE: &str = "1.0";
/// The content type written.
pub const JSON: &str = "application/json";

/// The CloudEvents binary-mode headers for `event`, sent from `source`.
///
/// ```
/// use authtel_core::{audit::AuditEvent, outcome::Outcome};
/// use authtel_kafka::cloudevents::{header_str, headers_for, TYPE};
/// let e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
/// let h = headers_for(&e, "authtel://login");
/// assert_eq!(header_str(&h, TYPE), Some("auth.login.stop"));
/// ```
pub fn headers_for(event: &AuditEvent, source: &str) -> OwnedHeaders {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = event.id().as_hyphenated().encode_lower(&mut id);
    let time = event.occurred_at().to_string();
    OwnedHeaders::new_with_capacity(6)
        .insert(header(SPECVERSION, SPEC_VERSION_VALUE))
        .insert(header(ID, id))
        .insert(header(SOURCE, source))
        .insert(header(TYPE, event.action()))
        .insert(header(TIME, &time))
        .insert(header(CONTENT_TYPE, JSON))
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// The value of header `key` as text, if present and UTF-8.
///
/// ```
/// use authtel_kafka::cloudevents::header_str;
/// use rdkafka::message::{Header, OwnedHeaders};
/// let h = OwnedHeaders::new().insert(Header { key: "ce_id", value: Some("42") });
/// assert_eq!(header_str(&h, "ce_id"), Some("42"));
/// assert_eq!(header_str(&h, "ce_type"), None);
/// ```
pub fn header_str<'h, H: Headers>(headers: &'h H, key: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Decodes a message value (and, when present, checks its `ce_id` header) back into the
/// audit record.
///
/// ```
/// use authtel_core::{audit::AuditEvent, outcome::Outcome};
/// use authtel_kafka::cloudevents::{decode, headers_for};
/// let e = AuditEvent::new("auth.logout.stop", Outcome::Success).unwrap();
/// let value = serde_json::to_vec(&e).unwrap();
/// let headers = headers_for(&e, "authtel://test");
/// assert_eq!(decode(Some(&value), Some(&headers)).unwrap(), e);
/// ```
pub fn decode<H: Headers>(
    value: Option<&[u8]>,
    headers: Option<&H>,
) -> Result<AuditEvent, DecodeError> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or(DecodeError::EmptyPayload)?;
    let event: AuditEvent =
        serde_json::from_slice(value).map_err(|e| DecodeError::NotAuditRecord {
            reason: e.to_string(),
        })?;
    if let Some(header_id) = headers.and_then(|h| header_str(h, ID))
        && uuid::Uuid::parse_str(header_id).ok() != Some(event.id())
    {
        return Err(DecodeError::IdMismatch {
            header: authtel_core::metadata::truncate(header_id, 64).to_owned(),
            record: event.id().to_string(),
        });
    }
    Ok(event)
}
