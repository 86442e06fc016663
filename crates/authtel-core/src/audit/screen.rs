//! The policy as it applies to each field of an [`AuditEvent`], and the one way a decoded
//! record becomes one ([`AuditEventParts`]).
//!
//! Every setter of [`AuditEvent`] and every decoder (serde, SQL rows) calls the rules here,
//! so a record is screened when it is made and never again. Each rule either rewrites the
//! value (a secret becomes [`REDACTED`], an identifier the policy refuses is dropped) and
//! says how many values it changed, or refuses the whole record with an [`AuditError`]
//! (an action that is not an event name, a schema version this build does not read,
//! metadata over [`MAX_METADATA_DEPTH`] or [`MAX_METADATA_BYTES`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use uuid::Uuid;

use super::{
    AuditError, AuditEvent, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_METADATA_ENTRIES, Party,
    SCHEMA_VERSION, Timestamp,
};
use crate::catalogue;
use crate::metadata::{self, REDACTED};
use crate::outcome::Outcome;
use crate::policy;

/// A record's fields as read back from outside (a Kafka message, a spill or dead-letter
/// file, an SQL row, any JSON), before the policy has seen them.
///
/// `AuditEvent::try_from(parts)` is the one way such fields become an [`AuditEvent`], and
/// `Deserialize for AuditEvent` goes through it too: every value is screened exactly as the
/// record's setters screen it, and what the setters refuse is refused here, so a decoded
/// record that carried a secret comes out screened.
///
/// ```
/// use authtel_core::audit::{AuditEvent, AuditEventParts, Timestamp};
/// use authtel_core::outcome::Outcome;
/// let parts = AuditEventParts {
///     reason: Some("verify failed: password=hunter2".into()),
///     ..AuditEventParts::new(uuid::Uuid::now_v7(), Timestamp::now(), "auth.login.stop", Outcome::Failure)
/// };
/// let e = AuditEvent::try_from(parts)?;
/// assert_eq!(e.reason(), Some("[REDACTED]"));
/// # Ok::<(), authtel_core::audit::AuditError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AuditEventParts {
    /// Shape version; anything but [`SCHEMA_VERSION`] is refused.
    pub schema_version: u16,
    /// The record's id.
    pub id: Uuid,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// A catalogue event name or a valid application action; anything else is refused.
    pub action: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Who acted.
    #[serde(default)]
    pub actor: Option<Party>,
    /// What was acted upon.
    #[serde(default)]
    pub target: Option<Party>,
    /// The tenant's opaque id.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The session's opaque id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The client's IP.
    #[serde(default)]
    pub client_ip: Option<IpAddr>,
    /// The client's user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The resource.
    #[serde(default)]
    pub resource: Option<String>,
    /// The operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Why it failed or was denied.
    #[serde(default)]
    pub reason: Option<String>,
    /// The span id.
    #[serde(default)]
    pub span_id: Option<String>,
    /// The trace id.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Further fields.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl AuditEventParts {
    /// Parts with the four required fields, [`SCHEMA_VERSION`] and nothing else.
    pub fn new(
        id: Uuid,
        occurred_at: Timestamp,
        action: impl Into<String>,
        outcome: Outcome,
    ) -> AuditEventParts {
        AuditEventParts {
            schema_version: SCHEMA_VERSION,
            id,
            occurred_at,
            action: action.into(),
            outcome,
            actor: None,
            target: None,
            tenant_id: None,
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
}

impl TryFrom<AuditEventParts> for AuditEvent {
    type Error = AuditError;

    fn try_from(p: AuditEventParts) -> Result<AuditEvent, AuditError> {
        if p.schema_version != SCHEMA_VERSION {
            return Err(AuditError::UnsupportedSchemaVersion {
                id: p.id,
                found: p.schema_version,
            });
        }
        check_action(&p.action)?;
        let mut t = Tally(0);
        let mut metadata = BTreeMap::new();
        for (key, value) in p.metadata {
            if let Some(value) = t.take(entry(&key, value)) {
                metadata.insert(key, value);
            }
        }
        let record = AuditEvent {
            schema_version: SCHEMA_VERSION,
            id: p.id,
            occurred_at: p.occurred_at,
            action: p.action,
            outcome: p.outcome,
            actor: p.actor.map(|v| t.take(party(v))),
            target: p.target.map(|v| t.take(party(v))),
            tenant_id: p.tenant_id.and_then(|v| t.take(identifier(v))),
            session_id: p.session_id.and_then(|v| t.take(identifier(v))),
            client_ip: p.client_ip,
            user_agent: p.user_agent.map(|v| t.take(text(v))),
            resource: p.resource.map(|v| t.take(text(v))),
            operation: p.operation.map(|v| t.take(text(v))),
            reason: p.reason.map(|v| t.take(text(v))),
            span_id: p.span_id.and_then(|v| t.take(span_id(v))),
            trace_id: p.trace_id.and_then(|v| t.take(trace_id(v))),
            metadata,
        };
        policy::note(t.0 as u64, 0);
        check_bounds(record.id, &record.metadata)?;
        Ok(record)
    }
}

/// Counts the values the rules changed, to note them once per record.
struct Tally(usize);

impl Tally {
    fn take<T>(&mut self, (value, changed): (T, usize)) -> T {
        self.0 += changed;
        value
    }
}

/// A rule's result with its change noted at once (one setter call is one record's change).
pub(super) fn noted<T>((value, changed): (T, usize)) -> T {
    policy::note(changed as u64, 0);
    value
}

/// A free-text field: [`REDACTED`] when the screen finds a credential, else cut to the
/// text limit.
pub(super) fn text(mut value: String) -> (String, usize) {
    match policy::screen(&value) {
        Some(kept) => {
            let keep = kept.len();
            value.truncate(keep);
            (fitted(value), 0)
        }
        None => (REDACTED.to_owned(), 1),
    }
}

/// `value` holding no more heap than its length: a record keeps what it was given for as
/// long as a store keeps it, and a store's memory bound counts lengths.
fn fitted(mut value: String) -> String {
    value.shrink_to_fit();
    value
}

/// A party: an id the policy refuses as an identifier reads as [`REDACTED`] (the record
/// keeps saying that someone acted); its kind is screened as text.
pub(super) fn party(mut party: Party) -> (Party, usize) {
    let mut changed = 0;
    if party.id != REDACTED && policy::check_identifier(&party.id).is_err() {
        party.id = REDACTED.to_owned();
        changed += 1;
    }
    party.id = fitted(party.id);
    let (kind, n) = text(party.kind);
    party.kind = kind;
    (party, changed + n)
}

/// An identifier (the session id): dropped when the policy refuses it.
pub(super) fn identifier(id: String) -> (Option<String>, usize) {
    match policy::check_identifier(&id) {
        Ok(()) => (Some(fitted(id)), 0),
        Err(_) => (None, 1),
    }
}

/// A span id: 16 lowercase hex digits, else dropped.
pub(super) fn span_id(id: String) -> (Option<String>, usize) {
    hex(id, &[16])
}

/// A trace id: 32 (a distributed trace) or 16 (a root span) lowercase hex digits, else
/// dropped.
pub(super) fn trace_id(id: String) -> (Option<String>, usize) {
    hex(id, &[16, 32])
}

fn hex(id: String, lens: &[usize]) -> (Option<String>, usize) {
    let ok = lens.contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok { (Some(fitted(id)), 0) } else { (None, 1) }
}

/// A metadata entry: removed when its key is a value passed in the key's place or it is a
/// `rate_limit_key` the policy refuses as an identifier; else its value screened at every
/// depth ([`policy::screen_json`]).
pub(super) fn entry(key: &str, mut value: serde_json::Value) -> (Option<serde_json::Value>, usize) {
    let refused_identifier = key == "rate_limit_key"
        && value
            .as_str()
            .is_some_and(|v| policy::check_identifier(v).is_err());
    if refused_identifier || policy::key_is_a_value(key, &value) {
        return (None, 1);
    }
    let changed = policy::screen_json(key, &mut value, 1);
    (Some(value), changed)
}

/// Refuses an action that is neither a catalogue event nor a valid application action.
pub(super) fn check_action(action: &str) -> Result<(), AuditError> {
    if !is_catalogue_name(action) {
        catalogue::validate_application_name(action)?;
    }
    Ok(())
}

/// Refuses metadata deeper than [`MAX_METADATA_DEPTH`], with more than
/// [`MAX_METADATA_ENTRIES`] entries, or larger than [`MAX_METADATA_BYTES`].
pub(super) fn check_bounds(
    id: Uuid,
    metadata: &BTreeMap<String, serde_json::Value>,
) -> Result<(), AuditError> {
    for (key, value) in metadata {
        if deeper_than(value, MAX_METADATA_DEPTH) {
            return Err(AuditError::MetadataTooDeep {
                id,
                key: metadata::truncate(key, metadata::MAX_KEY_LEN).to_owned(),
                max: MAX_METADATA_DEPTH,
            });
        }
    }
    // Depth is bounded above, so counting cannot recurse far; it stops once over the cap.
    let mut budget = MAX_METADATA_ENTRIES;
    if !metadata
        .values()
        .all(|value| take_entries(value, &mut budget))
    {
        return Err(AuditError::MetadataTooManyEntries {
            id,
            max: MAX_METADATA_ENTRIES,
        });
    }
    let bytes = metadata_size(metadata);
    if bytes > MAX_METADATA_BYTES {
        return Err(AuditError::MetadataTooLarge {
            id,
            bytes,
            max: MAX_METADATA_BYTES,
        });
    }
    Ok(())
}

/// The size of `metadata` as compact JSON, in bytes.
pub(super) fn metadata_size(metadata: &BTreeMap<String, serde_json::Value>) -> usize {
    if metadata.is_empty() {
        return 0;
    }
    let mut counter = ByteCounter(0);
    // Writing into a counter cannot fail, and a map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut counter, metadata);
    counter.0
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

/// Takes one entry for `value` (a top-level key's value, an object entry or an array item)
/// and one for each entry inside it from `budget`; `false` once the budget is spent.
fn take_entries(value: &serde_json::Value, budget: &mut usize) -> bool {
    let Some(left) = budget.checked_sub(1) else {
        return false;
    };
    *budget = left;
    match value {
        serde_json::Value::Array(items) => items.iter().all(|v| take_entries(v, budget)),
        serde_json::Value::Object(map) => map.values().all(|v| take_entries(v, budget)),
        _ => true,
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

fn is_catalogue_name(name: &str) -> bool {
    type Names = std::collections::HashSet<&'static str, BuildFnv>;
    static NAMES: std::sync::OnceLock<Names> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| catalogue::all().iter().map(|e| e.name()).collect())
        .contains(name)
}

/// FNV-1a, for the fixed set of catalogue names: nobody can add keys to it, so an unkeyed
/// hash cannot be forced into collisions, and it is several times cheaper than SipHash on
/// every record a decoder checks.
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
