//! A real browser: headless Chromium, driven over WebDriver (chromedriver) with fantoccini,
//! logs in with the token, sees a lockout committed after page load arrive in the live
//! stream (so EventSource works and the CSP lets the console's own script run), checks that
//! a planted payload did not execute, searches by actor, opens the record, and checks that
//! the SVG timeline renders. A screenshot of each step lands under the target directory.
//!
//! Needs `CHROMIUM_BIN` and `CHROMEDRIVER_BIN` (`cargo xtask services install` installs
//! Debian's `chromium` and `chromium-driver`; the services env file exports both). In CI
//! (`CI` or `AUTHTEL_REQUIRE_SERVICES` set) their absence fails the test; elsewhere it falls
//! back to `/usr/bin/chromium` and `/usr/bin/chromedriver`, or skips saying why.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authtel_core::outcome::Outcome;
use fantoccini::{Client, ClientBuilder, Locator};
use support::{Fixture, TOKEN, login, record};

/// The browser binaries, or `None` (after saying why) when the test may skip.
fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_some();
    let from_env = |var: &str, default: &str| -> Option<PathBuf> {
        match std::env::var_os(var) {
            Some(p) => Some(PathBuf::from(p)),
            None if required => panic!(
                "{var} is not set but CI/AUTHTEL_REQUIRE_SERVICES requires the browser test; run \
                 `cargo xtask services install` (installs chromium and chromium-driver) and load \
                 the services env file (`set -a; . $AUTHTEL_SERVICES_DIR/env; set +a`)"
            ),
            None => Some(PathBuf::from(default)).filter(|p| p.is_file()),
        }
    };
    let chromium = from_env("CHROMIUM_BIN", "/usr/bin/chromium");
    let driver = from_env("CHROMEDRIVER_BIN", "/usr/bin/chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => {
            assert!(c.is_file(), "CHROMIUM_BIN={} is not a file", c.display());
            assert!(
                d.is_file(),
                "CHROMEDRIVER_BIN={} is not a file",
                d.display()
            );
            Some((c, d))
        }
        _ => {
            eprintln!(
                "skipping browser_drives_the_console: CHROMIUM_BIN/CHROMEDRIVER_BIN are not set and \
                 /usr/bin/chromium or /usr/bin/chromedriver is missing (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// The chromedriver this test started; killed (by its own handle) on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(bin: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(chromium: &PathBuf, driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(caps);
    builder
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_follows_the_stream_searches_and_sees_the_chart() {
    let Some((chromium, driver_bin)) = browser_paths() else {
        return;
    };
    let f = Fixture::start("browser").await;
    f.record(&[
        login("u_browser", Outcome::Success),
        login("u_browser", Outcome::Failure),
    ])
    .await;
    let driver = start_driver(&driver_bin).await;
    let profile = std::env::temp_dir().join(format!(
        "authtel-console-chromium-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let c = browser(&chromium, &driver, &profile).await;
    let base = format!("http://{}", f.addr);
    let result = drive(&c, &f, &base).await;
    let _ = c.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    result.unwrap();
}

async fn drive(c: &Client, f: &Fixture, base: &str) -> Result<(), fantoccini::error::CmdError> {
    // Without a session the console refuses; log in with the token.
    c.goto(&format!("{base}/search")).await?;
    assert!(c.source().await?.contains("not logged in"));
    c.goto(&format!("{base}/login")).await?;
    c.find(Locator::Css("input[name=token]"))
        .await?
        .send_keys(TOKEN)
        .await?;
    c.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await?.path() != "/" {
        assert!(
            Instant::now() < deadline,
            "login did not lead to the stream page: {}",
            c.current_url().await?
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The stream page's script ran (CSP allows it) and EventSource connected.
    let status = c.find(Locator::Id("stream-status")).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while status.text().await? != "live" {
        assert!(
            Instant::now() < deadline,
            "the live stream did not connect: {:?}",
            status.text().await?
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows_before = c.find_all(Locator::Css("#stream-rows tr")).await?.len();
    assert_eq!(
        rows_before, 2,
        "the page shows the records committed before it loaded"
    );

    // A lockout committed now appears within 1 s; its planted payload does not run.
    let mut lockout = record("security.lockout", "u_browser", Outcome::Denied);
    lockout = lockout.with_user_agent("<img src=x onerror=\"window.__pwned=1\">");
    lockout = lockout.with_reason("<script>window.__pwned=2</script>too many failures");
    let committed = Instant::now();
    f.record(std::slice::from_ref(&lockout)).await;
    let latency = loop {
        let first = c.find(Locator::Css("#stream-rows tr")).await?;
        if first.text().await?.contains("security.lockout") {
            break committed.elapsed();
        }
        assert!(
            committed.elapsed() < Duration::from_secs(5),
            "the lockout never reached the stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("lockout reached the browser's live stream {latency:?} after commit");
    assert!(
        latency <= Duration::from_secs(1),
        "the lockout took {latency:?} (over 1 s) to appear"
    );
    let row = c
        .find(Locator::Css("#stream-rows tr"))
        .await?
        .text()
        .await?;
    assert!(
        row.contains("<img src=x onerror="),
        "the payload shows as text: {row}"
    );
    assert_eq!(
        c.execute("return window.__pwned === undefined;", vec![])
            .await?,
        serde_json::json!(true)
    );
    screenshot(c, "1-live-stream").await;

    // Search by actor, open the lockout's detail.
    c.goto(&format!("{base}/search")).await?;
    c.find(Locator::Css("input[name=actor]"))
        .await?
        .send_keys("u_browser")
        .await?;
    c.find(Locator::Css("#search-form button[type=submit]"))
        .await?
        .click()
        .await?;
    let rows = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#results tbody tr"))
        .await?;
    let _ = rows;
    let all = c.find_all(Locator::Css("#results tbody tr")).await?;
    assert_eq!(all.len(), 3, "the actor's three records");
    let link = c
        .find(Locator::XPath(
            "//table[@id='results']//tr[td[2][text()='security.lockout']]/td[1]/a",
        ))
        .await?;
    link.click().await?;
    let record = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("record"))
        .await?;
    let text = record.text().await?;
    assert!(
        text.contains(&lockout.id().to_string()),
        "the detail shows the record: {text}"
    );
    assert!(
        text.contains("<script>window.__pwned=2</script>"),
        "the reason shows as text"
    );
    assert_eq!(
        c.execute("return window.__pwned === undefined;", vec![])
            .await?,
        serde_json::json!(true)
    );
    screenshot(c, "2-detail").await;

    // The timeline's SVG renders with its four series and a visible size.
    c.goto(&format!("{base}/timeline?minutes=15")).await?;
    let svg = c.find(Locator::Css("svg#timeline")).await?;
    assert_eq!(
        c.find_all(Locator::Css("svg#timeline g.series"))
            .await?
            .len(),
        4
    );
    assert!(
        !c.find_all(Locator::Css("svg#timeline g.series rect"))
            .await?
            .is_empty(),
        "bars are drawn"
    );
    let lockouts = c.find(Locator::Css("g[data-series=lockouts]")).await?;
    assert_eq!(lockouts.attr("data-total").await?.as_deref(), Some("1"));
    let width = c
        .execute(
            "return document.getElementById('timeline').getBoundingClientRect().width;",
            vec![],
        )
        .await?;
    assert!(
        width.as_f64().unwrap_or(0.0) > 100.0,
        "the chart has a rendered width: {width}"
    );
    let _ = svg;
    let shot = screenshot(c, "3-timeline").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    Ok(())
}
