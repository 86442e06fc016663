//! The logger bench compares like with like: each authtel case writes the same JSON line as
//! its `tracing` baseline (benches/common/mod.rs), byte for byte once the timestamp is off
//! and authtel's fresh span ids are replaced by the baseline's fixed one.

#[path = "../benches/common/mod.rs"]
mod common;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::registry::Registry;
use authtel_core::telemetry;
use authtel_log::{Logger, LoggerOptions};
use authtel_testing::SharedBuffer;
use serde_json::Value;

/// The one line `scenario` writes through the bench's subscriber (without timestamps),
/// with the logger attached to a scoped registry.
fn one_line(scenario: impl FnOnce()) -> String {
    let buffer = SharedBuffer::new();
    let writer = buffer.clone();
    let dispatch = common::json_subscriber(move || writer.clone(), false);
    let registry = Registry::new();
    Logger::build(LoggerOptions::new())
        .attach_to(&registry)
        .expect("a fresh registry has no logger yet");
    tracing::dispatcher::with_default(&dispatch, || {
        let _scope = registry.enter();
        scenario();
    });
    let text = buffer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{text}");
    lines[0].to_owned()
}

/// authtel's line with its span id (which is also its root id) replaced by the baselines'.
fn with_fixed_ids(line: &str) -> (String, Value) {
    let parsed: Value = serde_json::from_str(line).expect("the logger writes JSON");
    let id = parsed["span_id"]
        .as_str()
        .expect("span_id is text")
        .to_owned();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    assert_eq!(parsed["root_id"], id.as_str(), "a root is its own root");
    (line.replace(&id, common::SPAN_ID), parsed)
}

#[test]
fn signal_line_equals_the_tracing_fmt_json_baseline_byte_for_byte() {
    let (ours, _) = with_fixed_ids(&one_line(common::authtel_signal));
    let baseline = one_line(common::tracing_signal);
    assert_eq!(ours, baseline);
    // The line really carries the fields (not two empty lines that happen to match).
    for field in [
        "\"event\":\"security.suspicious_login\"",
        "\"user_id\":\"u_42\"",
        "\"client_ip\":\"203.0.113.7\"",
        "\"extra\":\"tenant=acme\"",
        "\"level\":\"WARN\"",
    ] {
        assert!(baseline.contains(field), "{field} in {baseline}");
    }
}

#[test]
fn display_fields_variant_writes_the_same_line_as_the_plain_baseline() {
    assert_eq!(
        one_line(common::tracing_signal_display_fields),
        one_line(common::tracing_signal)
    );
}

#[test]
fn span_stop_line_equals_the_span_stop_baseline_byte_for_byte() {
    let (ours, parsed) = with_fixed_ids(&one_line(|| {
        let _ = telemetry::span(&AUTH_LOGIN, common::login_metadata(), || Ok::<_, ()>(1));
    }));
    let duration = parsed["duration_ms"]
        .as_f64()
        .expect("a stop has a duration");
    let baseline = one_line(|| common::tracing_span_stop(duration));
    assert_eq!(ours, baseline);
    assert!(
        baseline.contains("\"event\":\"auth.login.stop\""),
        "{baseline}"
    );
}
