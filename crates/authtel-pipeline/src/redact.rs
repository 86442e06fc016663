//! Last-line screening of records handed to `publish` directly.
//!
//! Records built by `AuditEvent::from_record` were screened by the metadata policy already;
//! records an application builds itself were not. Before a record reaches a queue, a spill
//! file or a dead-letter file, secret-named metadata keys and credential-looking strings are
//! replaced by the policy's redaction marker.

use authtel_core::audit::AuditEvent;
use authtel_core::metadata::{REDACTED, key_names_secret, looks_like_credential};

/// Screens `event` in place; returns how many values were redacted.
pub(crate) fn screen(event: &mut AuditEvent) -> usize {
    let mut n = 0;
    for field in [
        &mut event.reason,
        &mut event.user_agent,
        &mut event.resource,
        &mut event.operation,
        &mut event.session_id,
    ] {
        if let Some(v) = field
            && looks_like_credential(v)
        {
            *v = REDACTED.to_owned();
            n += 1;
        }
    }
    for (key, value) in event.metadata.iter_mut() {
        if key_names_secret(key) {
            if value.as_str() != Some(REDACTED) {
                *value = REDACTED.into();
                n += 1;
            }
        } else {
            n += screen_value(value);
        }
    }
    n
}

fn screen_value(value: &mut serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(s) if looks_like_credential(s) => {
            *s = REDACTED.to_owned();
            1
        }
        serde_json::Value::Array(items) => items.iter_mut().map(screen_value).sum(),
        serde_json::Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| {
                if key_names_secret(k) {
                    *v = REDACTED.into();
                    1
                } else {
                    screen_value(v)
                }
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::outcome::Outcome;

    #[test]
    fn secrets_are_replaced() {
        let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure);
        e.metadata.insert("password".into(), "hunter2".into());
        e.metadata.insert(
            "nested".into(),
            serde_json::json!({"refresh_token": "r-123", "list": ["Bearer abc.def.ghi"]}),
        );
        e.reason = Some("Bearer abcdefghijklmnop".into());
        let n = screen(&mut e);
        let json = serde_json::to_string(&e).unwrap();
        assert!(n >= 3, "{n}");
        for secret in ["hunter2", "r-123", "abc.def.ghi", "abcdefghijklmnop"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }
}
