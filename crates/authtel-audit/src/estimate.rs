//! Estimated memory of a stored record: what the `max_bytes` bound counts.
//!
//! An estimate, not an allocator measurement: the record's inline size, the heap capacity of
//! its strings and metadata, allocator/node overheads approximated per allocation, and the
//! record's share of the store's indexes. It errs on the high side so that the bound holds.

use std::mem::size_of;

use authtel_core::audit::{AuditEvent, Party};
use serde_json::Value;

/// Bookkeeping per heap allocation (allocator header and rounding), approximated.
const PER_ALLOCATION: usize = 16;
/// A `BTreeMap`/`serde_json::Map` entry's share of its node, beyond key and value.
const PER_MAP_ENTRY: usize = 16;
/// A record's share of its indexes beyond its entry's links: at most a key slot (hash,
/// key string, newest link, count, table bucket) per keyed index (actor, resource, action).
const INDEX_SHARE: usize = 3 * 64;

/// Estimated bytes one stored record costs, including its index entries.
pub(crate) fn record_bytes(event: &AuditEvent) -> usize {
    let texts = [
        Some(event.action()),
        event.session_id(),
        event.user_agent(),
        event.resource(),
        event.operation(),
        event.reason(),
        event.span_id(),
        event.trace_id(),
    ];
    let text_bytes: usize = texts.into_iter().flatten().map(str_heap).sum();
    let party_bytes: usize = [event.actor(), event.target()]
        .into_iter()
        .flatten()
        .map(|p: &Party| string_heap(&p.id) + string_heap(&p.kind))
        .sum();
    let metadata_bytes: usize = event
        .metadata()
        .iter()
        .map(|(k, v)| string_heap(k) + PER_MAP_ENTRY + size_of::<String>() + value_bytes(v))
        .sum();
    // Index keys are shared by all records with that key; charging each record its key's
    // length over-counts, which keeps the bound safe.
    let index_keys = event.actor().map_or(0, |a| a.id.len())
        + event.resource().map_or(0, str::len)
        + event.action().len();
    size_of::<AuditEvent>()
        + PER_ALLOCATION
        + 2 * size_of::<usize>() // the Arc's counts
        + size_of::<crate::inner::Entry>()
        + text_bytes
        + party_bytes
        + metadata_bytes
        + INDEX_SHARE
        + index_keys
}

/// Heap bytes of a text field read through a getter: core's setters fit every text field
/// to its length, so its length is its capacity.
fn str_heap(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.len() + PER_ALLOCATION
    }
}

fn string_heap(s: &String) -> usize {
    if s.capacity() == 0 {
        0
    } else {
        s.capacity() + PER_ALLOCATION
    }
}

/// Inline size of a JSON value plus everything it owns on the heap.
fn value_bytes(v: &Value) -> usize {
    size_of::<Value>()
        + match v {
            Value::String(s) => string_heap(s),
            Value::Array(items) => {
                PER_ALLOCATION
                    + (items.capacity() - items.len()) * size_of::<Value>()
                    + items.iter().map(value_bytes).sum::<usize>()
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| string_heap(k) + size_of::<String>() + PER_MAP_ENTRY + value_bytes(v))
                .sum(),
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::outcome::Outcome;

    #[test]
    fn estimate_grows_with_content() {
        let small = AuditEvent::new("security.lockout", Outcome::Failure).unwrap();
        let big = small
            .clone()
            .with_reason("r".repeat(200))
            .with_metadata("detail", serde_json::json!({"list": ["x".repeat(200)]}))
            .and_then(|e| e.with_metadata("more", "y".repeat(200)))
            .and_then(|e| e.with_metadata("most", "z".repeat(200)))
            .and_then(|e| e.with_metadata("rest", "w".repeat(200)))
            .unwrap();
        let (s, b) = (record_bytes(&small), record_bytes(&big));
        assert!(s >= size_of::<AuditEvent>(), "{s}");
        assert!(b >= s + 1000, "{s} -> {b}");
    }
}
