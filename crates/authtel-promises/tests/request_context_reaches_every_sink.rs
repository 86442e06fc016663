//! A request context set once reaches every sink with no per-call-site code: the client IP,
//! user agent, request id, tenant and trace id of a login emitted inside it are in the log
//! line, the recent store, the SQLite audit trail, PostgreSQL and Kafka (when their services
//! are up) and the OTLP span — and a login emitted outside it carries none of them.

mod support;

use authtel_core::catalogue;
use authtel_core::context::RequestContext;
use authtel_core::metadata::Metadata;
use authtel_core::telemetry;
use authtel_testing::otlp::proto::tonic::common::v1::any_value::Value as Any;
use serde_json::Value as Json;
use support::sinks::Sinks;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
const REQUEST_ID: &str = "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn json_lines(bytes: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `auth.login.stop` records of one user, from a sink's JSON records.
fn stops_of(records: &[Json], user: &str) -> Vec<Json> {
    records
        .iter()
        .filter(|r| r["action"] == "auth.login.stop" && r["actor"]["id"] == user)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_of_a_request_reaches_every_sink() {
    let sinks = Sinks::start("request_context").await;
    let ctx = RequestContext::builder()
        .client_ip("198.51.100.23".parse().unwrap())
        .user_agent(UA)
        .request_id(REQUEST_ID)
        .tenant("acme")
        .trace_parent(format!("00-{TRACE}-00f067aa0ba902b7-01").parse().unwrap())
        .build();
    {
        let _scope = sinks.registry.enter();
        tokio::task::block_in_place(|| {
            ctx.in_scope(|| {
                let _ = telemetry::span(
                    &catalogue::AUTH_LOGIN,
                    Metadata::new().user_id("u_in_ctx"),
                    || Err::<(), _>("invalid_password"),
                );
            });
            let _ = telemetry::span(
                &catalogue::AUTH_LOGIN,
                Metadata::new().user_id("u_no_ctx"),
                || Err::<(), _>("invalid_password"),
            );
        });
    }
    sinks.settle().await;
    let outputs = sinks.outputs().await;
    let output = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    };

    // The audit record in every store that keeps records.
    let mut stores: Vec<(&str, Vec<Json>)> = vec![
        (
            "recent_store",
            serde_json::from_slice(&output("recent_store").unwrap()).unwrap(),
        ),
        ("sqlite", json_lines(&output("sqlite_export").unwrap())),
    ];
    if let Some(pg) = &sinks.postgres {
        let mut export = Vec::new();
        pg.export_ndjson(&authtel_sql::AuditQuery::new(), &mut export)
            .await
            .unwrap();
        stores.push(("postgres", json_lines(&export)));
    }
    if let Some(kafka) = output("kafka") {
        stores.push(("kafka_payload", json_lines(&kafka)));
    }
    for (sink, records) in &stores {
        let inside = stops_of(records, "u_in_ctx");
        assert_eq!(inside.len(), 1, "{sink}: {records:?}");
        let r = &inside[0];
        assert_eq!(r["client_ip"], "198.51.100.23", "{sink}: {r}");
        assert_eq!(r["user_agent"], UA, "{sink}: {r}");
        assert_eq!(r["metadata"]["request_id"], REQUEST_ID, "{sink}: {r}");
        assert_eq!(r["tenant_id"], "acme", "{sink}: {r}");
        assert!(r["metadata"].get("tenant").is_none(), "{sink}: {r}");
        assert_eq!(r["trace_id"], TRACE, "{sink}: {r}");
        let outside = stops_of(records, "u_no_ctx");
        assert_eq!(outside.len(), 1, "{sink}");
        let r = &outside[0];
        assert!(
            r.get("client_ip").is_none() && r.get("user_agent").is_none(),
            "{sink}: {r}"
        );
        assert!(r["metadata"].get("request_id").is_none(), "{sink}: {r}");
        assert_ne!(r["trace_id"], TRACE, "{sink}: {r}");
    }

    // The log line.
    let log = json_lines(&output("log").unwrap());
    let line = log
        .iter()
        .find(|l| l["event"] == "auth.login.stop" && l["user_id"] == "u_in_ctx")
        .expect("the login is logged");
    assert_eq!(line["client_ip"], "198.51.100.23");
    assert_eq!(line["user_agent"], UA);
    assert_eq!(line["trace_id"], TRACE);
    let extra = line["extra"].as_str().unwrap_or_default();
    assert!(
        extra.contains(&format!("request_id={REQUEST_ID}")),
        "{line}"
    );
    assert_eq!(line["tenant_id"], "acme", "{line}");

    // The OTLP span: attributes, and the caller's trace.
    let span = sinks
        .receiver
        .spans()
        .into_iter()
        .find(|s| {
            s.attributes.iter().any(|kv| {
                kv.key == "user.id"
                    && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                        Some(Any::StringValue(s)) if s == "u_in_ctx")
            })
        })
        .expect("the login span is exported");
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    assert_eq!(
        attr("client.address"),
        Some(Any::StringValue("198.51.100.23".into()))
    );
    assert_eq!(
        attr("user_agent.original"),
        Some(Any::StringValue(UA.into()))
    );
    assert_eq!(
        attr("auth.extra.request_id"),
        Some(Any::StringValue(REQUEST_ID.into()))
    );
    let trace_hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(trace_hex, TRACE, "the span joins the caller's trace");
    let parent_hex: String = span
        .parent_span_id
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        parent_hex, "00f067aa0ba902b7",
        "its parent is the caller's span"
    );
}
