//! Stored values are attacker-controlled (a user agent, a resource, an actor id): every page
//! that shows them escapes them, so a planted `<script>` or a quote that would close an
//! attribute renders as text.

mod support;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;
use support::{Fixture, Sse, event_record_id, record_links};

const SCRIPT: &str = "<script>alert(\"xss\")</script>";
const ATTR: &str = "\"><img src=x onerror=alert(1)>";
const QUOTES: &str = "u'\"<b>";

fn hostile() -> AuditEvent {
    let mut e = AuditEvent::new("security.lockout", Outcome::Denied).unwrap();
    e = e.with_actor(Party::new(QUOTES, "user"));
    e = e.with_user_agent(SCRIPT.to_owned());
    e = e.with_resource(ATTR.to_owned());
    e = e.with_reason(format!("{SCRIPT}{ATTR}"));
    e = e.with_client_ip("192.0.2.66".parse().unwrap());
    e = e
        .with_metadata("note", serde_json::Value::String(SCRIPT.to_owned()))
        .unwrap();
    e
}

fn assert_inert(page: &str, body: &str) {
    assert!(
        !body.contains("<script>alert"),
        "{page}: a raw <script> survived:\n{body}"
    );
    assert!(!body.contains("<img src=x"), "{page}: a raw <img> survived");
    assert!(!body.contains("<b>"), "{page}: a raw <b> survived");
    assert!(
        !body.contains(ATTR),
        "{page}: the attribute-closing payload survived"
    );
    assert!(
        !body.contains(QUOTES),
        "{page}: the quoted actor id survived raw"
    );
    assert!(
        body.contains("&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;"),
        "{page}: the payload is shown, escaped:\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_markup_renders_as_text_everywhere() {
    let f = Fixture::start("xss").await;
    let mut sse = Sse::open(f.addr, "/stream/events", &[]).await;
    let e = hostile();
    f.record(std::slice::from_ref(&e)).await;
    let search = f.get("/search?ip=192.0.2.66").await;
    assert_eq!(search.status, 200);
    assert_inert("search", &search.body);
    assert_eq!(record_links(&search.body), vec![e.id().to_string()]);
    let by_actor = f.get(&format!("/search?actor={}", "u%27%22%3Cb%3E")).await;
    assert_eq!(
        record_links(&by_actor.body),
        vec![e.id().to_string()],
        "search by a hostile actor id finds it"
    );
    assert!(
        by_actor.body.contains("value=\"u&#39;&quot;&lt;b&gt;\""),
        "the form echoes the filter escaped"
    );
    let detail = f
        .get(&format!(
            "/records/{}?at={}",
            e.id(),
            e.occurred_at().unix_micros()
        ))
        .await;
    assert_eq!(detail.status, 200);
    assert_inert("detail", &detail.body);
    let stream = f.get("/").await;
    assert_inert("live stream backlog", &stream.body);
    let detections = f.get("/detections").await;
    assert_inert("detections", &detections.body);
    // Over SSE the record travels as JSON (the page sets it with textContent).
    let got = sse.audit_events(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(event_record_id(&got[0]), e.id().to_string());
    let v: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
    assert_eq!(v["user_agent"], SCRIPT);
    assert!(!got[0].data.contains('\n'));
    // An error page echoing hostile input escapes it too.
    let err = f.get("/search?ip=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(err.status, 400);
    assert!(!err.body.contains("<script>alert"), "{}", err.body);
}
