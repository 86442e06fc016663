//! An in-process OTLP receiver for exporter tests (feature `otlp-receiver`).
//!
//! No registry carries the OpenTelemetry Collector, so tests that export over OTLP need a
//! receiver of their own. [`OtlpReceiver`] speaks the real wire protocol on loopback:
//!
//! - **gRPC**: `opentelemetry-proto`'s generated `TraceService` and `LogsService` servers on
//!   tonic, at [`OtlpReceiver::grpc_endpoint`].
//! - **HTTP/protobuf**: `POST /v1/traces` and `POST /v1/logs`, bodies decoded with prost, at
//!   [`OtlpReceiver::http_endpoint`] — a tiny HTTP/1.1 handler (keep-alive, `Content-Length`
//!   bodies, no compression).
//!
//! Everything received is kept, decoded and as raw protobuf bytes, so a test can assert on
//! spans and log records and search the bytes for secrets. [`OtlpReceiver::stop`] and
//! [`OtlpReceiver::restart`] take it down and bring it back on the same ports, for "receiver
//! down" tests.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use authtel_testing::otlp::OtlpReceiver;
//! use std::time::Duration;
//!
//! let receiver = OtlpReceiver::start().await?;
//! // … point an exporter at receiver.grpc_endpoint() or receiver.http_endpoint(), export …
//! let arrived = receiver
//!     .wait_until(Duration::from_secs(10), |r| r.spans().iter().any(|s| s.name == "auth.login"))
//!     .await;
//! assert!(arrived);
//! receiver.stop().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// The generated OTLP types the receiver hands out, for assertions.
pub use opentelemetry_proto as proto;

/// Largest HTTP header block or body the receiver accepts, in bytes.
const MAX_HTTP_BYTES: usize = 16 * 1024 * 1024;

/// Which transport a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
}

#[derive(Default)]
struct Collected {
    traces: Vec<(Transport, ExportTraceServiceRequest)>,
    logs: Vec<(Transport, ExportLogsServiceRequest)>,
    raw: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Shared {
    collected: Mutex<Collected>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Collected> {
        self.collected.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_traces(&self, transport: Transport, raw: Vec<u8>, req: ExportTraceServiceRequest) {
        let mut c = self.lock();
        c.raw.push(raw);
        c.traces.push((transport, req));
        drop(c);
        self.changed.notify_waiters();
    }

    fn push_logs(&self, transport: Transport, raw: Vec<u8>, req: ExportLogsServiceRequest) {
        let mut c = self.lock();
        c.raw.push(raw);
        c.logs.push((transport, req));
        drop(c);
        self.changed.notify_waiters();
    }
}

struct GrpcService(Arc<Shared>);

#[tonic::async_trait]
impl TraceService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        // The decoded message re-encodes to the protobuf bytes that came over the wire
        // (modulo field order), which is what a secret search needs.
        self.0
            .push_traces(Transport::Grpc, req.encode_to_vec(), req);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        self.0.push_logs(Transport::Grpc, req.encode_to_vec(), req);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

struct Running {
    grpc_stop: oneshot::Sender<()>,
    grpc: JoinHandle<()>,
    http: JoinHandle<()>,
}

/// A running OTLP receiver on loopback; see the [module docs](self).
pub struct OtlpReceiver {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl OtlpReceiver {
    /// Starts a receiver on two free loopback ports (gRPC and HTTP). Needs a tokio runtime
    /// with I/O and time enabled.
    pub async fn start() -> io::Result<OtlpReceiver> {
        let grpc = TcpListener::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let receiver = OtlpReceiver {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            shared: Arc::default(),
            running: Mutex::new(None),
        };
        receiver.serve(grpc, http);
        Ok(receiver)
    }

    /// The gRPC endpoint, `http://127.0.0.1:PORT`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The HTTP/protobuf base endpoint, `http://127.0.0.1:PORT` (signals at `/v1/traces`,
    /// `/v1/logs`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Whether it is accepting requests.
    pub fn is_running(&self) -> bool {
        self.lock_running().is_some()
    }

    /// Stops accepting and closes every connection; what was received is kept.
    pub async fn stop(&self) {
        let Some(running) = self.lock_running().take() else {
            return;
        };
        let _ = running.grpc_stop.send(());
        running.http.abort();
        let _ = running.http.await;
        // Graceful shutdown waits for open HTTP/2 connections; don't wait forever for them.
        let grpc = running.grpc;
        let abort = grpc.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), grpc)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Starts again on the same ports after [`stop`](Self::stop).
    pub async fn restart(&self) -> io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let grpc = TcpListener::bind(self.grpc_addr).await?;
        let http = TcpListener::bind(self.http_addr).await?;
        self.serve(grpc, http);
        Ok(())
    }

    fn serve(&self, grpc: TcpListener, http: TcpListener) {
        let (grpc_stop, stopped) = oneshot::channel::<()>();
        let (traces, logs) = (
            GrpcService(self.shared.clone()),
            GrpcService(self.shared.clone()),
        );
        let grpc_task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(traces))
                .add_service(LogsServiceServer::new(logs))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        let shared = self.shared.clone();
        let http_task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = http.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve_http(stream, shared.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            // Aborting this task drops the JoinSet, which aborts every connection.
        });
        *self.lock_running() = Some(Running {
            grpc_stop,
            grpc: grpc_task,
            http: http_task,
        });
    }

    fn lock_running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every trace export request, in arrival order, with its transport.
    pub fn trace_requests(&self) -> Vec<(Transport, ExportTraceServiceRequest)> {
        self.shared.lock().traces.clone()
    }

    /// Every log export request, in arrival order, with its transport.
    pub fn log_requests(&self) -> Vec<(Transport, ExportLogsServiceRequest)> {
        self.shared.lock().logs.clone()
    }

    /// Every span received, flattened across requests, resources and scopes.
    pub fn spans(&self) -> Vec<Span> {
        self.shared
            .lock()
            .traces
            .iter()
            .flat_map(|(_, r)| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    /// Every log record received, flattened across requests, resources and scopes.
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.shared
            .lock()
            .logs
            .iter()
            .flat_map(|(_, r)| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.iter().cloned())
            .collect()
    }

    /// The protobuf bytes of every request received (HTTP bodies as sent; gRPC messages
    /// re-encoded after decoding).
    pub fn raw_requests(&self) -> Vec<Vec<u8>> {
        self.shared.lock().raw.clone()
    }

    /// Everything received as text: the `Debug` rendering of every decoded request
    /// followed by the lossy UTF-8 of every raw body; for secret searches.
    pub fn dump(&self) -> String {
        let c = self.shared.lock();
        let mut out = format!("{:?}\n{:?}\n", c.traces, c.logs);
        for raw in &c.raw {
            out.push_str(&String::from_utf8_lossy(raw));
            out.push('\n');
        }
        out
    }

    /// Waits until `done(self)` holds, re-checking whenever a request arrives (and at
    /// least every 100 ms); `false` when `timeout` passes first.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&OtlpReceiver) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wait, changed).await;
        }
    }
}

/// The text of attribute `key`, if present (strings as is, other values formatted).
///
/// ```
/// use authtel_testing::otlp::attribute;
/// use authtel_testing::otlp::proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
/// let attrs = [KeyValue {
///     key: "user.id".into(),
///     value: Some(AnyValue { value: Some(any_value::Value::StringValue("u_1".into())) }),
///     ..Default::default()
/// }];
/// assert_eq!(attribute(&attrs, "user.id").as_deref(), Some("u_1"));
/// assert_eq!(attribute(&attrs, "session.id"), None);
/// ```
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The strings of an array-valued attribute (`auth.factors`), or `None` when `key` is
/// absent or not an array of strings.
pub fn string_array(attributes: &[KeyValue], key: &str) -> Option<Vec<String>> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    let any_value::Value::ArrayValue(array) = kv.value.as_ref()?.value.as_ref()? else {
        return None;
    };
    array
        .values
        .iter()
        .map(|v| match v.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The text of an [`AnyValue`] (a log body, for instance).
pub fn any_value_text(value: &AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

/// One HTTP/1.1 connection: requests until the client closes it.
async fn serve_http(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let Some(head_end) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut content_length = None;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                close = true;
            }
        }
        buf.drain(..head_end + 4);
        let Some(len) = content_length.filter(|n| *n <= MAX_HTTP_BYTES) else {
            let _ = respond(&mut stream, "411 Length Required", &[]).await;
            return;
        };
        while buf.len() < len {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let status = match (method.as_str(), path.as_str()) {
            ("POST", "/v1/traces") => match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    shared.push_traces(Transport::HttpProtobuf, body, req);
                    Ok(ExportTraceServiceResponse {
                        partial_success: None,
                    }
                    .encode_to_vec())
                }
                Err(_) => Err("400 Bad Request"),
            },
            ("POST", "/v1/logs") => match ExportLogsServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    shared.push_logs(Transport::HttpProtobuf, body, req);
                    Ok(ExportLogsServiceResponse {
                        partial_success: None,
                    }
                    .encode_to_vec())
                }
                Err(_) => Err("400 Bad Request"),
            },
            _ => Err("404 Not Found"),
        };
        let written = match status {
            Ok(response) => respond(&mut stream, "200 OK", &response).await,
            Err(status) => respond(&mut stream, status, &[]).await,
        };
        if written.is_err() || close {
            return;
        }
    }
}

/// Reads until the end of an HTTP header block; the index of its `\r\n\r\n`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(pos);
        }
        if buf.len() > MAX_HTTP_BYTES {
            return None;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}
