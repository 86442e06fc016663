//! Fuzzing the CloudEvents decoder (`cloudevents::decode`, what the projector runs on every
//! Kafka message, and the same `AuditEvent` JSON decoding spill and dead-letter files use):
//! arbitrary bytes, a valid record with random edits (bytes replaced, multi-byte characters
//! and NULs inserted, cuts), random timestamps and random `ce_id` headers. No input panics
//! or hangs; every result is a record or a typed `DecodeError`, and a decoded record
//! encodes and decodes back to itself. Bounded: a few thousand cases per property, a couple
//! of seconds in all, no broker needed.

use authtel_kafka::DecodeError;
use authtel_kafka::cloudevents::decode;
use proptest::prelude::*;
use rdkafka::message::{Header, OwnedHeaders};

/// A record with every field set, as the forwarder writes it.
fn seed() -> serde_json::Value {
    serde_json::json!({
        "schema_version": 1,
        "id": "0193a5e2-7c1f-7b3e-9d41-6f2a8c0e1b55",
        "occurred_at": "2026-12-02T14:05:09.123456Z",
        "action": "auth.login.stop",
        "outcome": "failure",
        "actor": { "id": "u_42", "type": "user" },
        "target": { "id": "acct_7", "type": "account" },
        "session_id": "s_1",
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "resource": "/admin",
        "operation": "read",
        "reason": "invalid_credentials",
        "span_id": "00f067aa0ba902b7",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "metadata": { "request_id": "r-1", "attempt": 3, "nested": { "a": [1, 2, null] } }
    })
}

fn headers(id: Option<&[u8]>) -> Option<OwnedHeaders> {
    id.map(|id| {
        OwnedHeaders::new().insert(Header {
            key: "ce_id",
            value: Some(id),
        })
    })
}

/// Decodes, and checks what any outcome must satisfy.
fn check(value: &[u8], id_header: Option<&[u8]>) {
    let headers = headers(id_header);
    match decode(Some(value), headers.as_ref()) {
        Ok(event) => {
            // A record that decodes encodes to JSON that decodes to the same record.
            let again = serde_json::to_vec(&event).expect("a decoded record encodes");
            let back = decode::<OwnedHeaders>(Some(&again), None).expect("and decodes again");
            assert_eq!(back, event);
            if let Some(id) = id_header {
                // Only a header naming the record's id passes the check.
                let named = std::str::from_utf8(id)
                    .ok()
                    .and_then(|h| uuid::Uuid::parse_str(h).ok());
                assert_eq!(named, Some(event.id()), "{:?}", String::from_utf8_lossy(id));
            }
        }
        Err(DecodeError::EmptyPayload) => assert!(value.is_empty()),
        Err(DecodeError::NotAuditRecord { reason }) => assert!(!reason.is_empty()),
        Err(DecodeError::IdMismatch { header, record }) => {
            assert!(header.len() <= 64 * 4 && !record.is_empty());
        }
        // `DecodeError` is non-exhaustive: a later kind is still a typed error.
        Err(other) => assert!(!other.to_string().is_empty()),
    }
}

/// One edit of a record's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, char),
    Delete(usize),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let awkward = prop::sample::select(vec![
        '\0', 'é', '€', '💥', '\u{202e}', '+', '-', ':', '.', 'Z', 'T', '9', '"', '\\', '{', ']',
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), prop_oneof![awkward, any::<char>()]).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match *edit {
        Edit::Replace(i, b) => {
            let i = at(i);
            bytes[i] = b;
        }
        Edit::Insert(i, c) => {
            let i = at(i);
            let mut buf = [0; 4];
            bytes.splice(i..i, c.encode_utf8(&mut buf).bytes());
        }
        Edit::Delete(i) => {
            let i = at(i);
            bytes.remove(i);
        }
        Edit::Cut(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_record_or_a_typed_error(
        value in prop::collection::vec(any::<u8>(), 0..512),
        header in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
    ) {
        check(&value, header.as_deref());
    }

    #[test]
    fn an_edited_record_is_a_record_or_a_typed_error(
        edits in prop::collection::vec(edit(), 1..8),
        with_header in any::<bool>(),
    ) {
        let mut bytes = serde_json::to_vec(&seed()).unwrap();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let header = with_header.then_some(&b"0193a5e2-7c1f-7b3e-9d41-6f2a8c0e1b55"[..]);
        check(&bytes, header);
    }

    #[test]
    fn any_timestamp_is_a_record_or_a_typed_error(
        stamp in prop_oneof![
            "[0-9T:.Z+\\-é€ ]{0,40}",
            "2026-12-02T14:05:09(\\.[0-9]{0,12})?([Zz]|[+\\-][0-9é€:]{0,6})?",
            "[+\\-]?[0-9]{1,8}-[0-9]{1,3}-[0-9]{1,3}T[0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}Z",
        ],
    ) {
        let mut record = seed();
        record["occurred_at"] = stamp.clone().into();
        let bytes = serde_json::to_vec(&record).unwrap();
        check(&bytes, None);
    }

    #[test]
    fn a_header_naming_another_id_is_refused(
        header in "[0-9a-f\\-]{0,40}|0193a5e2-7c1f-7b3e-9d41-6f2a8c0e1b5[0-9a-f]",
    ) {
        let bytes = serde_json::to_vec(&seed()).unwrap();
        let headers = headers(Some(header.as_bytes()));
        let result = decode(Some(&bytes), headers.as_ref());
        let names_it = uuid::Uuid::parse_str(&header).ok()
            == Some("0193a5e2-7c1f-7b3e-9d41-6f2a8c0e1b55".parse().unwrap());
        prop_assert_eq!(result.is_ok(), names_it, "{:?}", result);
        check(&bytes, Some(header.as_bytes()));
    }
}

#[test]
fn the_seed_decodes_so_the_edits_start_from_a_record() {
    let bytes = serde_json::to_vec(&seed()).unwrap();
    let event = decode::<OwnedHeaders>(Some(&bytes), None).expect("the seed is a record");
    assert_eq!(event.action(), "auth.login.stop");
    assert_eq!(event.metadata().len(), 3);
}
