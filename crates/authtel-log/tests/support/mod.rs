//! Captures what the logger writes: a JSON `fmt` subscriber into a buffer, installed only on
//! the test's thread, plus a scoped registry with the logger attached.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use authtel_core::registry::Registry;
use authtel_log::{Logger, LoggerOptions};
use serde_json::Value;
use tracing::Level;
use tracing_subscriber::EnvFilter;

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

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
    let buffer = Buffer::default();
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(buffer.clone());
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
    let bytes = buffer.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Captured {
        text: String::from_utf8(bytes).expect("the JSON formatter writes UTF-8"),
    }
}
