//! Which catalogue events a test run never emitted.

use std::collections::BTreeSet;
use std::fmt;

use authtel_core::catalogue::{self, EventKind};

/// The catalogue's span stops and signals, split into those a run emitted and those it
/// never did (span starts and exceptions are left out: every stop implies its start, and
/// exceptions are not a flow's normal path).
///
/// ```
/// use authtel_testing::flows::FlowSuite;
/// let coverage = FlowSuite::new().coverage();
/// assert!(coverage.emitted().is_empty());
/// assert!(coverage.never_emitted().contains(&"auth.login.stop"));
/// assert!(coverage.to_string().starts_with("catalogue coverage: 0 of "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    emitted: Vec<&'static str>,
    never: Vec<&'static str>,
}

impl Coverage {
    pub(crate) fn from_seen(seen: &BTreeSet<&'static str>) -> Coverage {
        let (mut emitted, mut never) = (Vec::new(), Vec::new());
        for event in catalogue::all() {
            if matches!(
                event.kind(),
                EventKind::SpanStart | EventKind::SpanException
            ) {
                continue;
            }
            if seen.contains(event.name()) {
                emitted.push(event.name());
            } else {
                never.push(event.name());
            }
        }
        Coverage { emitted, never }
    }

    /// Catalogue events the run emitted, in catalogue order.
    pub fn emitted(&self) -> &[&'static str] {
        &self.emitted
    }

    /// Catalogue events the run never emitted, in catalogue order.
    pub fn never_emitted(&self) -> &[&'static str] {
        &self.never
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.emitted.len() + self.never.len();
        writeln!(
            f,
            "catalogue coverage: {} of {total} events emitted",
            self.emitted.len()
        )?;
        writeln!(f, "never emitted:")?;
        for name in &self.never {
            writeln!(f, "  {name}")?;
        }
        Ok(())
    }
}
