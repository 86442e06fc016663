//! Reading metadata: every getter, [`Metadata::extra`] and [`Metadata::for_each_field`]
//! apply the policy here, and count what it redacts or refuses once per value.

use std::fmt;
use std::sync::atomic::Ordering;

use super::slots::{TEXT_KEYS, Text};
use super::{Factors, IpText, Metadata, REDACTED, Value};
use crate::policy::{self, KeyClass};

impl<'a> Metadata<'a> {
    /// The extra fields, in insertion order, as the policy lets them out: a field under a
    /// key that names a secret reads as [`REDACTED`] (booleans stay), text values are
    /// screened and truncated, and a field whose key is a value (a credential, or key and
    /// value swapped: `with_extra("hunter2", "password")`) is left out.
    #[inline]
    pub fn extra(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        if self.refused > 0 {
            self.count_once();
        }
        self.extra
            .as_slice()
            .iter()
            .filter_map(|&(key, value)| match screen_extra(key, value) {
                Screened::Kept(v) => Some((key, v)),
                Screened::Redacted => {
                    self.count_once();
                    Some((key, Value::Str(REDACTED)))
                }
                Screened::Dropped => {
                    self.count_once();
                    None
                }
            })
    }

    /// How many values of this metadata the policy redacts when they are read.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().reason("password=hunter2").with_extra("pin", 1234).with_extra("tenant", "acme");
    /// assert_eq!(m.redacted(), 2);
    /// ```
    pub fn redacted(&self) -> u32 {
        let in_texts = self
            .screened_texts()
            .filter(|s| matches!(s, Screened::Redacted))
            .count();
        let in_extra = self
            .extra
            .as_slice()
            .iter()
            .filter(|&&(k, v)| matches!(screen_extra(k, v), Screened::Redacted))
            .count();
        let in_factors = self.factors.map_or(0, |f| Factors::new(f).redacted());
        (in_texts + in_extra + in_factors) as u32
    }

    /// How many values of this metadata the policy refused: extra fields refused when
    /// added or left out when read, and identifier fields holding an email or a credential.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().user_id("alice@example.com").session_id("s_1");
    /// assert_eq!(m.refused(), 1);
    /// ```
    pub fn refused(&self) -> u32 {
        let identifiers = self
            .screened_texts()
            .filter(|s| matches!(s, Screened::Dropped))
            .count();
        let dropped = self
            .extra
            .as_slice()
            .iter()
            .filter(|&&(k, v)| matches!(screen_extra(k, v), Screened::Dropped))
            .count();
        u32::from(self.refused) + (identifiers + dropped) as u32
    }

    /// A standard text field as every reader sees it (see [`screen_text`]).
    #[inline]
    pub(super) fn read_text(&self, field: Text) -> Option<&'a str> {
        match screen_text(field, self.texts.get(field)?) {
            Screened::Kept(kept) => Some(kept),
            Screened::Redacted => {
                self.count_once();
                Some(REDACTED)
            }
            Screened::Dropped => {
                self.count_once();
                None
            }
        }
    }

    /// What the policy makes of each standard text field that is set.
    fn screened_texts(&self) -> impl Iterator<Item = Screened<&'a str>> + '_ {
        TEXT_KEYS
            .iter()
            .filter_map(|&(field, _)| self.texts.get(field).map(|value| screen_text(field, value)))
    }

    /// Adds this value's redactions and refusals to the process counters, the first time
    /// a read finds any.
    #[cold]
    pub(super) fn count_once(&self) {
        if !self.counted.swap(true, Ordering::Relaxed) {
            policy::note(u64::from(self.redacted()), u64::from(self.refused()));
        }
    }

    /// Every set field as `(key, value)`, standard fields first, for sinks that write
    /// generic key/value output. Keys of standard fields are their snake_case names.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, Value};
    /// let m = Metadata::new().user_id("u1").attempts_remaining(2);
    /// let mut fields = Vec::new();
    /// m.for_each_field(|k, v| fields.push((k.to_owned(), v.to_string())));
    /// assert_eq!(fields, [("user_id".to_owned(), "u1".to_owned()), ("attempts_remaining".to_owned(), "2".to_owned())]);
    /// ```
    #[inline]
    pub fn for_each_field(&self, mut f: impl FnMut(&str, Value<'_>)) {
        for (field, key) in TEXT_KEYS {
            if let Some(v) = self.read_text(field) {
                f(key, Value::Str(v));
            }
        }
        if let Some(ip) = self.client_ip {
            // Passed as text from a stack buffer; sinks that want the address use
            // `get_client_ip`.
            f("client_ip", Value::Str(IpText::new(ip).as_str()));
        }
        if let Some(tp) = self.trace_parent {
            f("trace_id", Value::Str(tp.trace_id_hex().as_str()));
        }
        if let Some(o) = self.outcome {
            f("outcome", Value::Str(o.as_str()));
        }
        if let Some(n) = self.attempts_remaining {
            f("attempts_remaining", Value::U64(u64::from(n)));
        }
        if let Some(a) = self.admin {
            f("admin", Value::Bool(a));
        }
        if let Some(m) = self.mfa {
            f("is_mfa", Value::Bool(m));
        }
        if let Some(factors) = self.get_factors() {
            f("factors", Value::Str(factors.text().as_str()));
        }
        for (k, v) in self.extra() {
            f(k, v);
        }
    }
}

/// What the policy makes of one field: kept (screened, truncated), redacted, or refused.
enum Screened<T> {
    Kept(T),
    Redacted,
    Dropped,
}

/// The one rule for a standard text field, for readers and for the counts alike: an
/// identifier holding an email or a credential is refused (reads as absent), any other text
/// is screened and truncated.
#[inline]
fn screen_text(field: Text, value: &str) -> Screened<&str> {
    if field.is_identifier() {
        return match policy::check_identifier(value) {
            Ok(()) => Screened::Kept(value),
            Err(_) => Screened::Dropped,
        };
    }
    match policy::screen(value) {
        Some(kept) => Screened::Kept(kept),
        None => Screened::Redacted,
    }
}

fn screen_extra<'a>(key: &'a str, value: Value<'a>) -> Screened<Value<'a>> {
    if !policy::valid_key(key) || matches!(value, Value::Str(s) if policy::swapped(key, s)) {
        return Screened::Dropped;
    }
    if policy::classify_key(key) == KeyClass::Secret {
        return match value {
            Value::Bool(_) => Screened::Kept(value),
            _ => Screened::Redacted,
        };
    }
    match value {
        Value::Str(s) => match policy::screen(s) {
            Some(kept) => Screened::Kept(Value::Str(kept)),
            None => Screened::Redacted,
        },
        other => Screened::Kept(other),
    }
}

impl fmt::Debug for Metadata<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        self.for_each_field(|k, v| {
            map.entry(&k, &v);
        });
        map.finish()
    }
}
