//! The screen's rules, one matcher per [`Finding`](super::Finding), and the character tests
//! they share. [`find_shaped`](super::find_shaped) decides which of them run.

use crate::policy::keys::{self, KeyClass};

pub(super) fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Characters of an HTTP auth-scheme token (RFC 7235 token68).
pub(super) fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

pub(super) fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Whether a word starts at `i` (the byte before it is not a letter or digit).
pub(super) fn at_word_start(bytes: &[u8], i: usize) -> bool {
    i == 0 || !bytes[i - 1].is_ascii_alphanumeric()
}

pub(super) fn starts_with_ignore_case(bytes: &[u8], at: usize, word: &[u8]) -> bool {
    bytes.len() >= at + word.len() && bytes[at..at + word.len()].eq_ignore_ascii_case(word)
}

/// Length of the run of bytes satisfying `pred` from `at`.
pub(super) fn run(bytes: &[u8], at: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|&&b| pred(b))
        .count()
}

pub(super) fn has_jwt(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'e'
            && matches!(bytes[i + 1], b'y' | b'w')
            && (i == 0 || !is_b64url(bytes[i - 1]))
            && jwt_at(bytes, i)
        {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a JWT starts at `at`: a header of 10+ base64url characters, a payload of 2+,
/// and a signature part (possibly empty, for `alg: none`).
pub(super) fn jwt_at(bytes: &[u8], at: usize) -> bool {
    let header = run(bytes, at, is_b64url);
    if header < 10 || bytes.get(at + header) != Some(&b'.') {
        return false;
    }
    let payload_at = at + header + 1;
    let payload = run(bytes, payload_at, is_b64url);
    payload >= 2 && bytes.get(payload_at + payload) == Some(&b'.')
}

pub(super) fn has_authorization_scheme(bytes: &[u8]) -> bool {
    for i in 0..bytes.len() {
        let (scheme_len, min_token, basic) = match bytes[i] | 0x20 {
            b'b' if starts_with_ignore_case(bytes, i, b"bearer") => (6, 3, false),
            b'b' if starts_with_ignore_case(bytes, i, b"basic") => (5, 8, true),
            _ => continue,
        };
        if !at_word_start(bytes, i) {
            continue;
        }
        let mut j = i + scheme_len;
        let spaces = skip_separating_space(bytes, &mut j);
        if spaces == 0 {
            continue;
        }
        let len = run(bytes, j, is_token68);
        if len < min_token {
            continue;
        }
        let token = &bytes[j..j + len];
        let credential = if basic {
            // `Basic` is also an English word ("Basic plan"): a credential is base64 with
            // something besides lowercase letters in it.
            token.iter().any(|b| !b.is_ascii_lowercase())
        } else {
            !is_prose_after_bearer(token)
        };
        if credential {
            return true;
        }
    }
    false
}

/// Skips whitespace, including percent-encoded spaces (`%20`) and `+` (form encoding), and
/// returns how many separators it skipped.
pub(super) fn skip_separating_space(bytes: &[u8], j: &mut usize) -> usize {
    let mut n = 0;
    loop {
        if *j < bytes.len() && (is_space(bytes[*j]) || bytes[*j] == b'+') {
            *j += 1;
        } else if starts_with_ignore_case(bytes, *j, b"%20") {
            *j += 3;
        } else {
            return n;
        }
        n += 1;
    }
}

/// Words that follow "bearer" in prose ("the bearer token was expired").
pub(super) fn is_prose_after_bearer(token: &[u8]) -> bool {
    const PROSE: [&[u8]; 12] = [
        b"token",
        b"tokens",
        b"of",
        b"the",
        b"is",
        b"was",
        b"auth",
        b"authentication",
        b"scheme",
        b"header",
        b"must",
        b"format",
    ];
    PROSE.iter().any(|w| w.eq_ignore_ascii_case(token))
}

/// A separator between a key and its value at `i`: `=`, `:`, or a percent-encoded `=`
/// (`%3D`). Returns its length.
pub(super) fn pair_separator(bytes: &[u8], i: usize, colons: bool) -> Option<usize> {
    match bytes[i] {
        b'=' => Some(1),
        b':' if colons => Some(1),
        b'%' if starts_with_ignore_case(bytes, i, b"%3d")
            || (colons && starts_with_ignore_case(bytes, i, b"%3a")) =>
        {
            Some(3)
        }
        _ => None,
    }
}

pub(super) fn has_secret_pair(bytes: &[u8], colons: bool) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let Some(sep_len) = pair_separator(bytes, i, colons) else {
            i += 1;
            continue;
        };
        // `://` is a URL scheme, not a pair.
        if bytes[i] == b':' && bytes.get(i + 1) == Some(&b'/') {
            i += 1;
            continue;
        }
        // The key ends before the separator, past optional quotes and spaces.
        let mut end = i;
        while end > 0 && matches!(bytes[end - 1], b'"' | b'\'' | b' ' | b'\t') {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && is_key_char(bytes[start - 1]) {
            start -= 1;
        }
        // A percent-encoded delimiter before the key (`%26code`, `%3Ftoken`) is not part
        // of it.
        let mut key = &bytes[start..end];
        if start >= 1 && bytes[start - 1] == b'%' && key.len() > 2 {
            key = &key[2..];
        }
        if !key.is_empty()
            && let Ok(key) = std::str::from_utf8(key)
            && keys::classify_key(key) == KeyClass::Secret
            && has_value_after(bytes, i + sep_len)
        {
            return true;
        }
        i += sep_len;
    }
    false
}

/// Whether a non-empty value follows a separator (past spaces and an opening quote).
pub(super) fn has_value_after(bytes: &[u8], mut j: usize) -> bool {
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'"' | b'\'') {
        j += 1;
    }
    match bytes.get(j) {
        None => false,
        // `password=&next=…`, `password=,` and `password: }` carry nothing.
        Some(b'&' | b',' | b';' | b'}' | b')' | b']') => false,
        Some(_) => !starts_with_ignore_case(bytes, j, crate::policy::REDACTED.as_bytes()),
    }
}

/// Words that name a secret in prose, followed by the secret itself.
pub(super) const SECRET_WORDS: [&[u8]; 16] = [
    b"password",
    b"passwd",
    b"passphrase",
    b"passcode",
    b"pwd",
    b"pw",
    b"pin",
    b"secret",
    b"token",
    b"otp",
    b"totp",
    b"apikey",
    b"cookie",
    b"credential",
    b"credentials",
    b"key",
];

/// Words that may stand between a secret's name and the secret.
pub(super) const FILLERS: [&[u8]; 6] = [b"is", b"was", b"were", b"of", b"to", b"="];

pub(super) fn has_secret_after_word(bytes: &[u8]) -> bool {
    let mut words = Words::new(bytes);
    while let Some(word) = words.next() {
        if !SECRET_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            continue;
        }
        let mut ahead = words.clone();
        for _ in 0..3 {
            match ahead.next() {
                Some(next) if FILLERS.iter().any(|f| f.eq_ignore_ascii_case(next)) => {}
                Some(next) => {
                    if looks_secret(next) {
                        return true;
                    }
                    break;
                }
                None => break,
            }
        }
    }
    false
}

/// Whether a word following a secret's name is the secret: four or more characters with a
/// digit, a symbol or a capital letter after the first (so "reset", "expired", "Alice" are
/// not).
pub(super) fn looks_secret(word: &[u8]) -> bool {
    word.len() >= 4
        && word.iter().enumerate().any(|(i, &b)| {
            b.is_ascii_digit() || !b.is_ascii_alphanumeric() || (i > 0 && b.is_ascii_uppercase())
        })
}

/// Whitespace-separated words with surrounding quotes and punctuation trimmed.
#[derive(Clone)]
pub(super) struct Words<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Words<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Words { bytes, at: 0 }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let b = self.bytes;
        while self.at < b.len() && is_space(b[self.at]) {
            self.at += 1;
        }
        if self.at >= b.len() {
            return None;
        }
        let start = self.at;
        while self.at < b.len() && !is_space(b[self.at]) {
            self.at += 1;
        }
        let trim = |c: &u8| {
            matches!(
                c,
                b'"' | b'\'' | b',' | b';' | b':' | b'(' | b')' | b'`' | b'.' | b'!' | b'?'
            )
        };
        let mut word = &b[start..self.at];
        while let [first, rest @ ..] = word
            && trim(first)
        {
            word = rest;
        }
        while let [rest @ .., last] = word
            && trim(last)
        {
            word = rest;
        }
        Some(word)
    }
}

pub(super) fn has_one_time_code(bytes: &[u8]) -> bool {
    const NAMES: [&[u8]; 9] = [
        b"otp",
        b"totp",
        b"hotp",
        b"code",
        b"pin",
        b"mfa",
        b"2fa",
        b"passcode",
        b"verification",
    ];
    let mut i = 0;
    let mut has_code = false;
    while i < bytes.len() {
        let len = run(bytes, i, |b| b.is_ascii_digit());
        if len > 0 {
            if (6..=8).contains(&len)
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && !bytes
                    .get(i + len)
                    .is_some_and(|b| b.is_ascii_alphanumeric())
            {
                has_code = true;
                break;
            }
            i += len;
        } else {
            i += 1;
        }
    }
    has_code && segments(bytes).any(|s| NAMES.iter().any(|n| n.eq_ignore_ascii_case(s)))
}

/// Runs of letters and digits (the segments of keys and words).
pub(super) fn segments(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
}

pub(super) fn has_url_credentials(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(pos) = find_bytes(&bytes[from..], b"://") {
        let authority_at = from + pos + 3;
        let len = run(bytes, authority_at, |b| {
            !matches!(
                b,
                b'/' | b'?' | b'#' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\''
            )
        });
        let authority = &bytes[authority_at..authority_at + len];
        if let Some(at) = authority.iter().rposition(|&b| b == b'@')
            && let Some(colon) = authority[..at].iter().position(|&b| b == b':')
            && colon + 1 < at
        {
            return true;
        }
        from = authority_at;
    }
    false
}

pub(super) fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn has_password_hash(bytes: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 9] = [
        b"$argon2",
        b"$2a$",
        b"$2b$",
        b"$2y$",
        b"$scrypt$",
        b"$pbkdf2",
        b"$6$",
        b"$5$",
        b"$1$",
    ];
    let mut from = 0;
    while let Some(pos) = bytes[from..].iter().position(|&b| b == b'$') {
        let i = from + pos;
        if PREFIXES
            .iter()
            .any(|p| starts_with_ignore_case(bytes, i, p))
            && run(bytes, i, |b| !is_space(b)) >= 12
        {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Vendor token prefixes (case-sensitive) and how many token characters must follow.
pub(super) const VENDOR_PREFIXES: [(&[u8], usize); 16] = [
    (b"ghp_", 20),
    (b"gho_", 20),
    (b"ghu_", 20),
    (b"ghs_", 20),
    (b"ghr_", 20),
    (b"github_pat_", 20),
    (b"glpat-", 16),
    (b"xoxb-", 10),
    (b"xoxp-", 10),
    (b"xoxa-", 10),
    (b"sk_live_", 12),
    (b"sk_test_", 12),
    (b"rk_live_", 12),
    (b"AKIA", 16),
    (b"AIza", 30),
    (b"npm_", 30),
];

/// Which bytes start a vendor prefix, derived from the table so the two cannot drift.
pub(super) const VENDOR_FIRST_BYTES: [bool; 256] = {
    let mut first = [false; 256];
    let mut i = 0;
    while i < VENDOR_PREFIXES.len() {
        first[VENDOR_PREFIXES[i].0[0] as usize] = true;
        i += 1;
    }
    first
};

pub(super) fn has_vendor_token(bytes: &[u8]) -> bool {
    for i in 0..bytes.len() {
        // Most positions start no prefix and end here.
        if !VENDOR_FIRST_BYTES[bytes[i] as usize] || !at_word_start(bytes, i) {
            continue;
        }
        for (prefix, rest) in VENDOR_PREFIXES {
            if prefix[0] == bytes[i]
                && bytes[i..].starts_with(prefix)
                && run(bytes, i + prefix.len(), is_b64url) >= rest
            {
                return true;
            }
        }
    }
    false
}

/// Characters of a random token (base64, base64url, base62, hex). `/` and `.` are left
/// out so that paths, hostnames and version strings split into their parts.
pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'=')
}

pub(super) fn has_high_entropy_token(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| !is_token_char(b))
        .any(|token| token.len() >= 20 && looks_random(token))
}

/// Whether a token of 20+ characters looks random rather than like words, an id or a
/// version string.
pub(super) fn looks_random(token: &[u8]) -> bool {
    let token = token
        .strip_suffix(b"==")
        .or_else(|| token.strip_suffix(b"="))
        .unwrap_or(token);
    if is_uuid(token) {
        return false;
    }
    if let Some(hex) = hex_after_word(token) {
        // `psn_…` (keyed pseudonyms) and other `word_<hex>` ids: the hex part decides, as
        // it would alone.
        return looks_random(hex);
    }
    let (mut upper, mut lower, mut digit) = (0usize, 0usize, 0usize);
    let mut transitions = 0;
    let mut last_class = 0u8;
    for &b in token {
        let class = if b.is_ascii_uppercase() {
            upper += 1;
            1
        } else if b.is_ascii_lowercase() {
            lower += 1;
            2
        } else if b.is_ascii_digit() {
            digit += 1;
            3
        } else {
            4
        };
        if last_class != 0 && class != last_class {
            transitions += 1;
        }
        last_class = class;
    }
    let len = token.len();
    let hex = token.iter().all(u8::is_ascii_hexdigit);
    if hex {
        // Span ids (16) and trace ids (32) are hex; hashes and keys are longer.
        return len >= 40 && digit > 0 && (upper + lower) > 0;
    }
    let mixed_case = upper > 0 && lower > 0;
    let enough_digits = digit * 5 >= len && (upper + lower) * 4 >= len;
    // Random strings change between letters, digits and case often; words and
    // identifiers do so rarely.
    let switches_often = transitions * 3 >= len;
    switches_often && digit > 0 && (mixed_case || enough_digits)
}

/// The hex digits after a short lower-case word and `_` (`psn_3f9a…`), if the token is
/// that shape.
pub(super) fn hex_after_word(token: &[u8]) -> Option<&[u8]> {
    let split = token.iter().position(|&b| b == b'_')?;
    let (word, hex) = (&token[..split], &token[split + 1..]);
    let word_ok = (1..=8).contains(&word.len()) && word.iter().all(u8::is_ascii_lowercase);
    let hex_ok = !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit);
    (word_ok && hex_ok).then_some(hex)
}

/// `8-4-4-4-12` hex digits, or 32 hex digits: request ids and the like.
pub(super) fn is_uuid(token: &[u8]) -> bool {
    if token.len() == 36 {
        return token.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    }
    false
}

pub(super) fn has_email(bytes: &[u8]) -> bool {
    let is_local =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let is_domain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    let mut from = 0;
    while let Some(pos) = bytes[from..].iter().position(|&b| b == b'@') {
        let at = from + pos;
        let local = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&b| is_local(b))
            .count();
        let domain_len = run(bytes, at + 1, is_domain);
        let domain = &bytes[at + 1..at + 1 + domain_len];
        let domain = domain.strip_suffix(b".").unwrap_or(domain);
        if local > 0
            && let Some(dot) = domain.iter().rposition(|&b| b == b'.')
            && dot > 0
            && domain.len() - dot > 2
            && domain[dot + 1..].iter().all(u8::is_ascii_alphabetic)
        {
            return true;
        }
        from = at + 1;
    }
    false
}
