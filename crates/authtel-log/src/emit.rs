//! Turning a record into one `tracing` event.
//!
//! `tracing` callsites are static: target, level and field names are fixed at compile
//! time. So each (category target, level) pair gets its own `tracing::event!` call, chosen
//! by two `match`es; the macros below write those calls once.

use std::fmt;

use authtel_core::catalogue::Category;
use authtel_core::metadata::{Metadata, Value};
use authtel_core::telemetry::EventRecord;
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
macro_rules! event_at {
    ($target:literal, $level:expr, $r:ident) => {
        tracing::event!(
            target: $target,
            $level,
            event = $r.event.name(),
            outcome = $r.outcome.map(|o| o.as_str()),
            duration_ms = $r.measurements.duration.map(duration_ms),
            span_id = tracing::field::display($r.context.span_id),
            parent_id = $r.context.parent_id.map(tracing::field::display),
            root_id = tracing::field::display($r.context.root_id),
            error_type = $r.error_type,
            exception = $r.exception.map(|e| e.kind.as_str()),
            exception_reason = $r.exception.map(|e| e.reason),
            count = $r.measurements.count,
            user_id = $r.metadata.get_user_id(),
            session_id = $r.metadata.get_session_id(),
            client_ip = $r.metadata.get_client_ip().map(tracing::field::display),
            user_agent = $r.metadata.get_user_agent(),
            provider = $r.metadata.get_provider(),
            method = $r.metadata.get_method(),
            reason = $r.metadata.get_reason(),
            operation = $r.metadata.get_operation(),
            caller = $r.metadata.get_caller(),
            resource = $r.metadata.get_resource(),
            rate_limit_key = $r.metadata.get_rate_limit_key(),
            attempts_remaining = $r.metadata.get_attempts_remaining(),
            admin = $r.metadata.get_admin(),
            extra = ExtraFields::of($r.metadata).map(tracing::field::display),
        )
    };
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

/// Milliseconds from whole nanoseconds: one rounding, so `2243ns` prints as `0.002243`.
fn duration_ms(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1_000_000.0
}

/// The extra fields as `key=value` pairs separated by spaces, written straight into the
/// subscriber's buffer (no intermediate `String`).
struct ExtraFields<'m, 'a>(&'m Metadata<'a>);

impl<'m, 'a> ExtraFields<'m, 'a> {
    fn of(metadata: &'m Metadata<'a>) -> Option<Self> {
        metadata
            .extra()
            .next()
            .is_some()
            .then_some(ExtraFields(metadata))
    }
}

impl fmt::Display for ExtraFields<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.0.extra().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match value {
                // Quote text that would make the pairs ambiguous.
                Value::Str(s) if s.is_empty() || s.contains([' ', '=', '"']) => {
                    write!(f, "{key}={s:?}")?
                }
                other => write!(f, "{key}={other}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
    fn durations_print_without_float_noise() {
        let ms = duration_ms(std::time::Duration::from_nanos(2_243));
        assert_eq!(ms.to_string(), "0.002243");
        assert_eq!(duration_ms(std::time::Duration::from_millis(1500)), 1500.0);
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
