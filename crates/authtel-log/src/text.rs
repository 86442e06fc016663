//! Field values as text on the stack: span ids, the extra fields, durations.

use std::fmt;
use std::mem::MaybeUninit;

use authtel_core::metadata::{Metadata, Value};
use authtel_core::telemetry::SpanId;

/// A span id as 16 lowercase hex digits on the stack (as `SpanId`'s `Display`), so the
/// subscriber records one `&str` instead of formatting a padded integer char by char.
pub(crate) struct HexId([u8; 16]);

impl HexId {
    /// All 16 digits at once: each nibble is spread to its own byte of a `u128`, then every
    /// byte becomes its ASCII digit together (`0`..`9` add `b'0'`, `a`..`f` 39 more).
    pub(crate) fn new(id: SpanId) -> HexId {
        const ONES: u128 = u128::from_ne_bytes([1; 16]);
        let v = id.get();
        // Byte k of `hi`/`lo` holds nibble 2k+1 / 2k (counting from the least significant).
        let hi = spread((v >> 4) & 0x0f0f_0f0f_0f0f_0f0f);
        let lo = spread(v & 0x0f0f_0f0f_0f0f_0f0f);
        // Byte j holds nibble j, at most 0x0f: no byte carries into the next below.
        let nibbles = (hi << 8) | lo;
        let letters = ((nibbles + 6 * ONES) >> 4) & ONES;
        HexId((nibbles + b'0' as u128 * ONES + letters * 39).to_be_bytes())
    }

    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: `new` writes only ASCII hex digits, so the bytes are valid UTF-8 (checking
        // them again costs about 90 instructions per id on every line).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// Byte k of `x` moved to byte 2k of the result, the bytes between zero.
fn spread(x: u64) -> u128 {
    let mut x = u128::from(x);
    x = (x | (x << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    (x | (x << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff
}

/// The extra fields rendered once, so the subscriber records one `&str`: on the stack when
/// they fit, else in a `String` (long values only). The stack buffer is not zeroed: only
/// the written prefix is ever read.
pub(crate) struct ExtraText {
    buf: [MaybeUninit<u8>; EXTRA_INLINE],
    len: usize,
    long: Option<String>,
}

const EXTRA_INLINE: usize = 256;

impl fmt::Write for ExtraText {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        match (&mut self.long, self.buf.get_mut(self.len..end)) {
            (None, Some(slot)) => {
                // SAFETY: `slot` is `s.len()` bytes of our buffer (`get_mut` checked the
                // range), `MaybeUninit<u8>` has `u8`'s layout, and `s` is another object.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        s.as_ptr(),
                        slot.as_mut_ptr().cast::<u8>(),
                        s.len(),
                    );
                }
                self.len = end;
            }
            (Some(long), _) => long.push_str(s),
            (None, None) => self.spill(s),
        }
        Ok(())
    }
}

impl ExtraText {
    /// Empty: nothing written, nothing allocated.
    pub(crate) fn new() -> Self {
        ExtraText {
            buf: [const { MaybeUninit::uninit() }; EXTRA_INLINE],
            len: 0,
            long: None,
        }
    }

    /// Writes the pairs; the text is then [`ExtraText::as_str`].
    pub(crate) fn render(&mut self, fields: ExtraFields<'_, '_>) {
        // Writing to our own buffer cannot fail.
        let _ = fields.write_pairs(self);
    }

    /// Moves what the buffer holds, and `s`, into a `String`.
    #[cold]
    fn spill(&mut self, s: &str) {
        let mut long = String::with_capacity((self.len + s.len()) * 2);
        long.push_str(self.inline());
        long.push_str(s);
        self.long = Some(long);
    }

    fn inline(&self) -> &str {
        // SAFETY: the first `len` bytes were written, each from a whole `&str` copied in,
        // so they are initialised and valid UTF-8.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.buf.as_ptr().cast::<u8>(),
                self.len,
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.long {
            Some(long) => long,
            None => self.inline(),
        }
    }

    #[cfg(test)]
    fn spilled(&self) -> bool {
        self.long.is_some()
    }
}

/// Milliseconds from whole nanoseconds: one rounding, so `2243ns` prints as `0.002243`.
pub(crate) fn duration_ms(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1_000_000.0
}

/// The extra fields as `key=value` pairs separated by spaces.
pub(crate) struct ExtraFields<'m, 'a>(&'m Metadata<'a>);

impl<'m, 'a> ExtraFields<'m, 'a> {
    pub(crate) fn of(metadata: &'m Metadata<'a>) -> Option<Self> {
        metadata.has_extra().then_some(ExtraFields(metadata))
    }

    /// Writes the pairs; plain text values are copied as they are, without the
    /// formatting machinery.
    fn write_pairs(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for (i, (key, value)) in self.0.extra().enumerate() {
            if i > 0 {
                out.write_str(" ")?;
            }
            out.write_str(key)?;
            out.write_str("=")?;
            match value {
                // Quote text that would make the pairs ambiguous.
                Value::Str(s) if s.is_empty() || s.contains([' ', '=', '"']) => {
                    write!(out, "{s:?}")?
                }
                Value::Str(s) => out.write_str(s)?,
                other => write!(out, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for ExtraFields<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_pairs(f)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use authtel_core::metadata::IpText;

    use super::*;

    #[test]
    fn extra_fields_render_as_quoted_pairs() {
        let m = Metadata::new()
            .with_extra("tenant", "acme")
            .with_extra("note", "two words")
            .with_extra("retries", 2u32);
        let text = ExtraFields::of(&m).map(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Some("tenant=acme note=\"two words\" retries=2")
        );
        assert!(ExtraFields::of(&Metadata::new()).is_none());
    }

    #[test]
    fn ids_and_addresses_render_as_their_display() {
        for v in [1u64, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let id = SpanId::from_u64(v).expect("non-zero");
            assert_eq!(HexId::new(id).as_str(), id.to_string());
        }
        for ip in [
            "203.0.113.7",
            "0.0.0.0",
            "10.0.100.255",
            "1.20.199.9",
            "255.255.255.255",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().expect("valid address");
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
        for o in 0..=255u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(
                o,
                255 - o,
                o / 2,
                o.wrapping_mul(7),
            ));
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
    }

    #[test]
    fn ids_render_as_lowercase_hex_for_every_nibble_pattern() {
        let mut v: u64 = 0x9e37_79b9_7f4a_7c15;
        for shift in 0..64 {
            for id in [1u64 << shift, u64::MAX >> shift, v] {
                let id = SpanId::from_u64(id).expect("non-zero");
                assert_eq!(HexId::new(id).as_str(), format!("{:016x}", id.get()));
            }
            v = v.rotate_left(7).wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1;
        }
    }

    #[test]
    fn durations_print_without_float_noise() {
        let ms = duration_ms(std::time::Duration::from_nanos(2_243));
        assert_eq!(ms.to_string(), "0.002243");
        assert_eq!(duration_ms(std::time::Duration::from_millis(1500)), 1500.0);
    }

    #[test]
    fn long_extra_fields_are_written_whole() {
        let long = "x".repeat(200);
        let m = Metadata::new()
            .with_extra("first", long.as_str())
            .with_extra("second", long.as_str());
        let fields = ExtraFields::of(&m).expect("two extras");
        let mut rendered = ExtraText::new();
        rendered.render(fields);
        assert!(rendered.spilled(), "longer than the inline buffer");
        assert_eq!(rendered.as_str(), format!("first={long} second={long}"));
        let short = Metadata::new()
            .with_extra("tenant", "acme")
            .with_extra("note", "two words")
            .with_extra("retries", 2u32);
        let mut rendered = ExtraText::new();
        rendered.render(ExtraFields::of(&short).expect("extras"));
        assert!(!rendered.spilled());
        assert_eq!(
            rendered.as_str(),
            "tenant=acme note=\"two words\" retries=2"
        );
    }
}
