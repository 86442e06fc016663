//! What the default logger logs: its level and which categories.

use authtel_core::catalogue::Category;
use authtel_core::registry::Selection;
use tracing::Level;

/// Options of the default logger; a builder (`with_*`), consumed by [`Logger::build`]
/// (unattached) or [`attach_default_logger`](crate::attach_default_logger).
///
/// [`Logger::build`]: crate::Logger::build
///
/// ```
/// use authtel_log::LoggerOptions;
/// use authtel_core::catalogue::Category;
/// use tracing::Level;
///
/// let options = LoggerOptions::new()
///     .with_level(Level::DEBUG)
///     .with_categories([Category::Auth, Category::Security]);
/// assert_eq!(options.level(), Level::DEBUG);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerOptions {
    level: Level,
    categories: Option<Vec<Category>>,
}

impl Default for LoggerOptions {
    fn default() -> Self {
        LoggerOptions::new()
    }
}

impl LoggerOptions {
    /// Level `INFO`, every category.
    pub fn new() -> LoggerOptions {
        LoggerOptions {
            level: Level::INFO,
            categories: None,
        }
    }

    /// The level of routine events (span stops, info signals). Warn signals still log at
    /// `WARN` and exceptions at `ERROR`, whatever this is.
    #[must_use]
    pub fn with_level(mut self, level: Level) -> LoggerOptions {
        self.level = level;
        self
    }

    /// Logs only events of these categories (an empty list logs nothing). Calling it again
    /// replaces the list.
    ///
    /// ```
    /// use authtel_log::LoggerOptions;
    /// use authtel_core::catalogue::{Category, SECURITY_LOCKOUT, AUTH_LOGIN};
    /// let options = LoggerOptions::new().with_categories([Category::Security]);
    /// assert!(options.selection().matches(&SECURITY_LOCKOUT));
    /// assert!(!options.selection().matches(AUTH_LOGIN.stop()));
    /// ```
    #[must_use]
    pub fn with_categories(mut self, categories: impl IntoIterator<Item = Category>) -> Self {
        let mut list: Vec<Category> = categories.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        self.categories = Some(list);
        self
    }

    /// The level of routine events.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The events these options select, as the registry understands them.
    pub fn selection(&self) -> Selection {
        match &self.categories {
            None => Selection::All,
            Some(list) => Selection::Categories(list.clone()),
        }
    }
}
