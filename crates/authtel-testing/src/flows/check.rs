//! Comparing what a flow produced with what it should have.

use std::collections::BTreeSet;
use std::fmt;

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue::EventKind;
use authtel_core::outcome::Outcome;

use super::{Coverage, Expect, Field, Flow};
use crate::CapturedEvent;

/// What one run of a flow produced: the events captured while it ran and the audit records
/// it committed.
///
/// ```
/// use authtel_testing::flows::Observation;
/// let seen = Observation::new(Vec::new()).with_audit(Vec::new());
/// assert!(seen.events().is_empty() && seen.audit().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    events: Vec<CapturedEvent>,
    audit: Vec<AuditEvent>,
}

impl Observation {
    /// The events captured during the flow (an audit trail is not checked unless added).
    pub fn new(events: Vec<CapturedEvent>) -> Observation {
        Observation {
            events,
            audit: Vec::new(),
        }
    }

    /// Adds the audit records the flow committed (read back from the store).
    pub fn with_audit(mut self, audit: Vec<AuditEvent>) -> Observation {
        self.audit = audit;
        self
    }

    /// The captured events.
    pub fn events(&self) -> &[CapturedEvent] {
        &self.events
    }

    /// The committed audit records.
    pub fn audit(&self) -> &[AuditEvent] {
        &self.audit
    }
}

/// One thing wrong with a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// An expected event was emitted `emitted` times instead of once; `other_outcomes` lists
    /// the outcomes it was emitted with instead.
    Count {
        /// The event's name.
        event: &'static str,
        /// The outcome required, if any.
        outcome: Option<Outcome>,
        /// How many matching events there were.
        emitted: usize,
        /// Outcomes of same-named events that did not match.
        other_outcomes: Vec<Outcome>,
    },
    /// An expected event lacks a required field.
    MissingField {
        /// The event's name.
        event: &'static str,
        /// The missing metadata key.
        field: &'static str,
    },
    /// An expected audited event has `found` committed records instead of one.
    AuditCount {
        /// The event's name (the record's action).
        event: &'static str,
        /// How many matching records there were.
        found: usize,
    },
    /// An expected event's audit record lacks a required field.
    AuditMissingField {
        /// The record's action.
        event: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A rolled-back flow left committed audit records.
    AuditAfterRollback {
        /// Their actions.
        actions: Vec<String>,
    },
    /// A strict flow emitted an event it did not expect.
    Unexpected {
        /// The event's name.
        event: &'static str,
        /// How many times.
        count: usize,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = |o: &Option<Outcome>| o.map(|o| format!(" ({o})")).unwrap_or_default();
        match self {
            Problem::Count {
                event,
                outcome: o,
                emitted,
                other_outcomes,
            } => {
                write!(
                    f,
                    "{event}{} expected exactly once, emitted {emitted} times",
                    outcome(o)
                )?;
                if !other_outcomes.is_empty() {
                    let list: Vec<String> = other_outcomes.iter().map(Outcome::to_string).collect();
                    write!(f, " (emitted with outcome {} instead)", list.join(", "))?;
                }
                Ok(())
            }
            Problem::MissingField { event, field } => write!(f, "{event} is missing field {field}"),
            Problem::AuditCount { event, found } => {
                write!(
                    f,
                    "{event} expected one committed audit record, found {found}"
                )
            }
            Problem::AuditMissingField { event, field } => {
                write!(f, "the audit record of {event} is missing field {field}")
            }
            Problem::AuditAfterRollback { actions } => write!(
                f,
                "the transaction rolled back but left {} audit record(s): {}",
                actions.len(),
                actions.join(", ")
            ),
            Problem::Unexpected { event, count } => {
                write!(f, "{event} was not expected, emitted {count} times")
            }
        }
    }
}

/// Everything wrong with one flow. Its message names the flow and each problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFailure {
    /// The flow's name.
    pub flow: String,
    /// What is wrong, in the order found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for FlowFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow {:?}: ", self.flow)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FlowFailure {}

/// Checks flows one at a time and remembers every event seen, for [`FlowSuite::coverage`].
///
/// ```
/// use authtel_core::{catalogue, Outcome};
/// use authtel_testing::flows::{Expect, Flow, FlowSuite, Observation};
/// let mut suite = FlowSuite::new();
/// let flow = Flow::new("logout").expect(Expect::stop(&catalogue::AUTH_LOGOUT, Outcome::Success));
/// let err = suite.check(&flow, &Observation::default()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"flow "logout": auth.logout.stop (success) expected exactly once, emitted 0 times"#
/// );
/// assert_eq!(suite.flows_checked(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FlowSuite {
    seen: BTreeSet<&'static str>,
    checked: usize,
}

impl FlowSuite {
    /// An empty suite.
    pub fn new() -> FlowSuite {
        FlowSuite::default()
    }

    /// How many flows were checked, passed or not.
    pub fn flows_checked(&self) -> usize {
        self.checked
    }

    /// Checks one run of `flow`. Every event observed counts for coverage, also when the
    /// flow fails.
    pub fn check(&mut self, flow: &Flow, seen: &Observation) -> Result<(), FlowFailure> {
        self.checked += 1;
        self.seen.extend(seen.events.iter().map(|e| e.name));
        let mut problems = Vec::new();
        for expect in flow.expected() {
            check_event(flow, expect, seen, &mut problems);
        }
        if flow.is_rolled_back() && !seen.audit.is_empty() {
            problems.push(Problem::AuditAfterRollback {
                actions: seen.audit.iter().map(|a| a.action().to_owned()).collect(),
            });
        }
        if flow.is_strict() {
            let mut unexpected: Vec<(&'static str, usize)> = Vec::new();
            for e in &seen.events {
                let expected = flow.expected().iter().any(|x| x.event.name() == e.name);
                if e.kind == EventKind::SpanStart || expected {
                    continue;
                }
                match unexpected.iter_mut().find(|(n, _)| *n == e.name) {
                    Some((_, count)) => *count += 1,
                    None => unexpected.push((e.name, 1)),
                }
            }
            problems.extend(
                unexpected
                    .into_iter()
                    .map(|(event, count)| Problem::Unexpected { event, count }),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FlowFailure {
                flow: flow.name().to_owned(),
                problems,
            })
        }
    }

    /// The catalogue events (span stops and signals) this suite's runs emitted and never
    /// emitted.
    pub fn coverage(&self) -> Coverage {
        Coverage::from_seen(&self.seen)
    }
}

fn check_event(flow: &Flow, expect: &Expect, seen: &Observation, problems: &mut Vec<Problem>) {
    let name = expect.event.name();
    let same_name: Vec<&CapturedEvent> = seen.events.iter().filter(|e| e.name == name).collect();
    let matching: Vec<&CapturedEvent> = same_name
        .iter()
        .copied()
        .filter(|e| expect.outcome.is_none_or(|o| e.outcome == Some(o)))
        .collect();
    let required = flow.required(expect);
    if matching.len() != 1 {
        let mut other_outcomes: Vec<Outcome> = same_name
            .iter()
            .filter(|e| !matching.contains(e))
            .filter_map(|e| e.outcome)
            .collect();
        other_outcomes.dedup();
        problems.push(Problem::Count {
            event: name,
            outcome: expect.outcome,
            emitted: matching.len(),
            other_outcomes,
        });
    }
    if let Some(event) = matching.first() {
        for field in &required {
            if event.field(field.key()).is_none_or(str::is_empty) {
                problems.push(Problem::MissingField {
                    event: name,
                    field: field.key(),
                });
            }
        }
    }
    if !expect.audited {
        return;
    }
    let records: Vec<&AuditEvent> = seen
        .audit
        .iter()
        .filter(|a| a.action() == name && expect.outcome.is_none_or(|o| a.outcome() == o))
        .collect();
    if records.len() != 1 {
        problems.push(Problem::AuditCount {
            event: name,
            found: records.len(),
        });
    }
    if let Some(record) = records.first() {
        for field in &required {
            if !audit_has(record, *field) {
                problems.push(Problem::AuditMissingField {
                    event: name,
                    field: field.key(),
                });
            }
        }
    }
}

/// Whether an audit record carries `field` (where `AuditEvent::from_record` puts it).
fn audit_has(record: &AuditEvent, field: Field) -> bool {
    let text = |v: Option<&str>| v.is_some_and(|s| !s.is_empty());
    match field {
        Field::UserId | Field::Caller => record.actor().is_some_and(|a| !a.id.is_empty()),
        Field::SessionId => text(record.session_id()),
        Field::ClientIp => record.client_ip().is_some(),
        Field::UserAgent => text(record.user_agent()),
        Field::Reason => text(record.reason()),
        Field::Resource => text(record.resource()),
        Field::Operation => text(record.operation()),
        Field::Method => record.metadata().contains_key("method"),
        Field::Extra(key) => record.metadata().contains_key(key),
    }
}
