//! The free-text screen: finds a credential or an email anywhere in a text value.
//!
//! Every rule is a single pass over the bytes; non-ASCII bytes never start or continue a
//! match (they act as separators), so any UTF-8 input is handled without slicing inside a
//! character. The rules, in the order they run, are the variants of [`Finding`].

use super::keys::{self, KeyClass};

/// What the screen found in a text value. A value with any finding is replaced whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A JSON Web Token: three or more base64url parts joined by dots, the first starting
    /// `ey`/`ew` (base64 of `{` followed by a quote or whitespace), anywhere in the value.
    Jwt,
    /// An HTTP `Bearer` or `Basic` credential, after any whitespace, anywhere in the value.
    AuthorizationScheme,
    /// A `key=value` or `key: value` pair whose key names a secret (`password=…`,
    /// `?code=…`, `connect.sid=…`, `"api_key":"…"`, `Debug` output `password: "…"`),
    /// also with percent-encoded separators (`code%3D…`).
    SecretPair,
    /// A word naming a secret followed by a value that looks like one
    /// (`password hunter2`, `token is 8fK2x…`, `pin 1234`).
    SecretAfterWord,
    /// A one-time code (6 to 8 digits) in a value that mentions one (`otp`, `totp`, `code`,
    /// `pin`, `mfa`, `2fa`, `passcode`, `verification`).
    OneTimeCode,
    /// Credentials in a URL's authority (`https://user:pass@host`, a database DSN).
    UrlCredentials,
    /// A password hash in modular crypt format (`$argon2id$…`, `$2b$…`, `$6$…`).
    PasswordHash,
    /// A token with a well-known vendor prefix (`ghp_`, `github_pat_`, `glpat-`, `xoxb-`,
    /// `sk_live_`, `AKIA…`, `AIza…`, `npm_`).
    VendorToken,
    /// A long random-looking token: 20 or more characters of letters and digits mixed the
    /// way random strings mix them, or 40 or more hex digits (UUIDs are not tokens).
    HighEntropyToken,
    /// An email address.
    Email,
}

/// Longest prefix of a value the screen reads. Values are cut to
/// [`MAX_TEXT_LEN`](super::MAX_TEXT_LEN) bytes on the way out; reading twice that means a
/// secret that starts inside the kept part is seen whole.
pub const SCREENED_PREFIX: usize = 2 * super::MAX_TEXT_LEN;

/// The first finding in `text`, if any.
///
/// ```
/// use authtel_core::policy::{find_credential, Finding};
/// assert_eq!(find_credential("password=hunter2"), Some(Finding::SecretPair));
/// assert_eq!(find_credential("Authorization:\tBearer\t8fK2xQ"), Some(Finding::AuthorizationScheme));
/// assert_eq!(find_credential("Authorization: x"), Some(Finding::SecretPair));
/// assert_eq!(find_credential("/reset?token=abc"), Some(Finding::SecretPair));
/// assert_eq!(find_credential("mfa check failed with 492817"), Some(Finding::OneTimeCode));
/// assert_eq!(find_credential("password reset link expired"), None);
/// assert_eq!(find_credential("Basic plan quota exceeded"), None);
/// ```
pub fn find_credential(text: &str) -> Option<Finding> {
    find(text, Scan::TEXT)
}

/// Which rules a scan applies.
#[derive(Clone, Copy)]
pub(crate) struct Scan {
    /// `key: value` pairs (identifiers such as `did:key:z6Mk…` or `user:u_42` use colons as
    /// namespace separators, so only `key=value` counts in them).
    pub(crate) colon_pairs: bool,
    /// Long random tokens (opaque ids are random by design).
    pub(crate) entropy: bool,
}

impl Scan {
    /// Free text: every rule.
    pub(crate) const TEXT: Scan = Scan {
        colon_pairs: true,
        entropy: true,
    };
    /// Identifiers: no colon pairs, no randomness rule.
    pub(crate) const IDENTIFIER: Scan = Scan {
        colon_pairs: false,
        entropy: false,
    };
}

/// The first finding in `text` under the rules `scan` selects.
///
/// One pass first notes which bytes the value holds ([`Shape`]); a rule runs only when
/// the value has every byte that rule needs to match, so skipping one never changes the
/// answer (`tests::the_shape_filter_never_changes_a_finding` checks that against the rules
/// run one after the other). Most values (ids, names, methods) then skip most rules.
pub(crate) fn find(text: &str, scan: Scan) -> Option<Finding> {
    let bytes = super::truncate(text, SCREENED_PREFIX).as_bytes();
    // Nothing of five bytes or fewer can hold a credential the rules recognise.
    if bytes.len() < 5 {
        return None;
    }
    find_shaped(bytes, &Shape::of(bytes), scan)
}

/// [`find`] on bytes whose [`Shape`] the caller already took (of exactly these bytes, at
/// most [`SCREENED_PREFIX`] of them), so a caller that needs the shape for its own checks
/// reads the value once.
pub(crate) fn find_shaped(bytes: &[u8], shape: &Shape, scan: Scan) -> Option<Finding> {
    debug_assert!(bytes.len() <= SCREENED_PREFIX);
    if bytes.len() < 5 {
        return None;
    }
    let has = |class: u16| shape.classes & class != 0;
    // A JWT has two dots after its header.
    if has(DOT) && has_jwt(bytes) {
        return Some(Finding::Jwt);
    }
    // The scheme is followed by whitespace, `+` or `%20`.
    if has(SPACE | PLUS | PERCENT) && has_authorization_scheme(bytes) {
        return Some(Finding::AuthorizationScheme);
    }
    // A pair needs `=`, a colon (where colons count) or a percent-encoded one of them.
    let separators = if scan.colon_pairs {
        EQUALS | PERCENT | COLON
    } else {
        EQUALS | PERCENT
    };
    if has(separators) && has_secret_pair(bytes, scan.colon_pairs) {
        return Some(Finding::SecretPair);
    }
    // Words are split at whitespace: one word has nothing after it.
    if has(SPACE) && has_secret_after_word(bytes) {
        return Some(Finding::SecretAfterWord);
    }
    if shape.digits >= 6 && has_one_time_code(bytes) {
        return Some(Finding::OneTimeCode);
    }
    // `://` and an `@` in the authority.
    if has(COLON) && has(AT) && has_url_credentials(bytes) {
        return Some(Finding::UrlCredentials);
    }
    if has(DOLLAR) && has_password_hash(bytes) {
        return Some(Finding::PasswordHash);
    }
    // The shortest vendor token is a five-byte prefix and ten more characters.
    if bytes.len() >= 15 && has_vendor_token(bytes) {
        return Some(Finding::VendorToken);
    }
    if scan.entropy && bytes.len() >= 20 && has_high_entropy_token(bytes) {
        return Some(Finding::HighEntropyToken);
    }
    if has(AT) && has_email(bytes) {
        return Some(Finding::Email);
    }
    None
}

/// Byte classes [`Shape`] notes (bit flags).
const DOT: u16 = 1;
const SPACE: u16 = 1 << 1;
const PLUS: u16 = 1 << 2;
const PERCENT: u16 = 1 << 3;
const EQUALS: u16 = 1 << 4;
const COLON: u16 = 1 << 5;
pub(crate) const AT: u16 = 1 << 6;
const DOLLAR: u16 = 1 << 7;
/// An ASCII control character (`u8::is_ascii_control`): no rule keys on it, identifiers
/// refuse it.
pub(crate) const CONTROL: u16 = 1 << 8;

/// Each byte's classes in [`Shape`]: `0` for letters, digits and everything no rule keys on.
const CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_control() {
            table[b] = CONTROL;
        }
        b += 1;
    }
    table[b'.' as usize] = DOT;
    // `is_space`'s bytes.
    table[b' ' as usize] = SPACE;
    table[b'\t' as usize] |= SPACE;
    table[b'\n' as usize] |= SPACE;
    table[b'\r' as usize] |= SPACE;
    table[0x0b] |= SPACE;
    table[0x0c] |= SPACE;
    table[b'+' as usize] = PLUS;
    table[b'%' as usize] = PERCENT;
    table[b'=' as usize] = EQUALS;
    table[b':' as usize] = COLON;
    table[b'@' as usize] = AT;
    table[b'$' as usize] = DOLLAR;
    table
};

/// Which byte classes a value holds, and how many ASCII digits.
pub(crate) struct Shape {
    classes: u16,
    digits: usize,
}

impl Shape {
    /// One pass over `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Shape {
        let mut classes = 0u16;
        let mut digits = 0usize;
        for &b in bytes {
            classes |= CLASS[b as usize];
            digits += usize::from(b.is_ascii_digit());
        }
        Shape { classes, digits }
    }

    /// Whether the value holds a byte of `class`.
    pub(crate) fn has(&self, class: u16) -> bool {
        self.classes & class != 0
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Characters of an HTTP auth-scheme token (RFC 7235 token68).
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Whether a word starts at `i` (the byte before it is not a letter or digit).
fn at_word_start(bytes: &[u8], i: usize) -> bool {
    i == 0 || !bytes[i - 1].is_ascii_alphanumeric()
}

fn starts_with_ignore_case(bytes: &[u8], at: usize, word: &[u8]) -> bool {
    bytes.len() >= at + word.len() && bytes[at..at + word.len()].eq_ignore_ascii_case(word)
}

/// Length of the run of bytes satisfying `pred` from `at`.
fn run(bytes: &[u8], at: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|&&b| pred(b))
        .count()
}

fn has_jwt(bytes: &[u8]) -> bool {
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
fn jwt_at(bytes: &[u8], at: usize) -> bool {
    let header = run(bytes, at, is_b64url);
    if header < 10 || bytes.get(at + header) != Some(&b'.') {
        return false;
    }
    let payload_at = at + header + 1;
    let payload = run(bytes, payload_at, is_b64url);
    payload >= 2 && bytes.get(payload_at + payload) == Some(&b'.')
}

fn has_authorization_scheme(bytes: &[u8]) -> bool {
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
fn skip_separating_space(bytes: &[u8], j: &mut usize) -> usize {
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
fn is_prose_after_bearer(token: &[u8]) -> bool {
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
fn pair_separator(bytes: &[u8], i: usize, colons: bool) -> Option<usize> {
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

fn has_secret_pair(bytes: &[u8], colons: bool) -> bool {
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
fn has_value_after(bytes: &[u8], mut j: usize) -> bool {
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'"' | b'\'') {
        j += 1;
    }
    match bytes.get(j) {
        None => false,
        // `password=&next=…`, `password=,` and `password: }` carry nothing.
        Some(b'&' | b',' | b';' | b'}' | b')' | b']') => false,
        Some(_) => !starts_with_ignore_case(bytes, j, super::REDACTED.as_bytes()),
    }
}

/// Words that name a secret in prose, followed by the secret itself.
const SECRET_WORDS: [&[u8]; 16] = [
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
const FILLERS: [&[u8]; 6] = [b"is", b"was", b"were", b"of", b"to", b"="];

fn has_secret_after_word(bytes: &[u8]) -> bool {
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
fn looks_secret(word: &[u8]) -> bool {
    word.len() >= 4
        && word.iter().enumerate().any(|(i, &b)| {
            b.is_ascii_digit() || !b.is_ascii_alphanumeric() || (i > 0 && b.is_ascii_uppercase())
        })
}

/// Whitespace-separated words with surrounding quotes and punctuation trimmed.
#[derive(Clone)]
struct Words<'a> {
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

fn has_one_time_code(bytes: &[u8]) -> bool {
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
fn segments(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
}

fn has_url_credentials(bytes: &[u8]) -> bool {
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

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn has_password_hash(bytes: &[u8]) -> bool {
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
const VENDOR_PREFIXES: [(&[u8], usize); 16] = [
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
const VENDOR_FIRST_BYTES: [bool; 256] = {
    let mut first = [false; 256];
    let mut i = 0;
    while i < VENDOR_PREFIXES.len() {
        first[VENDOR_PREFIXES[i].0[0] as usize] = true;
        i += 1;
    }
    first
};

fn has_vendor_token(bytes: &[u8]) -> bool {
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
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'=')
}

fn has_high_entropy_token(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| !is_token_char(b))
        .any(|token| token.len() >= 20 && looks_random(token))
}

/// Whether a token of 20+ characters looks random rather than like words, an id or a
/// version string.
fn looks_random(token: &[u8]) -> bool {
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
fn hex_after_word(token: &[u8]) -> Option<&[u8]> {
    let split = token.iter().position(|&b| b == b'_')?;
    let (word, hex) = (&token[..split], &token[split + 1..]);
    let word_ok = (1..=8).contains(&word.len()) && word.iter().all(u8::is_ascii_lowercase);
    let hex_ok = !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit);
    (word_ok && hex_ok).then_some(hex)
}

/// `8-4-4-4-12` hex digits, or 32 hex digits: request ids and the like.
fn is_uuid(token: &[u8]) -> bool {
    if token.len() == 36 {
        return token.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    }
    false
}

fn has_email(bytes: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `Debug` output (`password: "…"`) in an identifier, where `key: value` pairs are not
    /// read (colons namespace ids): the word naming the secret ends in a colon.
    #[test]
    fn a_secret_word_with_a_colon_names_what_follows() {
        for id in [
            r#"LoginForm { username: "u_42", password: "Tr0ub4dor0042x" }"#,
            r#"LoginForm { username: "u_42", password: "40314722" }"#,
            "token: 8fK2xQ9aB7mZ4pL1vN6c",
        ] {
            assert_eq!(
                find(id, Scan::IDENTIFIER),
                Some(Finding::SecretAfterWord),
                "{id}"
            );
        }
        for id in [
            "did:key:z6MkhaXgBZDvotDkL5257",
            "user:u_42",
            "password: reset",
        ] {
            assert_eq!(find(id, Scan::IDENTIFIER), None, "{id}");
        }
    }

    #[test]
    fn each_rule_finds_its_shape() {
        let cases: &[(&str, Finding)] = &[
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", Finding::Jwt),
            (
                "x eyAiYWxnIjogIkhTMjU2In0.eyAic3ViIjogMX0.sig",
                Finding::Jwt,
            ),
            ("ewogImFsZyI6ICJub25lIgp9.eyJzdWIiOiIxIn0.", Finding::Jwt),
            (
                "got Bearer\tabc123XYZ from the client",
                Finding::AuthorizationScheme,
            ),
            ("Basic dXNlcjpodW50ZXIy", Finding::AuthorizationScheme),
            ("bearer%20abcdef", Finding::AuthorizationScheme),
            ("password=hunter2-in-reason", Finding::SecretPair),
            (
                "https://app/cb?state=1&code=SplxlOBeZQQYbYS6WxSbIA",
                Finding::SecretPair,
            ),
            (
                "redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fcode%3DX",
                Finding::SecretPair,
            ),
            ("connect.sid=s%3Aabc.def", Finding::SecretPair),
            (
                r#"LoginForm { user: "u1", password: "hunter2" }"#,
                Finding::SecretPair,
            ),
            (r#"{"api_key": "k_123"}"#, Finding::SecretPair),
            (
                "verify failed for password hunter2",
                Finding::SecretAfterWord,
            ),
            ("the pin is 1234", Finding::SecretAfterWord),
            ("mfa check failed with 123456", Finding::OneTimeCode),
            ("totp 123456 was wrong", Finding::SecretAfterWord),
            (
                "postgres://svc:s3cret@db.internal/auth",
                Finding::UrlCredentials,
            ),
            (
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                Finding::PasswordHash,
            ),
            (
                "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                Finding::VendorToken,
            ),
            ("AKIAIOSFODNN7EXAMPLE", Finding::VendorToken),
            (
                "note 4eC39HqLyjWDarjtT1zdp7dc end",
                Finding::HighEntropyToken,
            ),
            (
                "d41d8cd98f00b204e9800998ecf8427e0123abcd",
                Finding::HighEntropyToken,
            ),
            ("sent to alice.smith@example.com", Finding::Email),
        ];
        for (text, finding) in cases {
            assert_eq!(find_credential(text), Some(*finding), "{text:?}");
        }
    }

    /// Every rule, one after the other, with no filter: what `find` must answer.
    fn find_every_rule(text: &str, scan: Scan) -> Option<Finding> {
        let bytes = crate::policy::truncate(text, SCREENED_PREFIX).as_bytes();
        if bytes.len() < 5 {
            return None;
        }
        let rules: [(bool, Finding); 10] = [
            (has_jwt(bytes), Finding::Jwt),
            (
                has_authorization_scheme(bytes),
                Finding::AuthorizationScheme,
            ),
            (
                has_secret_pair(bytes, scan.colon_pairs),
                Finding::SecretPair,
            ),
            (has_secret_after_word(bytes), Finding::SecretAfterWord),
            (has_one_time_code(bytes), Finding::OneTimeCode),
            (has_url_credentials(bytes), Finding::UrlCredentials),
            (has_password_hash(bytes), Finding::PasswordHash),
            (has_vendor_token_every_position(bytes), Finding::VendorToken),
            (
                scan.entropy && has_high_entropy_token(bytes),
                Finding::HighEntropyToken,
            ),
            (has_email(bytes), Finding::Email),
        ];
        rules.into_iter().find(|(hit, _)| *hit).map(|(_, f)| f)
    }

    /// `has_vendor_token` without its first-byte shortcut.
    fn has_vendor_token_every_position(bytes: &[u8]) -> bool {
        (0..bytes.len()).any(|i| {
            at_word_start(bytes, i)
                && VENDOR_PREFIXES.iter().any(|(prefix, rest)| {
                    bytes[i..].starts_with(prefix)
                        && run(bytes, i + prefix.len(), is_b64url) >= *rest
                })
        })
    }

    #[test]
    fn the_shape_filter_never_changes_a_finding() {
        // Fragments that trigger (or nearly trigger) each rule, joined at random with
        // separators: the filtered and unfiltered screens must agree on every one.
        const PARTS: [&str; 42] = [
            "password",
            "token",
            "pin",
            "otp",
            "code",
            "mfa",
            "bearer",
            "Basic",
            "key",
            "api_key",
            "u_42",
            "svc_421",
            "=",
            ":",
            "%3D",
            "%3a",
            "%20",
            "+",
            " ",
            "\t",
            "@",
            "$2b$",
            "$argon2id$",
            "://",
            ".",
            "eyJhbGciOiJIUz",
            "eyJzdWIi",
            "123456",
            "1234",
            "ghp_",
            "xoxb-",
            "AKIA",
            "sk_live_",
            "16C7e42F292c6912E7710c8",
            "example.com",
            "alice",
            "hunter2",
            "4eC39HqLyjWDarjtT1zdp7dc",
            "é",
            "\"",
            "\u{1}",
            "\u{7f}",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        let mut found = 0;
        for _ in 0..20_000 {
            let n = 1 + (next() % 7) as usize;
            let text: String = (0..n)
                .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
                .collect();
            for scan in [Scan::TEXT, Scan::IDENTIFIER] {
                let expected = find_every_rule(&text, scan);
                assert_eq!(find(&text, scan), expected, "{text:?}");
                found += usize::from(expected.is_some());
                checked += 1;
            }
            // The identifier check's one pass answers as its checks did one by one.
            assert_eq!(
                super::super::check_identifier(&text),
                check_identifier_pass_by_pass(&text),
                "{text:?}"
            );
        }
        assert_eq!(checked, 40_000);
        assert!(
            found > 5_000,
            "the corpus reaches the rules: {found} findings"
        );
    }

    /// `check_identifier` as it was written before its checks shared one pass.
    fn check_identifier_pass_by_pass(id: &str) -> Result<(), super::super::IdentifierProblem> {
        use super::super::{IdentifierProblem, LIMITS};
        if id.is_empty() || id.bytes().any(|b| b.is_ascii_control()) {
            return Err(IdentifierProblem::Malformed);
        }
        if id.len() > LIMITS.id_bytes {
            return Err(IdentifierProblem::TooLong);
        }
        if id.contains('@') {
            return Err(IdentifierProblem::Email);
        }
        match find_every_rule(id, Scan::IDENTIFIER) {
            None => Ok(()),
            Some(Finding::Email) => Err(IdentifierProblem::Email),
            Some(_) => Err(IdentifierProblem::Credential),
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "password reset link expired",
            "Basic plan quota exceeded",
            "the bearer token was expired",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "/api/v1/users/12345/sessions",
            "/Users/Alice/Documents2024/Report",
            "invalid_password",
            "too_many_attempts",
            "error_code=E1042",
            "token_type=bearer",
            "0191b6a2-7c1e-7d3a-9f00-2b5c1d9e8a77",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            "at 10:15:30 from 203.0.113.7",
            "user:u_42",
            "ip:203.0.113.7",
            "ThisIsAVeryLongIdentifierName",
            "password_reset_link_expired_after_24h",
            "https://example.com/path?page=2",
            "",
            "é€😀 non-ASCII text with ümlauts",
        ] {
            assert_eq!(find_credential(text), None, "{text:?}");
        }
    }
}
