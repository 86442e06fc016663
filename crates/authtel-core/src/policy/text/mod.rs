//! The free-text screen: finds a credential or an email anywhere in a text value.
//!
//! Every rule is a single pass over the bytes; non-ASCII bytes never start or continue a
//! match (they act as separators), so any UTF-8 input is handled without slicing inside a
//! character. The rules, in the order they run, are the variants of [`Finding`].

mod rules;
#[cfg(test)]
mod tests;

use rules::{
    has_authorization_scheme, has_email, has_high_entropy_token, has_jwt, has_one_time_code,
    has_password_hash, has_secret_after_word, has_secret_pair, has_url_credentials,
    has_vendor_token,
};

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
