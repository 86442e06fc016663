//! What the tests share: a multi-thread tokio runtime whose every thread emits to the
//! test's own registry (so tests run in parallel without seeing each other's events), a
//! loopback axum server, and a raw HTTP/1.1 client.

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use authtel_core::registry::{Registry, ScopeGuard, Selection};
use authtel_testing::CaptureHandler;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

thread_local! {
    static SCOPE: RefCell<Option<ScopeGuard>> = const { RefCell::new(None) };
}

/// A registry with a capture handler attached to every event.
pub fn capture() -> (Registry, CaptureHandler) {
    let capture = CaptureHandler::new();
    let registry = Registry::new();
    registry
        .attach("capture", Selection::All, capture.clone())
        .unwrap();
    (registry, capture)
}

/// A multi-thread runtime (4 workers) whose threads, and the thread that calls `block_on`
/// (enter `registry` there yourself), emit to `registry`.
pub fn runtime(registry: &Registry) -> tokio::runtime::Runtime {
    let r = registry.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || {
            let guard = r.enter();
            SCOPE.with(|s| *s.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| {
            let guard = SCOPE.with(|s| s.borrow_mut().take());
            drop(guard);
        })
        .build()
        .unwrap()
}

/// Serves `app` on 127.0.0.1 (a free port) with axum's connect info; returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Sends one HTTP/1.1 request with these extra header lines; returns the status code and
/// body. Bounded: fails after 10 s.
pub async fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let response = request_raw(addr, path, headers).await;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The whole response (status line, headers, body) as text. Bounded: fails after 10 s.
pub async fn request_raw(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the server answered within 10 s")
}
