//! Turning a record into one `tracing` event.
//!
//! `tracing` callsites are static: target, level and field names are fixed at compile
//! time. So each (category target, level) pair has its own static callsite, chosen by two
//! `match`es, all with the same [`FIELD_NAMES`]. A line carries only the fields the record
//! has: the value set handed to the subscriber lists the present ones alone, so the
//! formatter visits exactly those (as it visits the fields of a `tracing::info!` that names
//! them), never the absent ones.
//!
//! This is what `tracing::event!` expands to (the same statics, the same level, interest and
//! `enabled` checks, then `Event::dispatch`), written out because the macro's value set
//! always holds every field of the callsite. One difference: with `tracing`'s `log`
//! feature, the macro also forwards to `log` when no subscriber is set; this logger does
//! not (authtel's workspace does not enable that feature).

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use authtel_core::catalogue::Category;
use authtel_core::metadata::{FactorsText, IpText};
use authtel_core::telemetry::EventRecord;
use tracing::callsite::{Callsite as _, DefaultCallsite};
use tracing::field::{Field, Value};
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::{Event, Level, Metadata};

use crate::text::{ExtraFields, ExtraText, HexId, duration_ms};

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

/// Every field a line may carry, in the order they are written.
const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "event",
    "outcome",
    "duration_ms",
    "span_id",
    "parent_id",
    "root_id",
    "trace_id",
    "error_type",
    "exception",
    "exception_reason",
    "count",
    "user_id",
    "session_id",
    "client_ip",
    "user_agent",
    "provider",
    "method",
    "reason",
    "operation",
    "caller",
    "resource",
    "rate_limit_key",
    "attempts_remaining",
    "admin",
    "tenant_id",
    "client_id",
    "grant_type",
    "aal",
    "is_mfa",
    "factors",
    "extra",
];

const FIELD_COUNT: usize = 31;

/// One (target, level) callsite: `tracing`'s static callsite and its fields, looked up
/// once (a `Field` is only made by its `FieldSet`).
struct Callsite {
    site: &'static DefaultCallsite,
    fields: &'static OnceLock<[Field; FIELD_COUNT]>,
}

impl Callsite {
    /// Whether a subscriber wants this callsite's events, as `tracing::event!` decides it.
    #[inline]
    fn enabled(&self, meta: &'static Metadata<'static>) -> bool {
        let level = *meta.level();
        if level > STATIC_MAX_LEVEL || level > LevelFilter::current() {
            return false;
        }
        let interest = self.site.interest();
        !interest.is_never()
            && (interest.is_always() || tracing::dispatcher::get_default(|d| d.enabled(meta)))
    }

    fn fields(&self, meta: &'static Metadata<'static>) -> &'static [Field; FIELD_COUNT] {
        self.fields.get_or_init(|| {
            let mut fields = meta.fields().iter();
            std::array::from_fn(|_| fields.next().expect("FIELD_COUNT names"))
        })
    }
}

/// The static callsite for one target and level (what `tracing::callsite2!` builds).
macro_rules! callsite_at {
    ($target:literal, $level:expr) => {{
        static META: Metadata<'static> = Metadata::new(
            concat!("event ", file!(), ":", line!()),
            $target,
            $level,
            Some(file!()),
            Some(line!()),
            Some(module_path!()),
            tracing::field::FieldSet::new(&FIELD_NAMES, tracing::callsite::Identifier(&SITE)),
            tracing::metadata::Kind::EVENT,
        );
        static SITE: DefaultCallsite = DefaultCallsite::new(&META);
        static FIELDS: OnceLock<[Field; FIELD_COUNT]> = OnceLock::new();
        static CALLSITE: Callsite = Callsite {
            site: &SITE,
            fields: &FIELDS,
        };
        &CALLSITE
    }};
}

/// Picks the level's callsite for one target.
macro_rules! callsite_for_target {
    ($target:literal, $level:expr) => {
        match $level {
            LogLevel::Trace => callsite_at!($target, Level::TRACE),
            LogLevel::Debug => callsite_at!($target, Level::DEBUG),
            LogLevel::Info => callsite_at!($target, Level::INFO),
            LogLevel::Warn => callsite_at!($target, Level::WARN),
            LogLevel::Error => callsite_at!($target, Level::ERROR),
        }
    };
}

/// Category to target literal, the one table both `emit` and the tests read.
macro_rules! targets {
    ($( $category:ident => $target:literal, )* _ => $fallback:literal $(,)?) => {
        /// The callsite of `category`'s target at `level`.
        fn callsite(category: Category, level: LogLevel) -> &'static Callsite {
            match category {
                $( Category::$category => callsite_for_target!($target, level), )*
                // Categories added to core later log as application events until listed here.
                _ => callsite_for_target!($fallback, level),
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

/// Writes `record` as a `tracing` event at `level` under its category's target, if a
/// subscriber wants it; values are computed only then.
pub(crate) fn emit(level: LogLevel, record: &EventRecord<'_>) {
    let callsite = callsite(record.event.category(), level);
    let meta = callsite.site.metadata();
    if callsite.enabled(meta) {
        write(meta, callsite.fields(meta), record);
    }
}

/// One field and its value, as `tracing`'s value sets hold them.
type Entry<'v> = (&'v Field, Option<&'v (dyn Value + 'v)>);

/// The present fields of one line, in [`FIELD_NAMES`] order.
struct Line<'v> {
    fields: &'v [Field; FIELD_COUNT],
    entries: [MaybeUninit<Entry<'v>>; FIELD_COUNT],
    len: usize,
}

impl<'v> Line<'v> {
    fn new(fields: &'v [Field; FIELD_COUNT]) -> Self {
        Line {
            fields,
            entries: [const { MaybeUninit::uninit() }; FIELD_COUNT],
            len: 0,
        }
    }

    /// Adds field `index` (of [`FIELD_NAMES`]) when it has a value. Called at most once per
    /// field, in increasing order, so there is always room.
    #[inline(always)]
    fn put(&mut self, index: usize, value: Option<&'v (dyn Value + 'v)>) {
        if let (Some(value), Some(slot)) = (value, self.entries.get_mut(self.len)) {
            slot.write((&self.fields[index], Some(value)));
            self.len += 1;
        }
    }

    fn entries(&self) -> &[Entry<'v>] {
        // SAFETY: `put` wrote the first `len` entries (and never more than the array holds);
        // `MaybeUninit<T>` has `T`'s layout.
        unsafe { std::slice::from_raw_parts(self.entries.as_ptr().cast::<Entry<'v>>(), self.len) }
    }
}

/// `Some` value as a field value.
#[inline(always)]
fn some<T: Value>(value: &Option<T>) -> Option<&(dyn Value + '_)> {
    value.as_ref().map(|v| v as &dyn Value)
}

/// Computes the record's fields and hands the present ones to the subscriber.
#[inline(never)]
fn write(meta: &'static Metadata<'static>, fields: &[Field; FIELD_COUNT], r: &EventRecord<'_>) {
    let m = r.metadata;
    let event = r.event.name();
    let outcome = r.outcome.map(|o| o.as_str());
    let duration = r.measurements.duration.map(duration_ms);
    let span_id = HexId::new(r.context.span_id);
    let span_id = span_id.as_str();
    let parent_id = r.context.parent_id.map(HexId::new);
    let parent_id = parent_id.as_ref().map(HexId::as_str);
    let root_id = HexId::new(r.context.root_id);
    let root_id = root_id.as_str();
    let trace_id = m.get_trace_parent().map(|t| t.trace_id_hex());
    let trace_id = trace_id.as_ref().map(|t| t.as_str());
    let exception = r.exception.map(|e| e.kind.as_str());
    let exception_reason = r.exception.and_then(|e| e.reason);
    let user_id = m.get_user_id();
    let session_id = m.get_session_id();
    let client_ip = m.get_client_ip().map(IpText::new);
    let client_ip = client_ip.as_ref().map(IpText::as_str);
    let user_agent = m.get_user_agent();
    let provider = m.get_provider();
    let method = m.get_method();
    let reason = m.get_reason();
    let operation = m.get_operation();
    let caller = m.get_caller();
    let resource = m.get_resource();
    let rate_limit_key = m.get_rate_limit_key();
    let attempts_remaining = m.get_attempts_remaining();
    let admin = m.get_admin();
    let tenant_id = m.get_tenant_id();
    let client_id = m.get_client_id();
    let grant_type = m.get_grant_type();
    let aal = m.get_aal();
    let is_mfa = m.get_is_mfa();
    let factors = m.get_factors().map(|f| f.text());
    let factors = factors.as_ref().map(FactorsText::as_str);
    let mut extra_text = ExtraText::new();
    let extra = match ExtraFields::of(m) {
        Some(fields) => {
            extra_text.render(fields);
            Some(extra_text.as_str())
        }
        None => None,
    };

    let mut line = Line::new(fields);
    line.put(0, Some(&event));
    line.put(1, some(&outcome));
    line.put(2, some(&duration));
    line.put(3, Some(&span_id));
    line.put(4, some(&parent_id));
    line.put(5, Some(&root_id));
    line.put(6, some(&trace_id));
    line.put(7, some(&r.error_type));
    line.put(8, some(&exception));
    line.put(9, some(&exception_reason));
    line.put(10, some(&r.measurements.count));
    line.put(11, some(&user_id));
    line.put(12, some(&session_id));
    line.put(13, some(&client_ip));
    line.put(14, some(&user_agent));
    line.put(15, some(&provider));
    line.put(16, some(&method));
    line.put(17, some(&reason));
    line.put(18, some(&operation));
    line.put(19, some(&caller));
    line.put(20, some(&resource));
    line.put(21, some(&rate_limit_key));
    line.put(22, some(&attempts_remaining));
    line.put(23, some(&admin));
    line.put(24, some(&tenant_id));
    line.put(25, some(&client_id));
    line.put(26, some(&grant_type));
    line.put(27, some(&aal));
    line.put(28, some(&is_mfa));
    line.put(29, some(&factors));
    line.put(30, some(&extra));
    dispatch(meta, line.entries());
}

/// `Event::dispatch` with a value set of exactly the present entries (`tracing` builds
/// value sets from arrays, so each length has its own arm).
fn dispatch(meta: &'static Metadata<'static>, entries: &[Entry<'_>]) {
    macro_rules! by_len {
        ($($n:literal)*) => {
            match entries.len() {
                $( $n => dispatch_n::<$n>(meta, entries), )*
                _ => {}
            }
        };
    }
    by_len!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
}

#[inline(always)]
fn dispatch_n<const N: usize>(meta: &'static Metadata<'static>, entries: &[Entry<'_>]) {
    if let Ok(values) = <&[Entry<'_>; N]>::try_from(entries) {
        Event::dispatch(meta, &meta.fields().value_set(values));
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
