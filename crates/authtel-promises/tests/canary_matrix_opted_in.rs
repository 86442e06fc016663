//! The message positions of the canary matrix (a panic inside a span,
//! `SpanGuard::exception`, a forwarder's error text) with exception messages exported
//! (`policy::set_exception_messages(true)`): what goes out is screened, so no planted
//! secret reaches any sink. Its own binary: the switch is process-global.

mod support;

use support::canary;
use support::plant::Position;
use support::sinks::Sinks;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_messages_carry_no_planted_secret() {
    authtel_core::policy::set_exception_messages(true);
    let sinks = Sinks::start("opted_in").await;
    let positions = [
        Position::Panic,
        Position::Exception,
        Position::ForwarderError,
    ];
    let report = canary::run(&sinks, &positions).await;
    report.print("canary matrix (messages exported)");
    assert!(report.plants > 300, "the matrix is real: {}", report.plants);
    // Messages really are exported: a clean one arrives verbatim.
    {
        let _scope = sinks.registry.enter();
        authtel_core::telemetry::start(
            &authtel_core::catalogue::OAUTH_CALLBACK,
            Default::default(),
        )
        .exception("upstream idp timed out after 3 attempts");
    }
    sinks.settle().await;
    let log = sinks
        .outputs()
        .await
        .into_iter()
        .find(|(n, _)| n == "log")
        .unwrap()
        .1;
    assert!(
        String::from_utf8_lossy(&log).contains("upstream idp timed out after 3 attempts"),
        "opted-in messages reach the log"
    );
    assert_eq!(report.hits.len(), 0, "planted secrets reached a sink");
    assert_eq!(
        report.records_unscreened, 0,
        "records built from events must already pass the policy"
    );
}
