//! Last line of defence against secrets: records built through `AuditEvent::from_record`
//! are already clean, but an application can build an `AuditEvent` by hand. Before a record
//! leaves the process, metadata keys that name a secret and text that looks like a
//! credential are replaced by core's `[REDACTED]` marker.

use std::borrow::Cow;

use authtel_core::audit::AuditEvent;
use authtel_core::metadata::{REDACTED, key_names_secret, looks_like_credential};

/// The record as it may be sent: borrowed when clean, a redacted copy otherwise.
pub(crate) fn scrubbed(event: &AuditEvent) -> Cow<'_, AuditEvent> {
    if !needs_scrub(event) {
        return Cow::Borrowed(event);
    }
    let mut copy = event.clone();
    for text in text_fields(&mut copy) {
        if looks_like_credential(text) {
            REDACTED.clone_into(text);
        }
    }
    for (key, value) in copy.metadata.iter_mut() {
        if key_names_secret(key) || json_has_credential(value) {
            *value = serde_json::Value::from(REDACTED);
        }
    }
    Cow::Owned(copy)
}

fn needs_scrub(event: &AuditEvent) -> bool {
    let texts = [
        event.actor.as_ref().map(|p| p.id.as_str()),
        event.target.as_ref().map(|p| p.id.as_str()),
        event.session_id.as_deref(),
        event.user_agent.as_deref(),
        event.resource.as_deref(),
        event.operation.as_deref(),
        event.reason.as_deref(),
    ];
    texts.into_iter().flatten().any(looks_like_credential)
        || event.metadata.iter().any(|(k, v)| {
            (key_names_secret(k) && v.as_str() != Some(REDACTED)) || json_has_credential(v)
        })
}

fn text_fields(e: &mut AuditEvent) -> impl Iterator<Item = &mut String> {
    [
        e.actor.as_mut().map(|p| &mut p.id),
        e.target.as_mut().map(|p| &mut p.id),
        e.session_id.as_mut(),
        e.user_agent.as_mut(),
        e.resource.as_mut(),
        e.operation.as_mut(),
        e.reason.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn json_has_credential(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => looks_like_credential(s),
        serde_json::Value::Array(items) => items.iter().any(json_has_credential),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| key_names_secret(k) || json_has_credential(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::outcome::Outcome;

    #[test]
    fn clean_records_are_borrowed_and_dirty_ones_redacted() {
        let clean = AuditEvent::new("auth.login.stop", Outcome::Success);
        assert!(matches!(scrubbed(&clean), Cow::Borrowed(_)));

        let mut dirty = clean.clone();
        dirty.metadata.insert("password".into(), "hunter2".into());
        dirty
            .metadata
            .insert("nested".into(), serde_json::json!({"refresh_token": "r1"}));
        dirty.reason = Some("Bearer abc.def".into());
        let out = scrubbed(&dirty);
        let json = serde_json::to_string(&*out).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(!json.contains("r1"), "{json}");
        assert!(!json.contains("Bearer"), "{json}");
        assert_eq!(out.reason.as_deref(), Some(REDACTED));
    }
}
