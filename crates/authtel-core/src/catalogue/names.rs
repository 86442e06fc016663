//! Event names: the rules a name follows, checked at compile time for `static`s and at
//! run time for declared events, and the prefixes the library reserves.

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty name or empty segment (`"auth..stop"`).
    #[error(
        "event name {name:?} has an empty segment; use lowercase segments joined by single dots, e.g. \"billing.invoice.viewed\""
    )]
    EmptySegment {
        /// The refused name.
        name: String,
    },
    /// A character outside `[a-z0-9_.]`, or a segment starting with a digit or underscore.
    #[error(
        "event name {name:?} has an invalid character at byte {position}; segments are lowercase ASCII letters, digits and underscores, starting with a letter"
    )]
    InvalidCharacter {
        /// The refused name.
        name: String,
        /// Byte offset of the first offending character.
        position: usize,
    },
    /// Fewer than 2 or more than 6 segments.
    #[error(
        "event name {name:?} has {segments} segments; use 2 to 6, e.g. \"billing.invoice.viewed\""
    )]
    SegmentCount {
        /// The refused name.
        name: String,
        /// How many segments it had.
        segments: usize,
    },
    /// Longer than [`MAX_NAME_LEN`].
    #[error("event name {name:?} is longer than {MAX_NAME_LEN} bytes; shorten it")]
    TooLong {
        /// The refused name.
        name: String,
    },
    /// The first segment is one of the library's category prefixes.
    #[error(
        "event name {name:?} starts with {prefix:?}, which is reserved for authtel's own catalogue; use your application's own prefix, e.g. \"myapp.{prefix}...\""
    )]
    Reserved {
        /// The refused name.
        name: String,
        /// The reserved prefix it used.
        prefix: &'static str,
    },
}

/// Longest accepted event name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks the name grammar shared by library and application events: 2 to 6 lowercase
/// segments `[a-z][a-z0-9_]*` joined by dots, at most [`MAX_NAME_LEN`] bytes.
///
/// ```
/// use authtel_core::catalogue::validate_name;
/// assert!(validate_name("auth.login.stop").is_ok());
/// assert!(validate_name("auth").is_err());
/// assert!(validate_name("Auth.Login").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), NameError> {
    match check_name(name) {
        None => Ok(()),
        Some(fault) => Err(fault.into_error(name)),
    }
}

/// [`validate_name`], plus: the first segment must not be a library prefix
/// (`auth`, `mfa`, `security`, … and `authtel`).
///
/// ```
/// use authtel_core::catalogue::validate_application_name;
/// assert!(validate_application_name("billing.invoice.viewed").is_ok());
/// assert!(validate_application_name("security.custom").is_err());
/// ```
pub fn validate_application_name(name: &str) -> Result<(), NameError> {
    match check_application_name(name) {
        None => Ok(()),
        Some(fault) => Err(fault.into_error(name)),
    }
}

/// A name fault without the name, so that checks can run in `const` context
/// (a `String` cannot be dropped there).
#[derive(Clone, Copy)]
pub(super) enum Fault {
    Empty,
    Char(usize),
    Count(usize),
    Long,
    Reserved(&'static str),
}

impl Fault {
    fn into_error(self, name: &str) -> NameError {
        let name = name.to_owned();
        match self {
            Fault::Empty => NameError::EmptySegment { name },
            Fault::Char(position) => NameError::InvalidCharacter { name, position },
            Fault::Count(segments) => NameError::SegmentCount { name, segments },
            Fault::Long => NameError::TooLong { name },
            Fault::Reserved(prefix) => NameError::Reserved { name, prefix },
        }
    }
}

pub(super) const fn check_name(name: &str) -> Option<Fault> {
    let bytes = name.as_bytes();
    if bytes.len() > MAX_NAME_LEN {
        return Some(Fault::Long);
    }
    let mut segments = 1;
    let mut at_segment_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'.' {
            if at_segment_start {
                return Some(Fault::Empty);
            }
            segments += 1;
            at_segment_start = true;
        } else {
            let ok = if at_segment_start {
                b.is_ascii_lowercase()
            } else {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
            };
            if !ok {
                return Some(Fault::Char(i));
            }
            at_segment_start = false;
        }
        i += 1;
    }
    if at_segment_start {
        return Some(Fault::Empty);
    }
    if segments < 2 || segments > 6 {
        return Some(Fault::Count(segments));
    }
    None
}

pub(super) const fn check_application_name(name: &str) -> Option<Fault> {
    if let Some(fault) = check_name(name) {
        return Some(fault);
    }
    let mut k = 0;
    while k < RESERVED_PREFIXES.len() {
        if first_segment_is(name, RESERVED_PREFIXES[k]) {
            return Some(Fault::Reserved(RESERVED_PREFIXES[k]));
        }
        k += 1;
    }
    None
}

/// First segments reserved for the library.
pub const RESERVED_PREFIXES: [&str; 17] = [
    "auth",
    "token",
    "email",
    "confirmation",
    "session",
    "oauth",
    "mfa",
    "api_token",
    "jwt",
    "account",
    "hook",
    "security",
    "reset",
    "authorization",
    "pipeline",
    "authtel",
    "custom",
];

const fn first_segment_is(name: &str, prefix: &str) -> bool {
    let n = name.as_bytes();
    let p = prefix.as_bytes();
    if n.len() <= p.len() || n[p.len()] != b'.' {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if n[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub(super) const fn phase_names_match(
    name: &str,
    start: &str,
    stop: &str,
    exception: &str,
) -> bool {
    is_name_with_suffix(start, name, "start")
        && is_name_with_suffix(stop, name, "stop")
        && is_name_with_suffix(exception, name, "exception")
}

const fn is_name_with_suffix(full: &str, name: &str, suffix: &str) -> bool {
    let f = full.as_bytes();
    let n = name.as_bytes();
    let s = suffix.as_bytes();
    if f.len() != n.len() + 1 + s.len() || f[n.len()] != b'.' {
        return false;
    }
    let mut i = 0;
    while i < n.len() {
        if f[i] != n[i] {
            return false;
        }
        i += 1;
    }
    let mut j = 0;
    while j < s.len() {
        if f[n.len() + 1 + j] != s[j] {
            return false;
        }
        j += 1;
    }
    true
}
