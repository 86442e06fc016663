//! Signals a capture saw, as comparable tuples.

use std::collections::{BTreeMap, BTreeSet};

use authtel_testing::CapturedEvent;

/// A signal: event, rule (reason), key kind, key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Sig {
    pub(crate) event: String,
    pub(crate) rule: String,
    pub(crate) key_kind: String,
    pub(crate) key: String,
}

impl Sig {
    pub(crate) fn new(event: &str, rule: &str, key_kind: &str, key: &str) -> Sig {
        Sig {
            event: event.into(),
            rule: rule.into(),
            key_kind: key_kind.into(),
            key: key.into(),
        }
    }

    pub(crate) fn from_event(e: &CapturedEvent) -> Sig {
        let f = |k: &str| e.field(k).unwrap_or("-").to_owned();
        let kind = f("key_kind");
        let key = match kind.as_str() {
            "identifier" => f("user_id"),
            "ip" => f("client_ip"),
            "ip_identifier" => format!("{}|{}", f("client_ip"), f("user_id")),
            "ip_prefix" | "global" => f("rate_limit_key"),
            "session" => f("session_id"),
            other => panic!("unknown key kind {other:?} in {e:?}"),
        };
        Sig {
            event: e.name.to_owned(),
            rule: f("reason"),
            key_kind: kind,
            key,
        }
    }
}

/// The detector signals among `events`, sorted.
pub(crate) fn signals(events: &[CapturedEvent]) -> Vec<Sig> {
    let names: BTreeSet<&str> = authtel_detect::signal_events()
        .iter()
        .map(|e| e.name())
        .collect();
    let mut out: Vec<Sig> = events
        .iter()
        .filter(|e| names.contains(e.name) && e.field("detector").is_some())
        .map(Sig::from_event)
        .collect();
    out.sort();
    out
}

/// How many signals of each (event, rule, key kind).
pub(crate) fn tally(signals: &[Sig]) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for s in signals {
        *m.entry((s.event.clone(), s.rule.clone(), s.key_kind.clone()))
            .or_insert(0) += 1;
    }
    m
}
