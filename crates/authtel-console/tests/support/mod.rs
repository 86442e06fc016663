// Fixtures for the console tests: a migrated SQLite store in a temporary file, the console
// served on 127.0.0.1:0, and a small HTTP/1.1 client over a raw TCP socket (so every byte
// the console sends, headers included, is what the test sees), with an SSE reader.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_console::Console;
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::sqlite::Sqlite;
use authtel_sql::{AuditStore, Relay, RelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The token every fixture's console accepts.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Serves a console on `store` at 127.0.0.1:0 with [`TOKEN`] and a 50 ms poll; it stops
/// when the returned sender is used or dropped.
pub async fn serve(
    store: impl authtel_console::ConsoleStore,
    self_audit: bool,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let console = Console::builder(store)
        .with_token(TOKEN)
        .unwrap()
        .with_poll_interval(Duration::from_millis(50))
        .with_self_audit(self_audit)
        .build()
        .unwrap();
    let listener = authtel_console::bind("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(console.serve_on(listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// A console on a fresh store.
pub struct Fixture {
    pub store: AuditStore<Sqlite>,
    pub addr: SocketAddr,
    pub path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Fixture {
    /// A migrated store with forwarder `siem`, and a console on it with [`TOKEN`], not
    /// recording its own reads (so streams and counts see only what the test writes).
    pub async fn start(name: &str) -> Fixture {
        Fixture::start_with(name, false).await
    }

    /// Like [`Fixture::start`], choosing whether the console audits itself.
    pub async fn start_with(name: &str, self_audit: bool) -> Fixture {
        let dir = std::env::temp_dir().join("authtel-console-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{}.db", uuid::Uuid::now_v7().simple()));
        let pool = authtel_sql::sqlite::connect(path.to_str().unwrap())
            .await
            .unwrap();
        let store = AuditStore::builder(pool)
            .with_forwarder("siem")
            .unwrap()
            .build();
        store.migrate().await.unwrap();
        let (addr, tx) = serve(store.clone(), self_audit).await;
        Fixture {
            store,
            addr,
            path,
            stop: Some(tx),
        }
    }

    /// Commits `events` in one transaction.
    pub async fn record(&self, events: &[AuditEvent]) {
        let mut tx = self.store.begin().await.unwrap();
        for e in events {
            tx.record(e).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// One relay pass in which forwarder `siem` fails permanently: its entries die.
    pub async fn kill_deliveries(&self) {
        let relay = Relay::new(&self.store, RelayConfig::default())
            .with_forwarder("siem", Arc::new(Failing))
            .unwrap();
        relay.run_once().await.unwrap();
    }

    /// Dead entries of `siem`.
    pub async fn dead(&self) -> u64 {
        self.store
            .delivery_state()
            .await
            .unwrap()
            .iter()
            .find(|s| s.forwarder == "siem")
            .map_or(0, |s| s.dead)
    }

    /// A request with the bearer token.
    pub async fn get(&self, path: &str) -> Response {
        let auth = format!("Bearer {TOKEN}");
        request(self.addr, "GET", path, &[("authorization", &auth)], "").await
    }

    /// Logs in through the form; the session cookie and the CSRF token of `page`.
    pub async fn login(&self) -> (String, String) {
        let r = request(
            self.addr,
            "POST",
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("token={TOKEN}"),
        )
        .await;
        assert_eq!(r.status, 303, "{r:?}");
        let set = r
            .header("set-cookie")
            .expect("login sets a cookie")
            .to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        let page = request(self.addr, "GET", "/outbox", &[("cookie", &cookie)], "").await;
        assert_eq!(page.status, 200, "{page:?}");
        let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"")
            .expect("the outbox page has a CSRF field")
            .to_owned();
        (cookie, csrf)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// Always fails permanently.
#[derive(Debug)]
pub struct Failing;

impl Forwarder for Failing {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Permanent,
                "deliver to siem.internal:6514: refused",
            ))
        })
    }
}

/// A login record of `actor`.
pub fn login(actor: &str, outcome: Outcome) -> AuditEvent {
    record("auth.login.stop", actor, outcome)
}

/// A record of `action` by `actor` from the same client as [`login`].
pub fn record(action: &str, actor: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(action, outcome)
        .unwrap()
        .with_actor(Party::new(actor, "user"))
        .with_client_ip("192.0.2.7".parse().unwrap())
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The text between `start` and the next `end` in `s`.
pub fn between<'s>(s: &'s str, start: &str, end: &str) -> Option<&'s str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// The record ids linked from a page (`/records/<uuid>?at=`), in page order.
pub fn record_links(body: &str) -> Vec<String> {
    body.match_indices("/records/")
        .map(|(i, _)| body[i + 9..i + 9 + 36].to_owned())
        .collect()
}

fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text
}

/// Sends one request and reads the whole response (bounded: 10 s).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw_request(addr, method, path, headers, body).as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the console answered within 10 s")
        .unwrap();
    parse(&raw).0
}

/// Splits a raw response into head and (de-chunked) body; also returns whether the body
/// was complete.
fn parse(raw: &[u8]) -> (Response, bool) {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let (body, complete) = if chunked {
        dechunk(rest)
    } else {
        (rest.to_owned(), true)
    };
    (
        Response {
            status,
            headers,
            body,
        },
        complete,
    )
}

fn dechunk(mut rest: &str) -> (String, bool) {
    let mut body = String::new();
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return (body, false);
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return (body, false);
        };
        if n == 0 {
            return (body, true);
        }
        if after.len() < n {
            body.push_str(after);
            return (body, false);
        }
        body.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// An open `text/event-stream` connection.
pub struct Sse {
    stream: TcpStream,
    raw: Vec<u8>,
    consumed: usize,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Sse {
    /// Opens `/stream/events` with the token and `extra` headers.
    pub async fn open(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Sse {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("accept", "text/event-stream"),
        ];
        headers.extend_from_slice(extra);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(raw_request(addr, "GET", path, &headers, "").as_bytes())
            .await
            .unwrap();
        let mut sse = Sse {
            stream,
            raw: Vec::new(),
            consumed: 0,
            status: 0,
            headers: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sse.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            sse.read_more(deadline).await;
        }
        let (r, _) = parse(&sse.raw);
        sse.status = r.status;
        sse.headers = r.headers;
        sse
    }

    async fn read_more(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 8192];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => false,
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Ok(Err(e)) => panic!("reading the event stream: {e}"),
        }
    }

    /// Every complete event received so far that was not returned before.
    fn take_events(&mut self) -> Vec<SseEvent> {
        let (r, _) = parse(&self.raw);
        let body = r.body.replace("\r\n", "\n");
        let mut out = Vec::new();
        let mut end = 0;
        for (i, _) in body.match_indices("\n\n") {
            let block = &body[end..i];
            end = i + 2;
            let mut e = SseEvent {
                id: None,
                event: "message".into(),
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    e.id = Some(v.trim().to_owned());
                    any = true;
                } else if let Some(v) = line.strip_prefix("event:") {
                    e.event = v.trim().to_owned();
                    any = true;
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    any = true;
                }
            }
            if any {
                out.push(e);
            }
        }
        let new = out.split_off(self.consumed.min(out.len()));
        self.consumed += new.len();
        new
    }

    /// Waits (at most `within`) until `n` `audit` events arrived; returns those received.
    pub async fn audit_events(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        loop {
            got.extend(
                self.take_events()
                    .into_iter()
                    .filter(|e| e.event == "audit"),
            );
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            if !self.read_more(deadline).await {
                got.extend(
                    self.take_events()
                        .into_iter()
                        .filter(|e| e.event == "audit"),
                );
                return got;
            }
        }
    }
}

/// The record id inside an `audit` event's JSON.
pub fn event_record_id(e: &SseEvent) -> String {
    let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    v["id"].as_str().unwrap().to_owned()
}
