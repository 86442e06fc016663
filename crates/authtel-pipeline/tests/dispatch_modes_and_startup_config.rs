//! Dispatch resolution (sync, async, auto; with and without a runtime), startup validation
//! with errors naming key and value, and the one warning for a forwarder not compiled in.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::outcome::Outcome;
use authtel_pipeline::{
    Backpressure, BuildError, ConfigError, Dispatch, EnvConfig, ForwarderConfig, Pipeline,
};
use common::{Capture, PATIENCE, TempDir, numbered};

fn event() -> AuditEvent {
    AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()
}

#[test]
fn async_without_runtime_is_a_startup_error_that_says_what_to_do() {
    let err = Pipeline::builder()
        .forwarder(ForwarderConfig::new("kafka", Capture::new()).dispatch(Dispatch::Async))
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::NoRuntime { forwarder } if forwarder == "kafka"));
    let text = err.to_string();
    assert!(
        text.contains("Dispatch::Sync") && text.contains("runtime"),
        "{text}"
    );
}

/// Remembers the thread each call ran on.
#[derive(Debug, Default)]
struct Threads(std::sync::Mutex<Vec<String>>);

impl authtel_core::forward::Forwarder for Threads {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> authtel_core::forward::ForwardFuture<'a> {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        self.0.lock().unwrap().push(name);
        Box::pin(async { Ok(()) })
    }
}

#[test]
fn auto_without_runtime_queues_and_delivers_on_its_own_worker_thread() {
    let dest = Arc::new(Threads::default());
    let p = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("sql", dest.clone()))
        .build()
        .unwrap();
    std::thread::Builder::new()
        .name("login-handler".into())
        .spawn({
            let p = p.clone();
            move || p.publish(event()).unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
    assert!(p.metrics()[0].asynchronous);
    // Never on the emitting thread: on the pipeline's own worker.
    assert_eq!(*dest.0.lock().unwrap(), ["authtel-pipeline"]);
}

#[test]
fn async_with_a_runtime_handle_given_to_the_builder() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dest = Arc::new(Capture::new());
    let p = Pipeline::builder()
        .runtime(rt.handle().clone())
        .forwarder(ForwarderConfig::from_arc("sql", dest.clone()).dispatch(Dispatch::Async))
        .build()
        .unwrap();
    for e in numbered(0..100) {
        p.publish(e).unwrap();
    }
    assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
    assert_eq!(dest.seqs(), (0..100).collect::<Vec<_>>());
    assert!(p.metrics()[0].asynchronous);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_inside_runtime_is_async_and_sync_works_there_too() {
    let (a, s) = (Arc::new(Capture::new()), Arc::new(Capture::new()));
    let p = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("auto", a.clone()))
        .forwarder(ForwarderConfig::from_arc("sync", s.clone()).dispatch(Dispatch::Sync))
        .build()
        .unwrap();
    p.publish(event()).unwrap(); // sync lane: block_in_place on this worker thread
    assert_eq!(s.len(), 1);
    let m = p.metrics();
    assert!(m[0].asynchronous && !m[1].asynchronous);
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || p2.flush(Instant::now() + PATIENCE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn sync_inside_a_current_thread_runtime_does_not_deadlock() {
    let dest = Arc::new(Capture::new());
    let p = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("sync", dest.clone()).dispatch(Dispatch::Sync))
        .build()
        .unwrap();
    for e in numbered(0..10) {
        p.publish(e).unwrap();
    }
    assert_eq!(dest.seqs(), (0..10).collect::<Vec<_>>());
}

#[test]
fn bad_settings_fail_the_build_naming_key_and_value() {
    let err = Pipeline::builder()
        .forwarder(ForwarderConfig::new("kafka", Capture::new()).batch_size(0))
        .build()
        .unwrap_err();
    match &err {
        BuildError::Config {
            forwarder,
            source: ConfigError::InvalidValue { key, value, .. },
        } => assert_eq!(
            (forwarder.as_str(), key.as_str(), value.as_str()),
            ("kafka", "batch_size", "0")
        ),
        other => panic!("unexpected {other:?}"),
    }
    let err = Pipeline::builder()
        .forwarder(ForwarderConfig::new("kafka", Capture::new()).backpressure(Backpressure::Spill))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("spill_dir"), "{err}");
    let err = Pipeline::builder()
        .forwarder(ForwarderConfig::new("a", Capture::new()).dispatch(Dispatch::Sync))
        .forwarder(ForwarderConfig::new("a", Capture::new()).dispatch(Dispatch::Sync))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::BadId { .. }));
}

#[test]
fn env_variables_configure_and_validate() {
    let dir = TempDir::new("env");
    let spill = dir.path().join("spill");
    let env = EnvConfig::from_vars([
        ("AUTHTEL_PIPELINE_QUEUE_CAPACITY", "1000".to_owned()),
        ("AUTHTEL_PIPELINE_BATCH_SIZE", "10".to_owned()),
        ("AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS", "7".to_owned()),
        ("AUTHTEL_PIPELINE_BACKPRESSURE", "spill".to_owned()),
        ("AUTHTEL_PIPELINE_SPILL_DIR", spill.display().to_string()),
        ("AUTHTEL_PIPELINE_FSYNC", "interval".to_owned()),
        ("AUTHTEL_PIPELINE_FSYNC_INTERVAL_MS", "250".to_owned()),
        ("AUTHTEL_PIPELINE_DISPATCH", "sync".to_owned()),
        ("AUTHTEL_PIPELINE_SAMPLE_RATE", "0.5".to_owned()),
        ("AUTHTEL_FORWARDERS", "sql,kafka".to_owned()),
        ("HOME", "/root".to_owned()),
    ])
    .unwrap();
    let s = &env.settings;
    assert_eq!(
        (s.queue_capacity, s.batch_size, s.retry.max_attempts),
        (1000, 10, 7)
    );
    assert_eq!(
        s.fsync,
        authtel_pipeline::FsyncPolicy::Interval(Duration::from_millis(250))
    );
    assert_eq!(s.sample_rate, 0.5);
    let builder = Pipeline::builder().env(env);
    let cfg = builder
        .forwarder_config("sql", Capture::new())
        .dead_letter_dir(dir.path());
    assert_eq!(cfg.settings().dispatch, Dispatch::Sync);
    let p = builder.forwarder(cfg).build().unwrap();
    // kafka is configured but not compiled in: one warning, the sql forwarder works.
    assert_eq!(p.warnings().len(), 1);
    assert!(p.warnings()[0].contains("\"kafka\""), "{:?}", p.warnings());
    p.publish(event()).unwrap();
    assert_eq!(p.metrics()[0].delivered, 1);

    for (key, value, expected) in [
        ("AUTHTEL_PIPELINE_FSYNC", "always", "batch|interval|never"),
        ("AUTHTEL_PIPELINE_BACKPRESSURE", "yes", "block|drop|spill"),
        (
            "AUTHTEL_PIPELINE_QUEUE_CAPACITY",
            "-1",
            "a non-negative integer",
        ),
        (
            "AUTHTEL_PIPELINE_SAMPLE_RATE",
            "1.5",
            "a number in 0.0..=1.0",
        ),
        ("AUTHTEL_PIPELINE_RETRY_JITTER", "maybe", "true|false"),
    ] {
        let err = EnvConfig::from_vars([(key, value)]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidValue {
                key: key.into(),
                value: value.into(),
                expected
            },
        );
        let text = err.to_string();
        assert!(text.contains(key) && text.contains(value), "{text}");
    }
}
