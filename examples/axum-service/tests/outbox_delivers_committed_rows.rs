//! Every audit row committed with a business change has one outbox entry, and the relay
//! delivers each exactly once after the commit; the rolled-back registration has neither.

mod support;

use std::sync::Arc;
use std::time::Duration;

use authtel::audit::AuditEvent;
use authtel::forward::{ForwardFuture, Forwarder};
use authtel_testing::Capture;
use serde_json::json;
use support::http::Request;
use tokio::sync::mpsc;

#[derive(Debug)]
struct Channel(mpsc::UnboundedSender<uuid::Uuid>);

impl Forwarder for Channel {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        for e in batch {
            let _ = self.0.send(e.id());
        }
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_relay_delivers_every_committed_row_once() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let service = support::Service::start(&capture, |_| {}).await;
    let creds = json!({"email": "carol@example.com", "password": "carol's passphrase"});
    assert_eq!(
        Request::post("/register", creds.clone())
            .send(service.addr)
            .await
            .status,
        201
    );
    assert_eq!(
        Request::post("/register", creds.clone())
            .send(service.addr)
            .await
            .status,
        409
    );
    assert_eq!(
        Request::post("/login", creds)
            .send(service.addr)
            .await
            .status,
        200
    );

    let rows = service.audit_rows().await;
    let actions: Vec<&str> = rows.iter().map(|r| r.action()).collect();
    assert_eq!(
        actions,
        [
            "auth.register.stop",
            "auth.login.stop",
            "session.create.stop"
        ]
    );
    assert_eq!(service.outbox_entries().await, 3);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let relay = service
        .app
        .spawn_relay(Arc::new(Channel(tx)))
        .expect("relay starts");
    let mut delivered = Vec::new();
    while delivered.len() < rows.len() {
        let id = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the relay delivers within 10 s")
            .expect("the channel stays open");
        delivered.push(id);
    }
    assert!(
        relay.shutdown(Duration::from_secs(5)).await,
        "the relay stops cleanly"
    );
    let mut expected: Vec<uuid::Uuid> = rows.iter().map(|r| r.id()).collect();
    expected.sort();
    delivered.sort();
    assert_eq!(delivered, expected);
    assert!(rx.try_recv().is_err(), "nothing delivered twice");
    let state = service
        .app
        .audit_store()
        .delivery_state()
        .await
        .expect("delivery state");
    assert!(
        state.iter().all(|s| s.pending == 0 && s.dead == 0),
        "{state:?}"
    );
}
