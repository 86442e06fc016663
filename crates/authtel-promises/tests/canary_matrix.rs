//! The canary matrix: every secret class, in every form a careless application writes
//! it, planted in every position a caller controls, pushed through every sink at once
//! (logger, recent store, SQLite file and export, PostgreSQL, Kafka key/headers/payload,
//! OTLP, Prometheus, spill and dead-letter files), then searched for byte by byte in
//! every encoding (plain, base64 std/url-safe at every alignment, hex, percent, JSON).
//!
//! Exception and panic messages are off (the default) here; `canary_matrix_opted_in.rs`
//! runs the message positions with them exported.
//!
//! Out of scope, and not planted (`authtel_core::policy`, "What screening cannot
//! catch"): a bare secret with no shape (a password, a TOTP or backup code with no word
//! naming it) in free text or an identifier, and a bare secret whose only shape is
//! randomness in an identifier field (a random session id is random by design).

mod support;

use support::plant::{self, Position};
use support::sinks::Sinks;
use support::{canary, needles};

/// Runs the positions `keep` selects through a fresh set of sinks and asserts no hit.
async fn matrix(name: &str, keep: impl Fn(&Position) -> bool) -> Sinks {
    assert!(!authtel_core::policy::exception_messages(), "the default");
    let sinks = Sinks::start(name).await;
    let positions: Vec<Position> = plant::positions().into_iter().filter(keep).collect();
    let report = canary::run(&sinks, &positions).await;
    report.print(&format!("canary matrix, {name} (messages not exported)"));
    assert!(
        report.plants > 1000,
        "the matrix is real: {}",
        report.plants
    );
    assert_eq!(report.hits.len(), 0, "planted secrets reached a sink");
    assert_eq!(
        report.records_unscreened, 0,
        "records built from events must already pass the policy"
    );
    sinks
}

// The matrix is split three ways so each part runs in its own process, in parallel.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_planted_in_metadata_or_messages_reaches_any_sink() {
    let sinks = matrix("metadata", |p| {
        !matches!(
            p,
            Position::Record(_) | Position::RecordKey(_) | Position::Decoded(_)
        )
    })
    .await;

    // The search finds what does get through: an out-of-scope plant (a shapeless
    // password under an innocent key) is found in every sink that keeps extra fields.
    {
        let _scope = sinks.registry.enter();
        let m = authtel_core::metadata::Metadata::new()
            .user_id("u_canary")
            .with_extra("note", "Tr0ub4dorOutOfScope");
        tokio::task::block_in_place(|| {
            let _ = authtel_core::telemetry::span(&authtel_core::catalogue::AUTH_LOGIN, m, || true);
        });
    }
    sinks.settle().await;
    let search = needles::Search::new(&[vec!["Tr0ub4dorOutOfScope".to_owned()]]);
    let outputs = sinks.outputs().await;
    // A forwarder's (clean) error text is written, so the planted error texts were read.
    let written: Vec<&str> = outputs
        .iter()
        .filter(|(_, b)| b.windows(15).any(|w| w == b"schema mismatch"))
        .map(|(n, _)| n.as_str())
        .collect();
    println!("a clean forwarder error text is written to: {written:?}");
    assert!(!written.is_empty(), "forwarder error texts reach no output");
    let found: Vec<String> = outputs
        .iter()
        .filter(|(name, bytes)| !search.hits(name, bytes).is_empty())
        .map(|(name, _)| name.clone())
        .collect();
    println!("out-of-scope control plant found in: {found:?}");
    for sink in [
        "log",
        "recent_store",
        "sqlite_export",
        "otlp",
        "spill_files",
    ] {
        assert!(
            found.iter().any(|f| f == sink),
            "control plant not found in {sink}: {found:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_planted_in_a_hand_built_record_reaches_any_sink() {
    matrix("hand_built", |p| {
        matches!(p, Position::Record(_) | Position::RecordKey(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_a_decoded_record_reaches_any_sink() {
    matrix("decoded", |p| matches!(p, Position::Decoded(_))).await;
}

/// The search's base64 needles are found whatever the secret's offset in the encoded text.
#[test]
fn base64_needles_match_every_alignment() {
    assert_eq!(
        needles::base64(b"hello", needles::STANDARD, true),
        "aGVsbG8="
    );
    let text = format!("xx{}yy", "secret-needle-1");
    for skip in 0..3 {
        let encoded = needles::base64(&text.as_bytes()[skip..], needles::STANDARD, true);
        assert!(
            needles::base64_inner(b"secret-needle-1", needles::STANDARD)
                .iter()
                .any(|e| encoded.contains(e.as_str())),
            "alignment {skip}"
        );
    }
}

/// A code made of digits inside a random hex id is not a leak; the same code in text is.
/// (CI once failed on span id `fee1b6cd40218189`, which holds the TOTP canary `40218189`.)
#[test]
fn a_code_inside_a_random_id_is_not_a_leak() {
    let search = needles::Search::new(&[vec!["40218189".to_owned()]]);
    let hits = |text: &str| search.hits("log", text.as_bytes()).len();
    assert_eq!(hits(r#"{"span_id":"fee1b6cd40218189","n":1}"#), 0);
    assert_eq!(hits("id 0192f3a4-7b1c-7e2d-9a4f-40218189abcd done"), 0);
    assert_eq!(hits("Cookie: theme=dark; session=40218189"), 1);
    assert_eq!(hits("totp 40218189 was wrong"), 1);
    assert_eq!(hits("q=%3D40218189%3B"), 1);
    assert_eq!(hits(r#"{"reason":"code=40218189"}"#), 1);
    // Digits on either side: part of a longer number, as before.
    assert_eq!(hits("t=1740218189000"), 0);
}
