//! The authentication factors an event used: a list of [`AuthMethod`] codes.

use std::fmt;

use super::REDACTED;
use crate::policy::{self, LIMITS};
use crate::vocabulary::AuthMethod;

/// Most factors one event reports ([`crate::policy::Limits::factors`]); more are cut.
pub const MAX_FACTORS: usize = LIMITS.factors;

/// The factors set with [`Metadata::factors`](super::Metadata::factors), as the policy lets
/// them out: at most [`MAX_FACTORS`] codes, each screened like every text field (a code
/// holding a credential — only possible through a deliberately leaked `'static` string —
/// reads as [`REDACTED`]).
///
/// ```
/// use authtel_core::metadata::Metadata;
/// use authtel_core::vocabulary::AuthMethod;
/// const FACTORS: [AuthMethod; 2] = [AuthMethod::Password, AuthMethod::Totp];
/// let m = Metadata::new().factors(&FACTORS);
/// let factors = m.get_factors().unwrap();
/// assert_eq!(factors.iter().collect::<Vec<_>>(), ["password", "totp"]);
/// assert_eq!(factors.text().as_str(), "password,totp");
/// ```
#[derive(Clone, Copy)]
pub struct Factors {
    /// The screened codes; the first `len` are set.
    codes: [&'static str; MAX_FACTORS],
    len: u8,
    redacted: u8,
}

impl Factors {
    /// The first [`MAX_FACTORS`] of `methods`, each screened once, here.
    pub(super) fn new(methods: &[AuthMethod]) -> Factors {
        let mut factors = Factors {
            codes: [""; MAX_FACTORS],
            len: 0,
            redacted: 0,
        };
        for (slot, method) in factors.codes.iter_mut().zip(methods) {
            *slot = match policy::screen(method.as_str()) {
                Some(code) => code,
                None => {
                    factors.redacted += 1;
                    REDACTED
                }
            };
            factors.len += 1;
        }
        factors
    }

    /// The factors' codes, in the order they were given, screened.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        self.codes[..usize::from(self.len)].iter().copied()
    }

    /// How many factors (at most [`MAX_FACTORS`]).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many codes the policy redacted.
    pub(super) fn redacted(&self) -> usize {
        usize::from(self.redacted)
    }

    /// The codes joined by `,` (`password,totp`), for sinks that write text, without
    /// allocating; cut on a code boundary at [`crate::policy::MAX_TEXT_LEN`] bytes.
    pub fn text(&self) -> FactorsText {
        let mut text = FactorsText {
            buf: [0; LIMITS.text_bytes],
            len: 0,
        };
        for code in self.iter() {
            let sep = usize::from(text.len > 0);
            if text.len + sep + code.len() > text.buf.len() {
                break;
            }
            if sep == 1 {
                text.buf[text.len] = b',';
            }
            let start = text.len + sep;
            text.buf[start..start + code.len()].copy_from_slice(code.as_bytes());
            text.len = start + code.len();
        }
        text
    }
}

impl fmt::Debug for Factors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// [`Factors`] as comma-joined text in a stack buffer ([`Factors::text`]).
#[derive(Clone, Copy)]
pub struct FactorsText {
    buf: [u8; LIMITS.text_bytes],
    len: usize,
}

impl FactorsText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Whole UTF-8 codes and ASCII commas were copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Debug for FactorsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
