//! Core's secret-policy counters reach the exposition, so a spike of redactions (code that
//! started passing secrets) is visible on a dashboard. Counted once per record: a record
//! read by several handlers adds its redactions once.

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::telemetry;
use authtel_prometheus::PrometheusSink;

fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in:\n{text}"))
}

#[test]
fn redactions_and_refusals_are_exported_once_per_record() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("metrics", Selection::All, sink.handler())
        .unwrap();
    // Seven more readers of every field: the count must not multiply by them.
    for i in 0..7 {
        let id = format!("reader-{i}");
        registry
            .attach(
                &id,
                Selection::All,
                handler_fn(|r| r.metadata.for_each_field(|_, _| {})),
            )
            .unwrap();
    }
    let _scope = registry.enter();
    let before = sink.render();
    let (redactions, refusals) = (
        value(&before, "authtel_policy_redactions_total"),
        value(&before, "authtel_policy_refusals_total"),
    );
    telemetry::event(
        &catalogue::SECURITY_SUSPICIOUS_LOGIN,
        Default::default(),
        Metadata::new()
            .user_id("alice@example.com")
            .reason("password=hunter2")
            .user_agent("Bearer 8fK2xQ9aB7")
            .with_extra("pw", "x")
            .with_extra("pin", 1234)
            .with_extra("note", "totp 123456 was wrong"),
    );
    let after = sink.render();
    // Other tests of this binary do not exist, so the process counters moved by this
    // record alone: 5 redactions and 1 refusal, once, with 8 handlers reading it.
    assert_eq!(
        value(&after, "authtel_policy_redactions_total"),
        redactions + 5
    );
    assert_eq!(value(&after, "authtel_policy_refusals_total"), refusals + 1);
}
