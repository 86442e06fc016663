//! Turning a record into one `tracing` event.
//!
//! `tracing` callsites are static: target, level and field names are fixed at compile
//! time. So each (category target, level) pair gets its own `tracing::event!` call, chosen
//! by two `match`es; the macros below write those calls once.

use std::fmt;

use authtel_core::catalogue::Category;
use authtel_core::metadata::{IpText, Metadata, Value};
use authtel_core::telemetry::{EventRecord, SpanId};
use tracing::Level;

/// A `tracing::Level` as a plain enum, so it can be matched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::TRACE => LogLevel::Trace,
            Level::DEBUG => LogLevel::Debug,
            Level::INFO => LogLevel::Info,
            Level::WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

impl From<LogLevel> for Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => Level::TRACE,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Info => Level::INFO,
            LogLevel::Warn => Level::WARN,
            LogLevel::Error => Level::ERROR,
        }
    }
}

/// One `tracing::event!` with every field the logger may write; absent ones (`None`) are
/// not recorded. Values are computed only if a subscriber enables the callsite.
///
/// Each callsite lives in its own small function: inlined into one `match`, the 80 value
/// sets would give `emit` a stack frame of many kilobytes, touched on every call.
macro_rules! event_at {
    ($target:literal, $level:expr, $r:ident) => {{
        #[inline(never)]
        fn log(r: &EventRecord<'_>) {
            let extra = ExtraFields::of(r.metadata).map(ExtraText::render);
            tracing::event!(
                target: $target,
                $level,
                event = r.event.name(),
                outcome = r.outcome.map(|o| o.as_str()),
                duration_ms = r.measurements.duration.map(duration_ms),
                span_id = HexId::new(r.context.span_id).as_str(),
                parent_id = r.context.parent_id.map(HexId::new).as_ref().map(HexId::as_str),
                root_id = HexId::new(r.context.root_id).as_str(),
                trace_id = r.metadata.get_trace_parent().map(|t| t.trace_id_hex()).as_ref().map(|t| t.as_str()),
                error_type = r.error_type,
                exception = r.exception.map(|e| e.kind.as_str()),
                exception_reason = r.exception.and_then(|e| e.reason),
                count = r.measurements.count,
                user_id = r.metadata.get_user_id(),
                session_id = r.metadata.get_session_id(),
                client_ip = r.metadata.get_client_ip().map(IpText::new).as_ref().map(IpText::as_str),
                user_agent = r.metadata.get_user_agent(),
                provider = r.metadata.get_provider(),
                method = r.metadata.get_method(),
                reason = r.metadata.get_reason(),
                operation = r.metadata.get_operation(),
                caller = r.metadata.get_caller(),
                resource = r.metadata.get_resource(),
                rate_limit_key = r.metadata.get_rate_limit_key(),
                attempts_remaining = r.metadata.get_attempts_remaining(),
                admin = r.metadata.get_admin(),
                extra = extra.as_ref().map(ExtraText::as_str),
            )
        }
        log($r)
    }};
}

/// Picks the level's callsite for one target.
macro_rules! event_for_target {
    ($target:literal, $level:expr, $r:ident) => {
        match $level {
            LogLevel::Trace => event_at!($target, Level::TRACE, $r),
            LogLevel::Debug => event_at!($target, Level::DEBUG, $r),
            LogLevel::Info => event_at!($target, Level::INFO, $r),
            LogLevel::Warn => event_at!($target, Level::WARN, $r),
            LogLevel::Error => event_at!($target, Level::ERROR, $r),
        }
    };
}

/// Category to target literal, the one table both `emit` and the tests read.
macro_rules! targets {
    ($( $category:ident => $target:literal, )* _ => $fallback:literal $(,)?) => {
        /// Writes `record` as a `tracing` event at `level` under its category's target.
        pub(crate) fn emit(level: LogLevel, record: &EventRecord<'_>) {
            match record.event.category() {
                $( Category::$category => event_for_target!($target, level, record), )*
                // Categories added to core later log as application events until listed here.
                _ => event_for_target!($fallback, level, record),
            }
        }

        /// The target literal used for `category`.
        #[cfg(test)]
        fn target_literal(category: Category) -> &'static str {
            match category {
                $( Category::$category => $target, )*
                _ => $fallback,
            }
        }
    };
}

targets! {
    Auth => "authtel::auth",
    Token => "authtel::token",
    Email => "authtel::email",
    Confirmation => "authtel::confirmation",
    Session => "authtel::session",
    OAuth => "authtel::oauth",
    Mfa => "authtel::mfa",
    ApiToken => "authtel::api_token",
    Jwt => "authtel::jwt",
    Account => "authtel::account",
    Hook => "authtel::hook",
    Security => "authtel::security",
    Reset => "authtel::reset",
    Authorization => "authtel::authorization",
    Pipeline => "authtel::pipeline",
    Custom => "authtel::app",
    _ => "authtel::app",
}

/// A span id as 16 lowercase hex digits on the stack (as `SpanId`'s `Display`), so the
/// subscriber records one `&str` instead of formatting a padded integer char by char.
struct HexId([u8; 16]);

impl HexId {
    fn new(id: SpanId) -> HexId {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let v = id.get();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
        }
        HexId(out)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The extra fields rendered once, so the subscriber records one `&str`: on the stack when
/// they fit, else in a `String` (long values only).
// Large on purpose: it lives on the stack for one call; boxing would allocate per event.
#[allow(clippy::large_enum_variant)]
enum ExtraText {
    Inline { buf: [u8; EXTRA_INLINE], len: usize },
    Long(String),
}

const EXTRA_INLINE: usize = 256;

impl fmt::Write for ExtraText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self {
            ExtraText::Inline { buf, len } => {
                let end = *len + s.len();
                if let Some(slot) = buf.get_mut(*len..end) {
                    slot.copy_from_slice(s.as_bytes());
                    *len = end;
                } else {
                    let mut long = String::with_capacity(end * 2);
                    long.push_str(std::str::from_utf8(&buf[..*len]).map_err(|_| fmt::Error)?);
                    long.push_str(s);
                    *self = ExtraText::Long(long);
                }
            }
            ExtraText::Long(long) => long.push_str(s),
        }
        Ok(())
    }
}

impl ExtraText {
    fn render(fields: ExtraFields<'_, '_>) -> Self {
        let mut text = ExtraText::Inline {
            buf: [0u8; EXTRA_INLINE],
            len: 0,
        };
        // Writing to our own buffer cannot fail.
        let _ = fields.write_pairs(&mut text);
        text
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole `str`s were copied in, so the bytes are valid UTF-8.
            ExtraText::Inline { buf, len } => std::str::from_utf8(&buf[..*len]).unwrap_or_default(),
            ExtraText::Long(long) => long,
        }
    }
}

/// Milliseconds from whole nanoseconds: one rounding, so `2243ns` prints as `0.002243`.
fn duration_ms(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1_000_000.0
}

/// The extra fields as `key=value` pairs separated by spaces.
struct ExtraFields<'m, 'a>(&'m Metadata<'a>);

impl<'m, 'a> ExtraFields<'m, 'a> {
    fn of(metadata: &'m Metadata<'a>) -> Option<Self> {
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

    use super::*;

    #[test]
    fn every_category_logs_under_its_documented_target() {
        for category in Category::LIBRARY.into_iter().chain([Category::Custom]) {
            assert_eq!(
                target_literal(category),
                category.log_target(),
                "{category}"
            );
        }
    }

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
        let rendered = ExtraText::render(fields);
        assert!(
            matches!(rendered, ExtraText::Long(_)),
            "longer than the inline buffer"
        );
        assert_eq!(rendered.as_str(), format!("first={long} second={long}"));
        let short = Metadata::new()
            .with_extra("tenant", "acme")
            .with_extra("note", "two words")
            .with_extra("retries", 2u32);
        let rendered = ExtraText::render(ExtraFields::of(&short).expect("extras"));
        assert!(matches!(rendered, ExtraText::Inline { .. }));
        assert_eq!(
            rendered.as_str(),
            "tenant=acme note=\"two words\" retries=2"
        );
    }

    #[test]
    fn levels_round_trip() {
        for level in [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ] {
            assert_eq!(Level::from(LogLevel::from(level)), level);
        }
    }
}
