//! A broker killed with SIGKILL while 50,000 records go through the pipeline, kept down for
//! 10 s and restarted on the same persistent storage (tansu's SQLite engine): every record
//! arrives, each user's records stay in order, and the projector stores each exactly once.
//!
//! Needs a tansu built with the `libsql` engine (`cargo xtask services install` builds one);
//! with `CI` or `AUTHTEL_REQUIRE_SERVICES=1` a tansu without it fails the test.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::faults::{
    PARTITIONS, RECORDS, fault_forwarder, ordered_pipeline, publish_all, records, shut_down,
    verify_log_and_projection, wait_drained,
};
use common::{PrivateBroker, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_broker_on_persistent_storage_loses_nothing() {
    let test = "crashed_broker_on_persistent_storage_loses_nothing";
    let Some(broker) = PrivateBroker::start_with(test, Storage::Sqlite) else {
        return;
    };
    let broker = Arc::new(Mutex::new(broker));
    let broker_report = {
        let broker = broker.clone();
        move || {
            let mut b = broker.lock().unwrap();
            format!("broker {}\n{}", b.status(), b.log_tail(40))
        }
    };
    let bootstrap = broker.lock().unwrap().bootstrap();
    let topic = common::unique_topic("crash");
    common::create_topic(&bootstrap, &topic, PARTITIONS).await;
    let dir = std::env::temp_dir().join(common::unique_topic("authtel-kafka-crash"));
    let pipeline = ordered_pipeline(fault_forwarder(&bootstrap, &topic), &dir);
    let all = Arc::new(records());

    let publisher = publish_all(&pipeline, &all);
    let delivered = || pipeline.metrics()[0].delivered;
    assert!(
        common::wait_until(|| delivered() >= (RECORDS / 5) as u64).await,
        "a fifth delivered before the crash: {:?}\n{}",
        pipeline.metrics()[0],
        broker_report()
    );

    tokio::task::block_in_place(|| broker.lock().unwrap().kill());
    let at_crash = delivered();
    // The outage's length: the broker stays dead for 10 s while publishers keep going.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during_outage = delivered();
    let restarted_at = Instant::now();
    tokio::task::block_in_place(|| broker.lock().unwrap().restart());
    assert!(
        common::wait_until(|| delivered() > during_outage).await,
        "deliveries resume after the restart: {:?}\n{}",
        pipeline.metrics()[0],
        broker_report()
    );
    let resumed_after = restarted_at.elapsed();
    publisher.await.expect("every record was accepted");

    let m = wait_drained(&pipeline, &broker_report).await;
    eprintln!(
        "crash: killed at {at_crash} delivered, {during_outage} after 10 s down; deliveries \
         resumed {:.1} s after the restart; {m:?}",
        resumed_after.as_secs_f64()
    );
    assert!(at_crash < RECORDS as u64, "the crash hit the run");
    assert!(
        m.retried > 0,
        "the crash made batches fail and be retried: {m:?}"
    );
    assert_eq!(m.dead_lettered, 0, "{m:?}");
    assert_eq!(m.dropped, 0, "{m:?}");

    // Records acknowledged before the crash must have survived it: the check covers all.
    verify_log_and_projection(&bootstrap, &topic, &all).await;
    shut_down(&pipeline, &dir).await;
}
