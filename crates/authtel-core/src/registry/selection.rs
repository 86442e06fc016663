//! Which events a handler receives.

use crate::catalogue::{Category, Event, SpanDef};

/// Which events a handler receives.
///
/// ```
/// use authtel_core::catalogue::{self, Category, AUTH_LOGIN, SECURITY_LOCKOUT};
/// use authtel_core::registry::Selection;
/// let a = Selection::from(catalogue::mfa_events());
/// let b = Selection::from(&AUTH_LOGIN);          // a span's three phases
/// let c = Selection::from(&SECURITY_LOCKOUT);    // one event
/// let d = Selection::from(Category::Security);   // a whole category, custom events included
/// assert!(d.matches(&SECURITY_LOCKOUT));
/// ```
#[derive(Clone, Debug)]
pub enum Selection {
    /// Every event, library and application.
    All,
    /// These events.
    Events(Vec<&'static Event>),
    /// Every event of these categories.
    Categories(Vec<Category>),
}

impl Selection {
    /// Whether `event` is selected.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Selection::All => true,
            Selection::Events(list) => list.iter().any(|e| std::ptr::eq(*e, event)),
            Selection::Categories(cats) => cats.contains(&event.category()),
        }
    }
}

impl From<&'static [&'static Event]> for Selection {
    fn from(events: &'static [&'static Event]) -> Self {
        Selection::Events(events.to_vec())
    }
}
impl From<Vec<&'static Event>> for Selection {
    fn from(events: Vec<&'static Event>) -> Self {
        Selection::Events(events)
    }
}
impl From<&'static Event> for Selection {
    fn from(event: &'static Event) -> Self {
        Selection::Events(vec![event])
    }
}
impl From<&'static SpanDef> for Selection {
    fn from(span: &'static SpanDef) -> Self {
        Selection::Events(span.events().to_vec())
    }
}
impl From<Category> for Selection {
    fn from(category: Category) -> Self {
        Selection::Categories(vec![category])
    }
}
