//! The handler: decides whether and at which level an event is logged.

use authtel_core::catalogue::{EventKind, Severity};
use authtel_core::registry::{AttachError, Handler, Registry, Selection};
use authtel_core::telemetry::EventRecord;
use tracing::Level;

use crate::emit::{LogLevel, emit};
use crate::{DEFAULT_LOGGER_ID, LoggerOptions};

/// The default logger as a [`Handler`]. [`Logger::build`] makes an unattached one, for a
/// scoped [`Registry`] in tests or for an application that attaches it itself.
///
/// ```
/// use authtel_log::{Logger, LoggerOptions, DEFAULT_LOGGER_ID};
/// use authtel_core::{catalogue, telemetry, metadata::Metadata, registry::Registry};
///
/// let registry = Registry::new();
/// Logger::build(LoggerOptions::new()).attach_to(&registry).unwrap();
/// assert_eq!(registry.handlers()[0].id, DEFAULT_LOGGER_ID);
/// let _scope = registry.enter();
/// // Logged at INFO under the target `authtel::auth` (if a subscriber listens).
/// let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || Ok::<_, ()>(()));
/// ```
#[derive(Clone, Debug)]
pub struct Logger {
    routine_level: LogLevel,
    selection: Selection,
}

impl Logger {
    /// Builds the logger from its options, without attaching it.
    pub fn build(options: LoggerOptions) -> Logger {
        Logger {
            routine_level: LogLevel::from(options.level()),
            selection: options.selection(),
        }
    }

    /// The events this logger wants; pass it to
    /// [`Registry::attach`](authtel_core::registry::Registry::attach).
    pub fn selection(&self) -> Selection {
        self.selection.clone()
    }

    /// The level an event logs at, or `None` when it is not logged (span starts,
    /// unselected categories).
    ///
    /// ```
    /// use authtel_log::{Logger, LoggerOptions};
    /// use authtel_core::catalogue::{AUTH_LOGIN, SECURITY_LOCKOUT};
    /// use tracing::Level;
    /// let logger = Logger::build(LoggerOptions::new().with_level(Level::DEBUG));
    /// assert_eq!(logger.level_for(AUTH_LOGIN.start()), None);
    /// assert_eq!(logger.level_for(AUTH_LOGIN.stop()), Some(Level::DEBUG));
    /// assert_eq!(logger.level_for(AUTH_LOGIN.exception()), Some(Level::ERROR));
    /// assert_eq!(logger.level_for(&SECURITY_LOCKOUT), Some(Level::WARN));
    /// ```
    pub fn level_for(&self, event: &authtel_core::Event) -> Option<Level> {
        self.log_level(event).map(Level::from)
    }

    /// Attaches this logger to `registry` under [`DEFAULT_LOGGER_ID`].
    pub fn attach_to(self, registry: &Registry) -> Result<(), AttachError> {
        let selection = self.selection();
        registry.attach(DEFAULT_LOGGER_ID, selection, self)
    }

    fn log_level(&self, event: &authtel_core::Event) -> Option<LogLevel> {
        // Checked here too, so the filter holds even when attached with another selection.
        if !self.selection.matches(event) {
            return None;
        }
        match event.kind() {
            EventKind::SpanStart => None,
            EventKind::SpanException => Some(LogLevel::Error),
            EventKind::SpanStop | EventKind::Signal => Some(match event.severity() {
                Severity::Error => LogLevel::Error,
                Severity::Warn => LogLevel::Warn,
                Severity::Info => self.routine_level,
            }),
        }
    }
}

impl Handler for Logger {
    fn handle(&self, record: &EventRecord<'_>) {
        if let Some(level) = self.log_level(record.event) {
            emit(level, record);
        }
    }
}
