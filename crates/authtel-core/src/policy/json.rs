//! The policy applied to JSON metadata (an audit record's `metadata` map), at every depth.

use super::{KeyClass, LIMITS, REDACTED, classify_key, find_credential};

/// Screens `value`, stored under `key`, in place, and returns how many values it redacted.
///
/// A value under a secret key becomes [`REDACTED`] (booleans stay as they are); a string
/// is screened like any text; objects and arrays are screened entry by entry, their
/// entries judged by their own keys (array items by the key that holds the array). An
/// object entry whose key is itself a value (a credential, or swapped with a secret's
/// name: `{"hunter2": "password"}`) is removed. Nothing deeper than
/// [`LIMITS`]`.metadata_depth` is descended into (the record is refused anyway).
/// Idempotent: screening a screened value changes nothing and counts nothing.
///
/// ```
/// use authtel_core::policy::screen_json;
/// let mut v = serde_json::json!({"last4": "4242", "pw": "hunter2", "otp_enabled": true});
/// assert_eq!(screen_json("card", &mut v, 1), 1);
/// assert_eq!(v, serde_json::json!({"last4": "4242", "pw": "[REDACTED]", "otp_enabled": true}));
/// ```
pub fn screen_json(key: &str, value: &mut serde_json::Value, depth: usize) -> usize {
    use serde_json::Value;
    if depth > LIMITS.metadata_depth + 1 {
        return 0;
    }
    let secret_key = classify_key(key) == KeyClass::Secret;
    match value {
        Value::Bool(_) | Value::Null => 0,
        Value::Array(items) => items
            .iter_mut()
            .map(|item| screen_json(key, item, depth + 1))
            .sum(),
        // An object under a secret key (`"auth": {"type": "basic"}`): its own keys decide,
        // so descriptive entries survive and secret ones do not.
        Value::Object(map) => screen_object(map, depth + 1),
        Value::String(s) if s == REDACTED => 0,
        Value::String(_) | Value::Number(_) if secret_key => {
            *value = REDACTED.into();
            1
        }
        Value::String(s) => match super::screen(s) {
            Some(kept) => {
                let keep = kept.len();
                s.truncate(keep);
                0
            }
            None => {
                REDACTED.clone_into(s);
                1
            }
        },
        Value::Number(_) => 0,
    }
}

/// Screens every entry of an object; entries whose key is a value are removed.
pub(crate) fn screen_object(
    map: &mut serde_json::Map<String, serde_json::Value>,
    depth: usize,
) -> usize {
    let before = map.len();
    map.retain(|k, v| !key_is_a_value(k, v));
    let removed = before - map.len();
    removed
        + map
            .iter_mut()
            .map(|(k, v)| screen_json(k, v, depth))
            .sum::<usize>()
}

/// Whether an entry's key is a value passed in the key's place (sinks remove such
/// entries): the key itself looks like
/// a credential, or key and value were swapped: the value names a secret and the key has a
/// digit or a capital letter.
pub fn key_is_a_value(key: &str, value: &serde_json::Value) -> bool {
    find_credential(key).is_some() || value.as_str().is_some_and(|v| super::swapped(key, v))
}

/// Whether [`screen_json`] would leave `value` (under `key`) unchanged: the read-only twin
/// sinks use to avoid copying records that are already clean. Kept next to
/// [`screen_json`] so the two change together; a test checks they agree.
pub fn json_is_screened(key: &str, value: &serde_json::Value, depth: usize) -> bool {
    use serde_json::Value;
    if depth > LIMITS.metadata_depth + 1 {
        return true;
    }
    let secret_key = classify_key(key) == KeyClass::Secret;
    match value {
        Value::Bool(_) | Value::Null => true,
        Value::Array(items) => items
            .iter()
            .all(|item| json_is_screened(key, item, depth + 1)),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| !key_is_a_value(k, v) && json_is_screened(k, v, depth + 1)),
        Value::String(s) if s == REDACTED => true,
        Value::String(_) | Value::Number(_) if secret_key => false,
        Value::String(s) => super::text_is_screened(s),
        Value::Number(_) => true,
    }
}
