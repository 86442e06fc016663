//! Application events — `Event::signal` statics, runtime `Event::declare` and `SpanDef::new`
//! spans — flow through the same registry as the library's, selectable by category
//! `Custom`; the library's prefixes are refused.

use authtel_core::catalogue::{self, Category, Event, EventKind, NameError, SpanDef};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::telemetry;
use authtel_testing::Capture;

static INVOICE_VIEWED: Event = Event::signal("billing.invoice.viewed");
static REPORT_EXPORT: SpanDef = SpanDef::new(
    "reports.export",
    "reports.export.start",
    "reports.export.stop",
    "reports.export.exception",
);

#[test]
fn static_signal_reaches_a_custom_category_handler() {
    let capture = Capture::with_selection(Category::Custom);
    let _scope = capture.enter();
    telemetry::event(
        &INVOICE_VIEWED,
        Default::default(),
        Metadata::new().user_id("u_8"),
    );
    // A library event is not in the Custom category.
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new(),
    );
    capture.assert_emitted(&["billing.invoice.viewed"]);
    let event = capture.single("billing.invoice.viewed");
    assert_eq!(event.category, Category::Custom);
    assert_eq!(event.kind, EventKind::Signal);
    capture.assert_field("billing.invoice.viewed", "user_id", "u_8");
}

#[test]
fn application_span_emits_its_phases() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::with_selection(Category::Custom);
    let _scope = capture.enter();
    let rows = telemetry::span(&REPORT_EXPORT, Metadata::new(), || Some(12));
    assert_eq!(rows, Some(12));
    let _ = std::panic::catch_unwind(|| {
        telemetry::span(&REPORT_EXPORT, Metadata::new(), || -> bool {
            panic!("disk full")
        })
    });
    capture.assert_emitted(&[
        "reports.export.start",
        "reports.export.stop",
        "reports.export.start",
        "reports.export.exception",
    ]);
    assert_eq!(
        capture.single("reports.export.stop").outcome,
        Some(Outcome::Success)
    );
    assert_eq!(
        capture
            .single("reports.export.exception")
            .exception
            .unwrap()
            .reason
            .as_deref(),
        Some("disk full")
    );
}

#[test]
fn declared_event_is_delivered_even_when_declared_after_attach() {
    let capture = Capture::with_selection(Category::Custom);
    let _scope = capture.enter();
    // Declared after the capture's snapshot was built: it has no slot in its table yet.
    let refund = Event::declare("billing.refund.issued_after_attach").unwrap();
    telemetry::event(refund, Default::default(), Metadata::new());

    // Another registry selecting it explicitly gives it an id beyond the first table.
    let other = Registry::new();
    other
        .attach("explicit", refund, handler_fn(|_| {}))
        .unwrap();
    assert!(refund.id() > 0);
    telemetry::event(refund, Default::default(), Metadata::new());

    capture.assert_emitted(&[
        "billing.refund.issued_after_attach",
        "billing.refund.issued_after_attach",
    ]);
}

#[test]
fn declared_event_selected_explicitly() {
    let refund = Event::declare("billing.refund.explicit").unwrap();
    let noise = Event::declare("billing.refund.noise").unwrap();
    let capture = Capture::with_selection(Selection::Events(vec![refund]));
    let _scope = capture.enter();
    telemetry::event(noise, Default::default(), Metadata::new());
    telemetry::event(refund, Default::default(), Metadata::new());
    capture.assert_emitted(&["billing.refund.explicit"]);
    assert!(std::ptr::eq(
        refund,
        Event::declare("billing.refund.explicit").unwrap()
    ));
}

#[test]
fn reserved_prefixes_are_refused() {
    for name in [
        "auth.custom_login",
        "security.my_signal",
        "mfa.thing",
        "pipeline.x",
        "authtel.internal",
        "custom.anything",
    ] {
        match Event::declare(name) {
            Err(NameError::Reserved {
                name: refused,
                prefix,
            }) => {
                assert_eq!(refused, name);
                assert!(name.starts_with(prefix), "{name} vs {prefix}");
                let err = Event::declare(name).unwrap_err().to_string();
                assert!(err.contains("reserved"), "{err}");
            }
            other => panic!("{name} should be reserved, got {other:?}"),
        }
    }
    // A prefix that merely starts with a library word is the application's.
    assert!(Event::declare("authx.login").is_ok());
}

#[test]
fn malformed_names_are_typed_errors() {
    assert!(matches!(
        Event::declare("billing"),
        Err(NameError::SegmentCount { segments: 1, .. })
    ));
    assert!(matches!(
        Event::declare("Billing.x"),
        Err(NameError::InvalidCharacter { position: 0, .. })
    ));
    assert!(matches!(
        Event::declare("billing..x"),
        Err(NameError::EmptySegment { .. })
    ));
    let long = format!("billing.{}", "x".repeat(200));
    assert!(matches!(
        Event::declare(&long),
        Err(NameError::TooLong { .. })
    ));
}
