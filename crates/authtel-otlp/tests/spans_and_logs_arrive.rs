//! Spans, parent/child links, attributes, status and log records arrive at a real OTLP
//! receiver, over gRPC and over HTTP/protobuf.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::telemetry::{self, Measurements};
use authtel_core::vocabulary::{Aal, AuthMethod};
use authtel_core::{catalogue, outcome::Outcome};
use authtel_otlp::Protocol;
use authtel_testing::otlp::proto::tonic::trace::v1::{Span, status::StatusCode};
use authtel_testing::otlp::{OtlpReceiver, Transport, any_value_text, attribute, string_array};

async fn spans_and_logs_arrive_over(protocol: Protocol) {
    // Exception messages are opt-in; this binary's tests all opt in.
    authtel_core::policy::set_exception_messages(true);
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = common::sink_for(&receiver, protocol);
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let login = Metadata::new()
            .user_id("u_42")
            .session_id("s_1")
            .client_ip(ip)
            .user_agent("Mozilla/5.0")
            .method("password")
            .factors(&[AuthMethod::Password, AuthMethod::Totp])
            .aal(Aal::Aal2)
            .is_mfa(true);
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, login, || {
            let mfa = Metadata::new().method("totp").attempts_remaining(2);
            let _ = telemetry::span(&catalogue::MFA_VERIFY, mfa, || Err::<(), _>("bad code"));
            telemetry::event(
                &catalogue::SECURITY_LOCKOUT,
                Measurements::new().count(1),
                Metadata::new().user_id("u_42").reason("too_many_attempts"),
            );
            Ok::<_, ()>(())
        });
        let panicked = std::panic::catch_unwind(|| {
            telemetry::span(&catalogue::JWT_VERIFY, Metadata::new(), || -> bool {
                panic!("signature check exploded")
            })
        });
        assert!(panicked.is_err());
        let guard = telemetry::start(
            &catalogue::OAUTH_CALLBACK,
            Metadata::new().provider("github").outcome(Outcome::Denied),
        );
        guard.stop(Outcome::Denied);
    }
    common::flush(&sink).await;
    let arrived = receiver
        .wait_until(common::WAIT, |r| {
            r.spans().len() >= 4 && r.log_records().len() >= 5
        })
        .await;
    assert!(arrived, "spans: {:?}", receiver.spans());

    let want = match protocol {
        Protocol::Grpc => Transport::Grpc,
        _ => Transport::HttpProtobuf,
    };
    assert!(receiver.trace_requests().iter().all(|(t, _)| *t == want));
    let (_, first) = &receiver.trace_requests()[0];
    let resource = first.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name").as_deref(),
        Some("authtel-otlp-tests")
    );
    assert_eq!(
        attribute(&resource.attributes, "service.version").as_deref(),
        Some("9.9.9")
    );

    let spans = receiver.spans();
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no span {n}"))
    };
    let login = by_name("auth.login");
    let mfa = by_name("mfa.verify");
    let jwt = by_name("jwt.verify");
    let oauth = by_name("oauth.callback");

    // Parent/child: one trace, the child points at the parent, the root has no parent.
    assert_eq!(mfa.trace_id, login.trace_id);
    assert_eq!(mfa.parent_span_id, login.span_id);
    assert!(login.parent_span_id.is_empty());
    assert_eq!(login.trace_id.len(), 16);
    assert_ne!(jwt.trace_id, login.trace_id);
    assert!(login.start_time_unix_nano <= mfa.start_time_unix_nano);
    assert!(mfa.end_time_unix_nano <= login.end_time_unix_nano);
    assert!(login.start_time_unix_nano < login.end_time_unix_nano);

    // Attributes: semantic conventions and auth.*.
    let a = |s: &Span, k: &str| attribute(&s.attributes, k);
    assert_eq!(a(login, "user.id").as_deref(), Some("u_42"));
    assert_eq!(a(login, "session.id").as_deref(), Some("s_1"));
    assert_eq!(a(login, "client.address").as_deref(), Some("203.0.113.7"));
    assert_eq!(
        a(login, "user_agent.original").as_deref(),
        Some("Mozilla/5.0")
    );
    assert_eq!(a(login, "auth.method").as_deref(), Some("password"));
    assert_eq!(
        string_array(&login.attributes, "auth.factors"),
        Some(vec!["password".to_owned(), "totp".to_owned()])
    );
    assert_eq!(a(login, "auth.aal").as_deref(), Some("aal2"));
    assert_eq!(a(login, "auth.is_mfa").as_deref(), Some("true"));
    assert_eq!(a(login, "auth.outcome").as_deref(), Some("success"));
    assert_eq!(a(login, "error.type"), None);
    assert_eq!(
        login.status.as_ref().map(|s| s.code),
        Some(StatusCode::Unset as i32)
    );
    assert_eq!(a(mfa, "auth.attempts_remaining").as_deref(), Some("2"));
    assert_eq!(a(mfa, "auth.outcome").as_deref(), Some("failure"));
    assert_eq!(a(mfa, "error.type").as_deref(), Some("&str"));
    assert_eq!(
        mfa.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(a(oauth, "auth.provider").as_deref(), Some("github"));
    assert_eq!(a(oauth, "error.type").as_deref(), Some("denied"));

    // A panic: status error and an exception event with the screened message.
    assert_eq!(
        jwt.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(a(jwt, "error.type").as_deref(), Some("panic"));
    let exception = jwt
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    assert_eq!(
        attribute(&exception.attributes, "exception.type").as_deref(),
        Some("panic")
    );
    assert_eq!(
        attribute(&exception.attributes, "exception.message").as_deref(),
        Some("signature check exploded")
    );

    // Log records: the signal at WARN inside the login's trace, audit records at INFO/ERROR.
    let logs = receiver.log_records();
    let lockout = logs
        .iter()
        .find(|l| l.event_name == "security.lockout")
        .expect("lockout log record");
    assert_eq!(lockout.severity_text, "WARN");
    assert_eq!(lockout.severity_number, 13);
    assert_eq!(lockout.trace_id, login.trace_id);
    assert_eq!(lockout.span_id, login.span_id);
    assert_eq!(
        attribute(&lockout.attributes, "event.name").as_deref(),
        Some("security.lockout")
    );
    assert_eq!(
        attribute(&lockout.attributes, "auth.reason").as_deref(),
        Some("too_many_attempts")
    );
    assert_eq!(
        any_value_text(lockout.body.as_ref().unwrap()).as_deref(),
        Some("security.lockout")
    );
    let login_stop = logs
        .iter()
        .find(|l| l.event_name == "auth.login.stop")
        .expect("audit log");
    assert_eq!(login_stop.severity_text, "INFO");
    assert_eq!(login_stop.span_id, login.span_id);
    let jwt_exception = logs
        .iter()
        .find(|l| l.event_name == "jwt.verify.exception")
        .expect("exception log");
    assert_eq!(jwt_exception.severity_text, "ERROR");

    let stats = sink.stats();
    assert!(stats.spans_exported >= 4, "{stats:?}");
    assert!(stats.logs_exported >= 5, "{stats:?}");
    assert_eq!(stats.export_failures, 0, "{stats:?}");
    common::shutdown(sink).await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_logs_arrive_over_grpc() {
    spans_and_logs_arrive_over(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_logs_arrive_over_http_protobuf() {
    spans_and_logs_arrive_over(Protocol::HttpProtobuf).await;
}
