//! Why a metadata value was refused.

use super::{MAX_EXTRA_FIELDS, MAX_KEY_LEN};
use crate::policy;

/// Why a metadata value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// An email address was given where an identifier belongs.
    #[error(
        "{field} looks like an email address; identifiers must be opaque ids (user id, not email): pass the account's id, or a keyed pseudonym of the email (authtel_core::pseudonym::PseudonymKey::for_email)"
    )]
    EmailAsIdentifier {
        /// The field that refused it.
        field: &'static str,
    },
    /// An extra-field key is not `[a-z][a-z0-9_.]*` of at most [`MAX_KEY_LEN`] bytes.
    #[error(
        "metadata key {key:?} is invalid; keys are lowercase ASCII letters, digits, '_' and '.', starting with a letter, at most {MAX_KEY_LEN} bytes"
    )]
    InvalidKey {
        /// The refused key (truncated).
        key: String,
    },
    /// More than [`MAX_EXTRA_FIELDS`] extra fields.
    #[error(
        "metadata already holds {MAX_EXTRA_FIELDS} extra fields; field {key:?} was refused: move rarely used detail out of the event"
    )]
    TooManyFields {
        /// The refused key.
        key: String,
    },
    /// An identifier holds a credential, is too long, or is malformed.
    #[error(
        "{field} was refused ({problem:?}): identifiers are opaque ids of at most 128 bytes without control characters, never a token, password or code"
    )]
    RefusedIdentifier {
        /// The field that refused it.
        field: &'static str,
        /// What is wrong with it.
        problem: policy::IdentifierProblem,
    },
}
