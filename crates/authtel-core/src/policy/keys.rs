//! What a key says about the value stored under it.
//!
//! A key is split into segments at `_`, `.`, `-`, spaces and lower-to-upper case changes
//! (`newPassword` → `new`, `password`). It names a secret when a segment is a secret's name
//! (`pw`, `pin`, `sid`, `jwt`, `key`, …) or contains a long one (`newpassword`,
//! `refreshtoken`), unless its last segments say the value is *about* the secret rather
//! than the secret itself (`token_type`, `hash_algorithm`, `otp_enabled`,
//! `password_age_days`, `key_id`, `error_code`).

/// What a key says about its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// An ordinary field: its value is screened like any text.
    Plain,
    /// The value is a secret (or personal data such as an email address): it is redacted
    /// whatever it looks like, unless it is a boolean.
    Secret,
}

/// Segments that name a secret by themselves.
const SECRET_SEGMENTS: [&str; 47] = [
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "passcode",
    "pass",
    "pwd",
    "pw",
    "pin",
    "secret",
    "secrets",
    "token",
    "tokens",
    "otp",
    "totp",
    "hotp",
    "mfa",
    "code",
    "codes",
    "hash",
    "cookie",
    "cookies",
    "sid",
    "sessid",
    "jsessionid",
    "phpsessid",
    "auth",
    "authorization",
    "bearer",
    "credential",
    "credentials",
    "creds",
    "jwt",
    "key",
    "keys",
    "apikey",
    "signature",
    "salt",
    "seed",
    "csrf",
    "xsrf",
    "assertion",
    "mnemonic",
    "cvv",
    "cvc",
    "email",
    "mail",
];

/// Words long enough to be recognised inside an unsegmented key (`newpassword`).
const SECRET_WORDS: [&str; 11] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "cookie",
    "authorization",
    "bearer",
];

/// Last segments that make a key describe a secret instead of holding one.
const SAFE_LAST: [&str; 64] = [
    "type",
    // `mfa_factor: "totp"` names which factor was used, never the code.
    "factor",
    "factors",
    "types",
    "algorithm",
    "algorithms",
    "alg",
    "enabled",
    "disabled",
    "required",
    "configured",
    "present",
    "set",
    "count",
    "counts",
    "length",
    "len",
    "size",
    "id",
    "ids",
    "kid",
    "expiry",
    "expires",
    "expired",
    "ttl",
    "lifetime",
    "age",
    "days",
    "seconds",
    "secs",
    "ms",
    "minutes",
    "hours",
    "at",
    "time",
    "ts",
    "timestamp",
    "policy",
    "strength",
    "score",
    "version",
    "kind",
    "format",
    "status",
    "method",
    "methods",
    "scheme",
    "source",
    "name",
    "provider",
    "issuer",
    "scope",
    "scopes",
    "audience",
    "attempts",
    "remaining",
    "rotated",
    "revoked",
    "changed",
    "reset",
    "valid",
    "verified",
    "confirmed",
    "domain",
];

/// Segments before `code` that make it a code of something else (`error_code`).
const NOT_A_SECRET_CODE: [&str; 22] = [
    "error", "status", "country", "currency", "language", "lang", "locale", "http", "response",
    "reason", "result", "exit", "return", "zip", "postal", "area", "region", "iso", "dial",
    "event", "deny", "failure",
];

/// Segments before `key` that make it a key of something else (`rate_limit_key`, the
/// record's own field, holds `ip:203.0.113.7`; `idempotency_key`, `partition_key`).
const NOT_A_SECRET_KEY: [&str; 7] = [
    "limit",
    "partition",
    "idempotency",
    "cache",
    "sort",
    "routing",
    "dedup",
];

/// Classifies a key.
///
/// ```
/// use authtel_core::policy::{classify_key, KeyClass};
/// for secret in ["pw", "pin", "mfa", "key", "auth", "sid", "jwt", "newPassword", "connect.sid", "X-Api-Key"] {
///     assert_eq!(classify_key(secret), KeyClass::Secret, "{secret}");
/// }
/// for plain in ["error_code", "country_code", "token_type", "hash_algorithm", "password_age_days",
///               "footprint", "otp_enabled", "key_id", "tenant"] {
///     assert_eq!(classify_key(plain), KeyClass::Plain, "{plain}");
/// }
/// ```
pub fn classify_key(key: &str) -> KeyClass {
    // Keys repeat (the same few extra-field and JSON keys on every record): remember the
    // last few answers per thread, by the key's bytes.
    key_cache::get_or_classify(key, classify_uncached)
}

/// A small per-thread memo of [`classify_key`]: direct-mapped, keyed by the whole key
/// (compared byte for byte), so an answer is reused only for exactly the same key.
mod key_cache {
    use std::cell::RefCell;

    use super::KeyClass;

    /// Longest key remembered; longer ones are classified every time.
    const MAX_KEY: usize = 32;
    const SLOTS: usize = 8;

    #[derive(Clone, Copy)]
    struct Slot {
        len: u8,
        key: [u8; MAX_KEY],
        class: KeyClass,
    }

    const EMPTY: Slot = Slot {
        // No key of this length is stored, so an empty slot never matches.
        len: u8::MAX,
        key: [0; MAX_KEY],
        class: KeyClass::Plain,
    };

    thread_local! {
        static SLOTS_OF_THREAD: RefCell<[Slot; SLOTS]> = const { RefCell::new([EMPTY; SLOTS]) };
    }

    #[inline]
    pub(super) fn get_or_classify(key: &str, classify: fn(&str) -> KeyClass) -> KeyClass {
        let bytes = key.as_bytes();
        let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
            return classify(key);
        };
        if bytes.len() > MAX_KEY {
            return classify(key);
        }
        let index = (usize::from(first) ^ usize::from(last).rotate_left(3) ^ bytes.len()) % SLOTS;
        let cached = SLOTS_OF_THREAD.try_with(|slots| {
            let slot = slots.borrow()[index];
            (usize::from(slot.len) == bytes.len() && &slot.key[..bytes.len()] == bytes)
                .then_some(slot.class)
        });
        if let Ok(Some(class)) = cached {
            return class;
        }
        let class = classify(key);
        let _ = SLOTS_OF_THREAD.try_with(|slots| {
            let mut slot = EMPTY;
            slot.len = bytes.len() as u8;
            slot.key[..bytes.len()].copy_from_slice(bytes);
            slot.class = class;
            slots.borrow_mut()[index] = slot;
        });
        class
    }
}

/// [`classify_key`] without the memo.
fn classify_uncached(key: &str) -> KeyClass {
    let mut buf = [""; 16];
    let mut lowered = [0u8; 128];
    let Some(segments) = split_segments(key, &mut lowered, &mut buf) else {
        // Keys longer than the buffer are not keys anyone writes by hand: treat as secret.
        return KeyClass::Secret;
    };
    let Some(&last) = segments.last() else {
        return KeyClass::Plain;
    };
    if SAFE_LAST.contains(&last) {
        return KeyClass::Plain;
    }
    if last == "code"
        && segments.len() >= 2
        && NOT_A_SECRET_CODE.contains(&segments[segments.len() - 2])
    {
        return KeyClass::Plain;
    }
    if last == "key"
        && segments.len() >= 2
        && NOT_A_SECRET_KEY.contains(&segments[segments.len() - 2])
    {
        return KeyClass::Plain;
    }
    let secret = segments.iter().any(|segment| {
        SECRET_SEGMENTS.contains(segment) || SECRET_WORDS.iter().any(|w| contains_bytes(segment, w))
    });
    if secret {
        KeyClass::Secret
    } else {
        KeyClass::Plain
    }
}

/// `haystack.contains(needle)` for short keys: a plain window scan, first byte first
/// (`str::contains` sets up a substring searcher per call, which costs more than the scan).
fn contains_bytes(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return true;
    };
    haystack
        .windows(needle.len())
        .any(|w| w[0] == first && w == needle)
}

/// Whether `key` names a secret ([`classify_key`] is [`KeyClass::Secret`]).
///
/// ```
/// use authtel_core::policy::key_names_secret;
/// assert!(key_names_secret("refresh_token"));
/// assert!(!key_names_secret("token_type"));
/// ```
pub fn key_names_secret(key: &str) -> bool {
    classify_key(key) == KeyClass::Secret
}

/// Splits `key` into lowercase segments stored in `lowered`, or `None` when it has more than
/// 128 bytes or 16 segments.
fn split_segments<'b>(
    key: &str,
    lowered: &'b mut [u8; 128],
    out: &'b mut [&'b str; 16],
) -> Option<&'b [&'b str]> {
    let bytes = key.as_bytes();
    if bytes.len() > lowered.len() {
        return None;
    }
    // Boundaries first, then the lowered copy, so the segments can borrow it.
    let mut bounds = [(0usize, 0usize); 16];
    let mut n = 0;
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let word_char = b.is_ascii_alphanumeric() || !b.is_ascii();
        let camel_break = i > 0 && b.is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase();
        if (!word_char || camel_break)
            && let Some(s) = start.take()
        {
            *bounds.get_mut(n)? = (s, i);
            n += 1;
        }
        if word_char && start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        *bounds.get_mut(n)? = (s, bytes.len());
        n += 1;
    }
    for (dst, src) in lowered.iter_mut().zip(bytes) {
        *dst = src.to_ascii_lowercase();
    }
    let lowered: &'b [u8] = lowered;
    for (slot, &(s, e)) in out.iter_mut().zip(&bounds[..n]) {
        // Only ASCII bytes were lowered, so boundaries that were valid in `key` still are.
        *slot = std::str::from_utf8(&lowered[s..e]).unwrap_or("");
    }
    Some(&out[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the cross-sink over-redaction matrix: the record's own `rate_limit_key`
    /// was redacted by every sink that screens records, and `mfa_factor: "totp"` everywhere.
    #[test]
    fn the_memo_answers_as_the_classifier_does() {
        // Twice each, in an order that makes keys share and evict slots.
        let keys = [
            "tenant",
            "password",
            "tenanT",
            "x",
            "newPassword",
            "token_type",
            "api_key",
            "a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q",
            "error_code",
            "code",
            "key_id",
            "kkey",
        ];
        for _ in 0..2 {
            for key in keys {
                assert_eq!(classify_key(key), classify_uncached(key), "{key}");
            }
        }
        assert_eq!(classify_key("password"), KeyClass::Secret);
        assert_eq!(classify_key("tenant"), KeyClass::Plain);
    }

    #[test]
    fn contains_bytes_is_str_contains() {
        for (hay, needle) in [
            ("newpassword", "password"),
            ("password", "password"),
            ("passwor", "password"),
            ("xtokenx", "token"),
            ("tenant", "token"),
            ("", "key"),
            ("key", ""),
            ("kkey", "key"),
        ] {
            assert_eq!(
                contains_bytes(hay, needle),
                hay.contains(needle),
                "{hay} {needle}"
            );
        }
    }

    #[test]
    fn keys_of_other_things_and_factor_names_are_plain() {
        for key in [
            "rate_limit_key",
            "idempotency_key",
            "partition_key",
            "mfa_factor",
            "mfa_factors",
        ] {
            assert_eq!(classify_key(key), KeyClass::Plain, "{key}");
        }
        for key in [
            "key",
            "api_key",
            "signing_key",
            "limit_secret",
            "mfa",
            "factor_code",
        ] {
            assert_eq!(classify_key(key), KeyClass::Secret, "{key}");
        }
    }

    #[test]
    fn leaked_key_names_are_secret() {
        for key in [
            "password",
            "pw",
            "pin",
            "mfa",
            "key",
            "auth",
            "sid",
            "jwt",
            "api_key",
            "apiKey",
            "x-api-key",
            "refresh_token",
            "refreshtoken",
            "newpassword",
            "client_secret",
            "totp_code",
            "backup_codes",
            "recovery_code",
            "password_hash",
            "Set-Cookie",
            "PHPSESSID",
            "connect.sid",
            "private_key",
            "email",
            "new_email",
            "csrf_token",
            "saml_assertion",
            "authorization",
        ] {
            assert_eq!(classify_key(key), KeyClass::Secret, "{key}");
        }
    }

    #[test]
    fn legitimate_key_names_are_plain() {
        for key in [
            "error_code",
            "country_code",
            "status_code",
            "token_type",
            "hash_algorithm",
            "password_age_days",
            "footprint",
            "otp_enabled",
            "key_id",
            "tenant",
            "pinned",
            "keyboard_layout",
            "auth_method",
            "mfa_enabled",
            "password_changed_at",
            "session_id",
            "token_expires_at",
            "email_verified",
            "email_domain",
            "",
            "passport",
            "compass",
            "keystone",
            "monkey",
        ] {
            assert_eq!(classify_key(key), KeyClass::Plain, "{key}");
        }
    }

    #[test]
    fn oversized_keys_are_secret_and_never_panic() {
        assert_eq!(classify_key(&"a_".repeat(40)), KeyClass::Secret);
        assert_eq!(classify_key(&"a".repeat(200)), KeyClass::Secret);
        assert_eq!(classify_key("é_ü-😀.x"), KeyClass::Plain);
    }
}
