//! The outbox page's breaker column reads the relays' status rows: "no relay has reported"
//! before any relay ran, the breaker open with its age once a relay's destination keeps
//! failing, and "not reachable" once that relay stops writing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{BreakerConfig, Relay, RelayConfig, RetryPolicy};
use support::{Fixture, between, login};

/// Always fails transiently, so the breaker opens.
#[derive(Debug)]
struct Down;

impl Forwarder for Down {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Transient,
                "connect to siem.internal:6514: connection refused",
            ))
        })
    }
}

/// The breaker cell of forwarder `siem` on the outbox page.
async fn siem_breaker(f: &Fixture) -> String {
    let page = f.get("/outbox").await;
    assert_eq!(page.status, 200, "{page:?}");
    let row = between(&page.body, "<td>siem</td>", "</tr>")
        .unwrap_or_else(|| panic!("a row for siem: {}", page.body));
    row.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_column_follows_the_relays() {
    let f = Fixture::start("breaker_column").await;
    f.record(&[
        login("u_1", Outcome::Failure),
        login("u_2", Outcome::Success),
    ])
    .await;
    let before = siem_breaker(&f).await;
    assert!(before.contains("no relay has reported"), "{before}");

    let config = RelayConfig::default()
        .with_retry(RetryPolicy::new(
            50,
            Duration::from_millis(1),
            Duration::from_millis(1),
        ))
        .with_breaker(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(3600),
        })
        // Stale after 3 × 1 s + one 1 s forward timeout: the test waits that out below.
        .with_heartbeat(Duration::from_secs(1))
        .with_forward_timeout(Duration::from_secs(1));
    let relay = Relay::new(&f.store, config)
        .with_forwarder("siem", Arc::new(Down))
        .unwrap();
    for _ in 0..4 {
        relay.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let open = siem_breaker(&f).await;
    assert!(open.contains("open for"), "{open}");
    assert!(open.contains("relay seen"), "{open}");
    assert!(!open.contains("no relay"), "{open}");

    // The relay stops writing (the process died, say): past its promise the row is stale.
    drop(relay);
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let gone = siem_breaker(&f).await;
    assert!(gone.contains("not reachable: relay last seen"), "{gone}");
}
