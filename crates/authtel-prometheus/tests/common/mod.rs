//! Helpers shared by the integration tests: a tiny HTTP GET and promtool discovery.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GETs `path` from `address` with a bounded retry loop; returns (status line, body).
pub fn http_get(address: SocketAddr, path: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_error = String::new();
    while Instant::now() < deadline {
        match try_get(address, path) {
            Ok(response) => return response,
            Err(e) => last_error = e.to_string(),
        }
        std::thread::yield_now();
    }
    panic!("GET http://{address}{path} kept failing for 20 s: {last_error}");
}

fn try_get(address: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("no complete HTTP response: {text:?}"),
        ));
    };
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// Whether a missing tool must fail the test instead of skipping it.
pub fn tools_required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("AUTHTEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `promtool` if installed. Without it: `None` with a skip message, or a failure under CI.
pub fn promtool(test: &str) -> Option<PathBuf> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(PathBuf::from("promtool"));
    }
    assert!(
        !tools_required(),
        "{test}: promtool is not installed but CI/AUTHTEL_REQUIRE_SERVICES requires it; install Debian's `prometheus` package (cargo xtask test does)"
    );
    eprintln!("SKIP {test}: promtool is not installed (apt-get install prometheus)");
    None
}

/// Runs `promtool check metrics` on `exposition`; returns (success, combined output).
pub fn promtool_check_metrics(promtool: &PathBuf, exposition: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(exposition.as_bytes())
        .expect("promtool reads the exposition");
    let out = child.wait_with_output().expect("promtool finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The value of the sample line `series` (exact name and labels) in `exposition`.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// The sample lines (series) of an exposition, comments excluded.
pub fn series(exposition: &str) -> Vec<&str> {
    exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}
