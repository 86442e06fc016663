//! Captures what the logger writes: a JSON `fmt` subscriber into a buffer, installed only on
//! the test's thread, plus a scoped registry with the logger attached.

#![allow(dead_code, unreachable_pub)]

use authtel_core::registry::Registry;
use authtel_log::{Logger, LoggerOptions};
use authtel_testing::SharedBuffer;
use serde_json::Value;
use tracing::Level;
use tracing_subscriber::EnvFilter;

/// Everything the subscriber wrote during one capture.
#[derive(Debug)]
pub struct Captured {
    pub text: String,
}

impl Captured {
    /// One JSON object per log line.
    pub fn lines(&self) -> Vec<Value> {
        self.text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The lines whose `event` field is `name`.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["event"] == name)
            .collect()
    }

    /// The single line for `name`, failing the test if there is not exactly one.
    pub fn one(&self, name: &str) -> Value {
        let mut found = self.events(name);
        assert_eq!(
            found.len(),
            1,
            "expected one {name} line in:\n{}",
            self.text
        );
        found.remove(0)
    }
}

/// Runs `scenario` with the logger (built from `options`) attached to a fresh scoped
/// registry and a JSON subscriber at TRACE, or filtered by `directives` (EnvFilter syntax).
pub fn capture(
    options: LoggerOptions,
    directives: Option<&str>,
    scenario: impl FnOnce(),
) -> Captured {
    let buffer = SharedBuffer::new();
    let writer = buffer.clone();
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(move || writer.clone());
    let dispatch = match directives {
        Some(d) => tracing::Dispatch::new(builder.with_env_filter(EnvFilter::new(d)).finish()),
        None => tracing::Dispatch::new(builder.with_max_level(Level::TRACE).finish()),
    };
    let registry = Registry::new();
    Logger::build(options)
        .attach_to(&registry)
        .expect("a fresh registry has no logger yet");
    tracing::dispatcher::with_default(&dispatch, || {
        let _scope = registry.enter();
        scenario();
    });
    Captured {
        text: buffer.text(),
    }
}
