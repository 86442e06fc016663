//! Storage of metadata fields: written when set, read only through the policy.

use std::mem::MaybeUninit;

use super::{MAX_EXTRA_FIELDS, Value};

/// The standard text fields, in the order [`Metadata::for_each_field`] reports them.
#[derive(Clone, Copy)]
pub(super) enum Text {
    UserId,
    SessionId,
    UserAgent,
    Provider,
    Method,
    Reason,
    Operation,
    Caller,
    Resource,
    RateLimitKey,
    TenantId,
    ClientId,
    GrantType,
    Aal,
}

pub(super) const TEXT_FIELDS: usize = 14;

impl Text {
    /// Whether the field holds a code from [`crate::vocabulary`] (set only from `'static`).
    pub(super) fn is_code(self) -> bool {
        matches!(
            self,
            Text::Method | Text::Reason | Text::Operation | Text::GrantType | Text::Aal
        )
    }

    /// Whether the field holds an identifier (an opaque id: never an email or a credential).
    pub(super) fn is_identifier(self) -> bool {
        matches!(
            self,
            Text::UserId
                | Text::Caller
                | Text::SessionId
                | Text::RateLimitKey
                | Text::TenantId
                | Text::ClientId
        )
    }
}

/// Every standard text field with its key, in reporting order.
pub(super) const TEXT_KEYS: [(Text, &str); TEXT_FIELDS] = [
    (Text::UserId, "user_id"),
    (Text::SessionId, "session_id"),
    (Text::UserAgent, "user_agent"),
    (Text::Provider, "provider"),
    (Text::Method, "method"),
    (Text::Reason, "reason"),
    (Text::Operation, "operation"),
    (Text::Caller, "caller"),
    (Text::Resource, "resource"),
    (Text::RateLimitKey, "rate_limit_key"),
    (Text::TenantId, "tenant_id"),
    (Text::ClientId, "client_id"),
    (Text::GrantType, "grant_type"),
    (Text::Aal, "aal"),
];

/// The standard text fields: a bit per field says which slots hold a value.
///
/// Why not `[Option<&str>; 14]`: metadata is built by the caller whether or not anyone
/// listens, and fourteen `None`s are fourteen stores; an empty bitmask is one. The slots are
/// written only when set, so emitting with nothing attached touches almost nothing.
#[derive(Clone, Copy)]
pub(super) struct TextSlots<'a> {
    pub(super) set: u16,
    values: MaybeUninit<[&'a str; TEXT_FIELDS]>,
}

impl<'a> TextSlots<'a> {
    #[inline]
    pub(super) fn set(&mut self, field: Text, value: &'a str) {
        // SAFETY: `field as usize` < TEXT_FIELDS, so the pointer stays inside the array,
        // and `write` does not read the (possibly uninitialised) old value.
        unsafe {
            self.values
                .as_mut_ptr()
                .cast::<&'a str>()
                .add(field as usize)
                .write(value);
        }
        self.set |= 1 << field as u16;
    }

    #[inline]
    pub(super) fn get(&self, field: Text) -> Option<&'a str> {
        if self.set & (1 << field as u16) == 0 {
            return None;
        }
        // SAFETY: a field's bit is set only by `set`, right after it writes that slot, and
        // slots are never un-written.
        Some(unsafe {
            self.values
                .as_ptr()
                .cast::<&'a str>()
                .add(field as usize)
                .read()
        })
    }
}

/// The extra fields: the first `len` slots hold values (same reason as [`TextSlots`]).
#[derive(Clone, Copy)]
pub(super) struct ExtraSlots<'a> {
    pub(super) len: u8,
    values: MaybeUninit<[(&'a str, Value<'a>); MAX_EXTRA_FIELDS]>,
}

impl<'a> ExtraSlots<'a> {
    pub(super) fn is_full(&self) -> bool {
        self.len as usize >= MAX_EXTRA_FIELDS
    }

    /// Appends a field; the caller checks [`is_full`](Self::is_full) first (a push onto a
    /// full set is ignored).
    pub(super) fn push(&mut self, key: &'a str, value: Value<'a>) {
        let slot = self.len as usize;
        if slot >= MAX_EXTRA_FIELDS {
            return;
        }
        // SAFETY: `slot` < MAX_EXTRA_FIELDS (checked above), so the pointer stays in the
        // array, and `write` does not read the uninitialised slot.
        unsafe {
            self.values
                .as_mut_ptr()
                .cast::<(&'a str, Value<'a>)>()
                .add(slot)
                .write((key, value));
        }
        self.len += 1;
    }

    pub(super) fn as_slice(&self) -> &[(&'a str, Value<'a>)] {
        // SAFETY: the first `len` slots were written by `push` (len only grows after a
        // write, and never beyond MAX_EXTRA_FIELDS), and they live as long as `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.values.as_ptr().cast::<(&'a str, Value<'a>)>(),
                self.len as usize,
            )
        }
    }
}
