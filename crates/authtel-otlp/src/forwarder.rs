//! [`OtlpForwarder`]: audit records as OTLP log records, delivered by the pipeline or the SQL
//! outbox relay — with their retries, spill and dead letters — instead of the handler's
//! fire-and-forget batch queue.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::{Key, KeyValue};

use crate::attributes;
use crate::sink::{BuildError, OtlpSink, OtlpSinkBuilder};

/// A [`Forwarder`] that exports audit records as OTLP log records and answers only when the
/// collector acknowledged them: `Ok` once every record of the batch was exported, a
/// transient error otherwise (the pipeline retries, spills or dead-letters as configured).
/// Delivery is at least once: a batch the collector half took is sent again whole; the
/// records keep their `audit.id` attribute for deduplication.
///
/// It owns an exporter of its own (not the handler's), so its acknowledgements are its own.
/// Calls are taken one at a time.
///
/// ```
/// use authtel_otlp::OtlpSink;
/// let forwarder = OtlpSink::builder()
///     .with_endpoint("http://127.0.0.1:4318")
///     .with_service_name("accounts")
///     .build_forwarder()?;
/// // authtel_pipeline::ForwarderConfig::new("otlp", forwarder), or Relay::with_forwarder("otlp", ..)
/// # drop(forwarder);
/// # Ok::<(), authtel_otlp::BuildError>(())
/// ```
pub struct OtlpForwarder {
    sink: Arc<OtlpSink>,
    turn: tokio::sync::Mutex<()>,
    flush_timeout: Duration,
}

impl std::fmt::Debug for OtlpForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpForwarder")
            .field("endpoint", &self.sink.endpoint())
            .finish_non_exhaustive()
    }
}

impl OtlpSinkBuilder {
    /// Builds an [`OtlpForwarder`] with this configuration (endpoint, protocol, headers,
    /// service name; the retry window bounds each call).
    pub fn build_forwarder(self) -> Result<OtlpForwarder, BuildError> {
        let flush_timeout = self.retry_window + Duration::from_secs(5);
        Ok(OtlpForwarder {
            sink: Arc::new(self.build()?),
            turn: tokio::sync::Mutex::new(()),
            flush_timeout,
        })
    }
}

impl OtlpForwarder {
    /// What its exporter did so far.
    pub fn stats(&self) -> crate::ExportStats {
        self.sink.stats()
    }

    fn emit(&self, event: &AuditEvent) {
        let handler = self.sink.handler();
        let logger = &handler.inner.logger;
        let mut log = logger.create_log_record();
        let severity = if event.action().starts_with("security.") {
            (Severity::Warn, "WARN")
        } else if event.outcome() == Outcome::Error {
            (Severity::Error, "ERROR")
        } else {
            (Severity::Info, "INFO")
        };
        log.set_event_name("authtel.audit");
        log.set_severity_number(severity.0);
        log.set_severity_text(severity.1);
        log.set_body(AnyValue::from(event.action().to_owned()));
        let micros = u64::try_from(event.occurred_at().unix_micros()).unwrap_or(0);
        log.set_timestamp(UNIX_EPOCH + Duration::from_micros(micros));
        log.set_observed_timestamp(SystemTime::now());
        let trace = event.trace_id().and_then(|t| TraceId::from_hex(t).ok());
        let span = event.span_id().and_then(|s| SpanId::from_hex(s).ok());
        if let (Some(trace), Some(span)) = (trace, span) {
            log.set_trace_context(trace, span, Some(TraceFlags::SAMPLED));
        }
        let mut attrs = vec![
            KeyValue::new(attributes::EVENT_NAME, event.action().to_owned()),
            KeyValue::new("audit.id", event.id().to_string()),
            KeyValue::new(attributes::AUTH_OUTCOME, event.outcome().as_str()),
        ];
        let mut text = |key: &'static str, value: Option<&str>| {
            if let Some(v) = value {
                attrs.push(KeyValue::new(key, v.to_owned()));
            }
        };
        text(attributes::SESSION_ID, event.session_id());
        text(attributes::AUTH_TENANT_ID, event.tenant_id());
        text(attributes::USER_AGENT_ORIGINAL, event.user_agent());
        text(attributes::AUTH_RESOURCE, event.resource());
        text(attributes::AUTH_OPERATION, event.operation());
        text(attributes::AUTH_REASON, event.reason());
        if let Some(actor) = event.actor() {
            attrs.push(KeyValue::new(attributes::USER_ID, actor.id.clone()));
            attrs.push(KeyValue::new("auth.actor.type", actor.kind.clone()));
        }
        if let Some(target) = event.target() {
            attrs.push(KeyValue::new("auth.target.id", target.id.clone()));
            attrs.push(KeyValue::new("auth.target.type", target.kind.clone()));
        }
        if let Some(ip) = event.client_ip() {
            attrs.push(KeyValue::new(attributes::CLIENT_ADDRESS, ip.to_string()));
        }
        log.add_attributes(
            attrs
                .into_iter()
                .map(|kv| (kv.key, crate::handler::any_value(kv.value))),
        );
        for (key, value) in event.metadata() {
            let value = match value {
                serde_json::Value::Bool(b) => AnyValue::Boolean(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => AnyValue::Int(i),
                    None => AnyValue::Double(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => AnyValue::String(s.clone().into()),
                other => AnyValue::String(other.to_string().into()),
            };
            log.add_attribute(
                Key::from(format!("{}{key}", attributes::AUTH_EXTRA_PREFIX)),
                value,
            );
        }
        self.sink.count_log_emitted();
        logger.emit(log);
    }
}

impl Forwarder for OtlpForwarder {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            // Records were screened by core's policy when they were made, as for every sink.
            let before = self.sink.stats().logs_exported;
            for event in batch {
                self.emit(event);
            }
            let sink = self.sink.clone();
            let deadline = Instant::now() + self.flush_timeout;
            let flushed = tokio::task::spawn_blocking(move || sink.flush(deadline))
                .await
                .map_err(|e| ForwardError::transient("otlp: the flush task failed", e))?;
            let exported = self.sink.stats().logs_exported.saturating_sub(before);
            if exported >= batch.len() as u64 {
                return Ok(());
            }
            let why = match flushed {
                Err(e) => e.to_string(),
                Ok(()) => self
                    .sink
                    .stats()
                    .last_error
                    .unwrap_or_else(|| "no error reported".to_owned()),
            };
            Err(ForwardError::message(
                ErrorKind::Transient,
                format!(
                    "otlp: the collector at {} acknowledged {exported} of {} audit records: {why}",
                    self.sink.endpoint(),
                    batch.len()
                ),
            ))
        })
    }
}
