//! Adding extra fields: [`Metadata::with_extra`], [`Metadata::try_extra`], and whether any is
//! set. The key is checked when a field is added (the cheap charset part of
//! [`crate::policy::valid_key`]); the rest of the policy applies when fields are read
//! (`read.rs`).

use super::{ExtraValue, MAX_KEY_LEN, Metadata, MetadataError, Value, truncate};
use crate::policy;

impl<'a> Metadata<'a> {
    /// Adds an extra field. Secret-named keys and token-looking values are redacted; an
    /// invalid key or a field over [`MAX_EXTRA_FIELDS`](super::MAX_EXTRA_FIELDS) is refused and counted (use
    /// [`Metadata::try_extra`] for the error). The value is text, a number, a boolean or an
    /// `Option` of one ([`ExtraValue`]): `None` adds nothing. Text is borrowed, so a
    /// `format!` written inside the emitting call lives long enough:
    /// `telemetry::event(.., Metadata::new().with_extra("step", &format!("{n}")))`.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, Value, REDACTED};
    /// let m = Metadata::new()
    ///     .with_extra("new_password", "hunter2")
    ///     .with_extra("note", "Bearer abc.def");
    /// let fields: Vec<_> = m.extra().collect();
    /// assert_eq!(fields, [("new_password", Value::Str(REDACTED)), ("note", Value::Str(REDACTED))]);
    /// assert_eq!(m.redacted(), 2);
    /// ```
    #[must_use]
    #[inline]
    pub fn with_extra(mut self, key: &'a str, value: impl ExtraValue<'a>) -> Self {
        if let Some(value) = value.into_extra()
            && self.push_extra(key, value).is_err()
        {
            self.refuse();
        }
        self
    }

    /// Adds an extra field or says why it was refused.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, MetadataError};
    /// let mut m = Metadata::new();
    /// assert!(matches!(m.try_extra("Bad Key", 1), Err(MetadataError::InvalidKey { .. })));
    /// ```
    #[inline]
    pub fn try_extra(
        &mut self,
        key: &'a str,
        value: impl ExtraValue<'a>,
    ) -> Result<(), MetadataError> {
        match value.into_extra() {
            Some(value) => self.push_extra(key, value),
            None => Ok(()),
        }
    }

    #[inline]
    fn push_extra(&mut self, key: &'a str, value: Value<'a>) -> Result<(), MetadataError> {
        if !policy::key_charset_ok(key) {
            return Err(MetadataError::InvalidKey {
                key: truncate(key, MAX_KEY_LEN).to_owned(),
            });
        }
        if self.extra.is_full() {
            return Err(MetadataError::TooManyFields {
                key: key.to_owned(),
            });
        }
        self.extra.push(key, value);
        Ok(())
    }

    /// Whether any extra field is set (without reading, so without screening, them).
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// assert!(!Metadata::new().has_extra());
    /// assert!(Metadata::new().with_extra("tenant", "acme").has_extra());
    /// ```
    #[inline]
    pub fn has_extra(&self) -> bool {
        self.extra.len > 0
    }
}
