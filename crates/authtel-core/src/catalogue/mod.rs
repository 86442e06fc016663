//! The typed event catalogue.
//!
//! Every event authtel knows is a `static` [`Event`] descriptor: a stable dotted name
//! (`auth.login.stop`), its segments (`["auth", "login", "stop"]`), a [`Category`] and an
//! [`EventKind`]. Spans are [`SpanDef`]s that own their three phase events. Handlers are
//! attached to descriptors, never to strings, so a typo is a compile error and the hot path
//! indexes a table by a dense id instead of hashing a name.
//!
//! Names are API: once published they never change. Applications declare their own events
//! with the same types ([`Event::signal`], [`SpanDef::new`] in a `static`, or
//! [`Event::declare`] at runtime); the library's category prefixes are reserved.

mod event;
mod library;
mod names;
#[cfg(test)]
mod tests;

pub(crate) use event::events_by_id;
pub use event::{Category, Event, EventKind, Severity, SpanDef};
pub use library::*;
pub use names::{
    MAX_NAME_LEN, NameError, RESERVED_PREFIXES, validate_application_name, validate_name,
};
