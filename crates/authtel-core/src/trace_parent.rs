//! The W3C Trace Context `traceparent` header: which distributed trace a request belongs to.

use std::fmt;

use crate::span_id::SpanId;

/// A parsed W3C `traceparent` (`00-<trace-id>-<parent-id>-<flags>`): the caller's trace and
/// span. Records emitted inside a request context that carries one get its trace id as
/// their `trace_id` (32 hex digits) in audit records.
///
/// ```
/// use authtel_core::context::TraceParent;
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
/// assert_eq!(tp.trace_id_hex().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(tp.parent_id().to_string(), "00f067aa0ba902b7");
/// assert!(tp.sampled());
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// # Ok::<(), authtel_core::context::TraceParentError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: SpanId,
    flags: u8,
}

/// Why a `traceparent` value was not accepted. The value itself is not repeated: it came
/// from the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` with 2, 32, 16 and 2 lowercase hex digits.
    #[error(
        "traceparent is malformed: expected `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>` (W3C Trace Context); the request is recorded without a trace id"
    )]
    Malformed,
    /// Version `ff`, which the specification forbids.
    #[error("traceparent has the forbidden version ff; the request is recorded without a trace id")]
    InvalidVersion,
    /// An all-zero trace id or parent id, which the specification forbids.
    #[error(
        "traceparent has an all-zero trace id or parent id; the request is recorded without a trace id"
    )]
    ZeroId,
}

impl TraceParent {
    /// A trace parent from its parts: `None` when `trace_id` is all zeros.
    ///
    /// ```
    /// use authtel_core::context::TraceParent;
    /// use authtel_core::telemetry::SpanId;
    /// let parent = SpanId::from_u64(7).unwrap();
    /// assert!(TraceParent::new([1; 16], parent, true).is_some());
    /// assert!(TraceParent::new([0; 16], parent, true).is_none());
    /// ```
    pub fn new(trace_id: [u8; 16], parent_id: SpanId, sampled: bool) -> Option<TraceParent> {
        (trace_id != [0; 16]).then_some(TraceParent {
            trace_id,
            parent_id,
            flags: u8::from(sampled),
        })
    }

    /// Parses a `traceparent` header value. Versions after `00` are accepted as the
    /// specification asks (their first four fields read as version `00`'s).
    ///
    /// ```
    /// use authtel_core::context::{TraceParent, TraceParentError};
    /// assert_eq!(TraceParent::parse("garbage"), Err(TraceParentError::Malformed));
    /// assert_eq!(
    ///     TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ///     Err(TraceParentError::ZeroId)
    /// );
    /// ```
    pub fn parse(value: &str) -> Result<TraceParent, TraceParentError> {
        let b = value.trim_matches([' ', '\t']).as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(TraceParentError::Malformed);
        }
        let version = hex_byte(&b[0..2]).ok_or(TraceParentError::Malformed)?;
        if version == 0xff {
            return Err(TraceParentError::InvalidVersion);
        }
        // Version 00 is exactly 55 bytes; later versions may append `-…` fields.
        if (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return Err(TraceParentError::Malformed);
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&b[3 + 2 * i..5 + 2 * i]).ok_or(TraceParentError::Malformed)?;
        }
        let mut parent = [0u8; 8];
        for (i, byte) in parent.iter_mut().enumerate() {
            *byte = hex_byte(&b[36 + 2 * i..38 + 2 * i]).ok_or(TraceParentError::Malformed)?;
        }
        let flags = hex_byte(&b[53..55]).ok_or(TraceParentError::Malformed)?;
        let parent_id =
            SpanId::from_u64(u64::from_be_bytes(parent)).ok_or(TraceParentError::ZeroId)?;
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroId);
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id's 16 bytes.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The trace id as 32 lowercase hex digits, without allocating.
    pub fn trace_id_hex(&self) -> TraceIdText {
        let mut buf = [0u8; 32];
        for (i, byte) in self.trace_id.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(byte >> 4)];
            buf[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        TraceIdText(buf)
    }

    /// The caller's span: the parent of the spans this request opens.
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// Whether the caller sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

impl fmt::Display for TraceParent {
    /// The `traceparent` header value, version `00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex().as_str(),
            self.parent_id,
            self.flags & 1
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// A trace id as 32 lowercase hex digits in a stack buffer; see
/// [`TraceParent::trace_id_hex`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceIdText([u8; 32]);

impl TraceIdText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for TraceIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lowercase hex digits (the specification allows no uppercase).
fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_and_accepts_future_versions() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(tp.to_string(), GOOD);
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert_eq!(
            TraceParent::parse(future).unwrap().trace_id(),
            tp.trace_id()
        );
        let unsampled = TraceParent::parse(&GOOD.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled());
    }

    #[test]
    fn rejects_every_malformed_shape_without_panicking() {
        let bad = [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ];
        for value in bad {
            assert_eq!(
                TraceParent::parse(value),
                Err(TraceParentError::Malformed),
                "{value:?}"
            );
        }
        assert_eq!(
            TraceParent::parse(&GOOD.replace("00-4b", "ff-4b")),
            Err(TraceParentError::InvalidVersion)
        );
        assert_eq!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Err(TraceParentError::ZeroId)
        );
    }
}
