//! `authtel console` serves the web console on loopback for a SQLite or PostgreSQL store:
//! with the token it answers, without it 401; it refuses to start without a token, with a
//! weak one, or on a non-loopback address (exit 1, saying what to do).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use authtel_core::outcome::Outcome;
use support::{Backend, Fixture, command, event, on_both_backends};

const TOKEN: &str = "cli-console-token-0123456789";

fn args(f: &Fixture, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--database-url".to_owned(), f.url.clone()];
    if let Some(s) = &f.schema {
        all.extend(["--schema".to_owned(), s.clone()]);
    }
    all.extend(extra.iter().map(|a| (*a).to_owned()));
    all
}

/// One HTTP/1.1 GET; the status code and the body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}

fn console_serves_search_behind_the_token(backend: Backend) {
    let Some(f) = Fixture::new(backend, "console", &["siem"]) else {
        return;
    };
    f.record(&[event(
        "auth.login.stop",
        Outcome::Failure,
        "u_console",
        "192.0.2.9",
        1,
    )]);
    let mut child = command(&args(&f, &["console", "--listen", "127.0.0.1:0"]))
        .env("AUTHTEL_CONSOLE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("the console says where it listens: {line:?}"))
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let (status, _) = get(&addr, "/search", None);
        assert_eq!(status, 401);
        let (status, body) = get(&addr, "/search?actor=u_console", Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("1 records on this page"), "{body}");
        let (status, body) = get(&addr, "/outbox", Some(TOKEN));
        assert_eq!(status, 200);
        assert!(body.contains("<td>siem</td>"), "{body}");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn console_refuses_to_start_unsafely(backend: Backend) {
    let Some(f) = Fixture::new(backend, "console_refuses", &[]) else {
        return;
    };
    let run = |extra: &[&str], token: Option<&str>| {
        let mut c = command(&args(&f, extra));
        c.env_remove("AUTHTEL_CONSOLE_TOKEN");
        if let Some(t) = token {
            c.env("AUTHTEL_CONSOLE_TOKEN", t);
        }
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, err) = run(&["console", "--listen", "127.0.0.1:0"], None);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no access token") && err.contains("AUTHTEL_CONSOLE_TOKEN"),
        "{err}"
    );
    let (code, err) = run(&["console", "--listen", "127.0.0.1:0"], Some("short"));
    assert_eq!(code, Some(1));
    assert!(err.contains("fewer than 16"), "{err}");
    let (code, err) = run(&["console", "--listen", "0.0.0.0:0"], Some(TOKEN));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-remote"),
        "{err}"
    );
    let (code, err) = run(&["console", "--token-file", "/nonexistent/token"], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent/token"), "{err}");
}

on_both_backends!(
    console_serves_search_behind_the_token,
    console_refuses_to_start_unsafely
);
