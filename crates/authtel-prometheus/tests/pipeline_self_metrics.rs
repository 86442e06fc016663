//! The pipeline's per-forwarder counters reach the exposition, refreshed on render and by
//! the listener between scrapes (feature `pipeline`).
#![cfg(feature = "pipeline")]

mod common;

use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
use authtel_prometheus::PrometheusSink;
use common::{http_get, promtool, promtool_check_metrics, sample};

#[derive(Debug)]
struct Store;
impl Forwarder for Store {
    fn forward<'a>(&'a self, _batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug)]
struct Broken;
impl Forwarder for Broken {
    fn forward<'a>(&'a self, _batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Permanent,
                "schema rejected",
            ))
        })
    }
}

fn pipeline() -> Pipeline {
    let dead_letters = std::env::temp_dir().join(format!(
        "authtel-prometheus-dlq-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    Pipeline::builder()
        .forwarder(ForwarderConfig::new("audit-store", Store).dispatch(Dispatch::Sync))
        .forwarder(
            ForwarderConfig::new("kafka", Broken)
                .dispatch(Dispatch::Sync)
                .dead_letter_dir(dead_letters),
        )
        .build()
        .expect("pipeline builds")
}

#[test]
fn forwarder_counters_are_rendered_per_forwarder_and_state() {
    let pipeline = pipeline();
    let sink = PrometheusSink::builder().build().unwrap();
    sink.register_pipeline_metrics(pipeline.clone());
    for _ in 0..3 {
        let _ = pipeline.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap());
    }
    let text = sink.render();
    let value = |series: &str| sample(&text, series);
    assert_eq!(
        value(r#"authtel_pipeline_records_total{forwarder="audit-store",state="delivered"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(r#"authtel_pipeline_records_total{forwarder="kafka",state="delivered"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(r#"authtel_pipeline_records_total{forwarder="kafka",state="dead_lettered"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(r#"authtel_pipeline_queue_depth{forwarder="audit-store"}"#),
        Some(0.0)
    );
    assert!(text.contains("# HELP authtel_pipeline_queue_depth "));
}

#[test]
fn the_listener_refreshes_pipeline_metrics_between_scrapes() {
    let pipeline = pipeline();
    let sink = PrometheusSink::builder()
        .with_listen_address(([127, 0, 0, 1], 0))
        .build()
        .unwrap();
    sink.register_pipeline_metrics(pipeline.clone());
    let _ = pipeline.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap());
    let series = r#"authtel_pipeline_records_total{forwarder="audit-store",state="published"}"#;
    // Only the listener's periodic refresh can make the scraped value move: poll, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (_, body) = http_get(sink.listen_address().unwrap(), "/metrics");
        if sample(&body, series) == Some(1.0) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sample(&body, series), Some(1.0), "{body}");
    if let Some(promtool) = promtool("the_listener_refreshes_pipeline_metrics_between_scrapes") {
        let (ok, out) = promtool_check_metrics(&promtool, &body);
        assert!(ok, "{out}\n{body}");
    }
}
