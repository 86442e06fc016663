//! The value of an extra field.

use std::fmt;

/// An extra field's value. Converts from text, integers, floats and booleans — and from
/// nothing else, so secret wrapper types cannot become a value.
///
/// ```
/// use authtel_core::metadata::Value;
/// assert_eq!(Value::from("totp"), Value::Str("totp"));
/// assert_eq!(Value::from(3u32), Value::U64(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text (screened and truncated when read from [`Metadata`](super::Metadata)).
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Str(v)
    }
}
macro_rules! value_from {
    ($variant:ident as $target:ty: $($t:ty),*) => {
        $(impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v as $target)
            }
        })*
    };
}
value_from!(I64 as i64: i8, i16, i32, i64, isize);
value_from!(U64 as u64: u8, u16, u32, u64, usize);
value_from!(F64 as f64: f32, f64);
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// What [`Metadata::with_extra`](super::Metadata::with_extra) and
/// [`try_extra`](super::Metadata::try_extra) accept: anything that converts into a
/// [`Value`], or an `Option` of it (`None` adds no field).
///
/// ```
/// use authtel_core::metadata::{Metadata, Value};
/// let device: Option<&str> = None;
/// let plan: Option<String> = Some("team".to_owned());
/// let m = Metadata::new()
///     .with_extra("device", device)
///     .with_extra("plan", plan.as_ref())
///     .with_extra("retries", Some(2u8));
/// let fields: Vec<_> = m.extra().collect();
/// assert_eq!(fields, [("plan", Value::Str("team")), ("retries", Value::U64(2))]);
/// ```
pub trait ExtraValue<'a> {
    /// The value to add, or `None` to add nothing.
    fn into_extra(self) -> Option<Value<'a>>;
}

impl<'a, T: Into<Value<'a>>> ExtraValue<'a> for T {
    #[inline]
    fn into_extra(self) -> Option<Value<'a>> {
        Some(self.into())
    }
}

impl<'a, T: Into<Value<'a>>> ExtraValue<'a> for Option<T> {
    #[inline]
    fn into_extra(self) -> Option<Value<'a>> {
        self.map(Into::into)
    }
}

impl Default for Value<'_> {
    fn default() -> Self {
        Value::Bool(false)
    }
}
