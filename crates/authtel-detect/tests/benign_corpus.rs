//! The benign corpus — 100,000 logins of 10,000 accounts over two weeks, with typos,
//! forgotten passwords, office NATs, CGNAT, mobile address changes, new devices, travel,
//! MFA and refreshes (see `tests/support/mod.rs`) — raises no signal at the default
//! thresholds; and the false-positive table in `docs/detect.md` is what the corpus gives at
//! stricter ones (regenerate it with `AUTHTEL_BLESS=1`).

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use authtel_core::catalogue::Category;
use authtel_detect::clock::ManualClock;
use authtel_detect::{DetectConfig, Detectors};
use authtel_testing::Capture;
use support::{Ev, Kind, Sig};

fn corpus() -> &'static [Ev] {
    static CORPUS: OnceLock<Vec<Ev>> = OnceLock::new();
    CORPUS.get_or_init(|| support::benign(support::SEED))
}

fn run(config: DetectConfig) -> Vec<Sig> {
    let clock = ManualClock::new();
    let detectors = Detectors::builder()
        .with_config(config)
        .with_clock(clock.clone())
        .with_geo(support::world_geo())
        .build()
        .unwrap();
    let capture = Capture::with_selection(Category::Security);
    detectors.attach(capture.registry()).unwrap();
    let _scope = capture.enter();
    support::replay(corpus(), &clock);
    support::signals(&capture.events())
}

#[test]
fn the_corpus_is_what_it_claims() {
    let events = corpus();
    let logins = events
        .iter()
        .filter(|e| e.kind == Kind::Login && e.outcome == authtel_core::outcome::Outcome::Success)
        .count();
    assert_eq!(logins, support::BENIGN_LOGINS);
    let failures = events
        .iter()
        .filter(|e| e.kind == Kind::Login && e.outcome != authtel_core::outcome::Outcome::Success)
        .count();
    let unknown = events
        .iter()
        .filter(|e| e.kind == Kind::Login && e.user.is_none())
        .count();
    // Office NATs: some address is shared by more than a hundred accounts.
    let mut per_ip: BTreeMap<std::net::IpAddr, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == Kind::Login) {
        if let (Some(ip), Some(u)) = (e.ip, e.user.as_deref()) {
            per_ip.entry(ip).or_default().insert(u);
        }
    }
    let widest = per_ip.values().map(|s| s.len()).max().unwrap_or(0);
    println!(
        "benign corpus: {} events, {logins} logins, {failures} failed logins ({unknown} unknown accounts), \
         {} addresses, widest shared address {widest} accounts",
        events.len(),
        per_ip.len()
    );
    assert!((7_000..12_000).contains(&failures), "{failures}");
    assert!(unknown > 1_000, "{unknown}");
    assert!(widest > 100, "{widest}");
}

#[test]
fn no_signal_at_the_default_thresholds() {
    let signals = run(DetectConfig::default());
    assert!(
        signals.is_empty(),
        "{} false positives: {:?}",
        signals.len(),
        &signals[..signals.len().min(20)]
    );
}

/// One row of the false-positive table: a rule, its threshold at each level.
struct Row {
    event: &'static str,
    rule: &'static str,
    key_kind: &'static str,
    setting: &'static str,
    values: [String; 4],
}

/// The levels: the defaults, then three stricter settings of every detector at once (the
/// detectors count independently, so one run per level measures every row).
fn level(n: usize) -> DetectConfig {
    let mut c = DetectConfig::default();
    let pick = |v: [u32; 4]| v[n];
    let b = &mut c.brute_force;
    b.ip_identifier_threshold = pick([10, 7, 5, 3]);
    b.ip_signal_threshold = pick([10, 7, 5, 3]);
    b.identifier_failure_factor = pick([30, 10, 5, 3]);
    let s = &mut c.spraying;
    s.ip_threshold = pick([20, 10, 5, 3]);
    s.prefix_threshold = pick([40, 20, 10, 5]);
    let st = &mut c.stuffing;
    st.min_attempts = pick([200, 100, 50, 20]);
    st.min_failure_pct = pick([50, 30, 20, 10]);
    st.min_distinct_identifiers = pick([100, 20, 10, 5]);
    st.min_distinct_ips = pick([20, 10, 5, 3]);
    st.unknown_user_threshold = pick([100, 20, 10, 5]);
    let m = &mut c.mfa;
    m.push_threshold = pick([5, 3, 2, 2]);
    m.denials_before_accept = pick([2, 2, 1, 1]);
    m.code_threshold = pick([5, 3, 2, 1]);
    let nl = &mut c.new_location;
    nl.require_both = n < 2;
    nl.min_history = pick([3, 2, 2, 1]);
    let t = &mut c.travel;
    t.max_speed_kmh = pick([1000, 800, 500, 300]);
    t.min_distance_km = pick([500, 300, 200, 100]);
    c
}

fn rows() -> Vec<Row> {
    let configs: Vec<DetectConfig> = (0..4).map(level).collect();
    let each = |f: &dyn Fn(&DetectConfig) -> String| -> [String; 4] {
        [
            f(&configs[0]),
            f(&configs[1]),
            f(&configs[2]),
            f(&configs[3]),
        ]
    };
    vec![
        Row {
            event: "security.brute_force",
            rule: "failures",
            key_kind: "ip_identifier",
            setting: "brute_force.ip_identifier_threshold",
            values: each(&|c| c.brute_force.ip_identifier_threshold.to_string()),
        },
        Row {
            event: "security.brute_force",
            rule: "failures",
            key_kind: "ip",
            setting: "brute_force.ip_signal_threshold",
            values: each(&|c| c.brute_force.ip_signal_threshold.to_string()),
        },
        Row {
            event: "security.brute_force",
            rule: "failures",
            key_kind: "identifier",
            setting: "brute_force.identifier_failure_factor",
            values: each(&|c| c.brute_force.identifier_failure_factor.to_string()),
        },
        Row {
            event: "security.password_spraying",
            rule: "distinct_identifiers",
            key_kind: "ip",
            setting: "spraying.ip_threshold",
            values: each(&|c| c.spraying.ip_threshold.to_string()),
        },
        Row {
            event: "security.password_spraying",
            rule: "distinct_identifiers",
            key_kind: "ip_prefix",
            setting: "spraying.prefix_threshold",
            values: each(&|c| c.spraying.prefix_threshold.to_string()),
        },
        Row {
            event: "security.credential_stuffing",
            rule: "failure_ratio",
            key_kind: "global",
            setting: "stuffing min attempts / failure % / accounts / addresses",
            values: each(&|c| {
                let s = &c.stuffing;
                format!(
                    "{}/{}%/{}/{}",
                    s.min_attempts,
                    s.min_failure_pct,
                    s.min_distinct_identifiers,
                    s.min_distinct_ips
                )
            }),
        },
        Row {
            event: "security.credential_stuffing",
            rule: "unknown_user_burst",
            key_kind: "global",
            setting: "stuffing.unknown_user_threshold",
            values: each(&|c| c.stuffing.unknown_user_threshold.to_string()),
        },
        Row {
            event: "security.mfa_fatigue",
            rule: "push_bombing",
            key_kind: "identifier",
            setting: "mfa.push_threshold",
            values: each(&|c| c.mfa.push_threshold.to_string()),
        },
        Row {
            event: "security.mfa_fatigue",
            rule: "deny_then_accept",
            key_kind: "identifier",
            setting: "mfa.denials_before_accept",
            values: each(&|c| c.mfa.denials_before_accept.to_string()),
        },
        Row {
            event: "security.mfa_guessing",
            rule: "code_guessing",
            key_kind: "identifier",
            setting: "mfa.code_threshold",
            values: each(&|c| c.mfa.code_threshold.to_string()),
        },
        Row {
            event: "security.suspicious_login",
            rule: "new_network_and_device",
            key_kind: "identifier",
            setting: "new_location min history, require both",
            values: each(&|c| {
                format!(
                    "{}, {}",
                    c.new_location.min_history, c.new_location.require_both
                )
            }),
        },
        Row {
            event: "security.suspicious_login",
            rule: "new_network",
            key_kind: "identifier",
            setting: "(with require_both off)",
            values: each(&|c| {
                if c.new_location.require_both {
                    "—".into()
                } else {
                    "on".into()
                }
            }),
        },
        Row {
            event: "security.suspicious_login",
            rule: "new_device",
            key_kind: "identifier",
            setting: "(with require_both off)",
            values: each(&|c| {
                if c.new_location.require_both {
                    "—".into()
                } else {
                    "on".into()
                }
            }),
        },
        Row {
            event: "security.impossible_travel",
            rule: "speed",
            key_kind: "identifier",
            setting: "travel max km/h, min km",
            values: each(&|c| format!("{}, {}", c.travel.max_speed_kmh, c.travel.min_distance_km)),
        },
        Row {
            event: "security.refresh_token_reuse",
            rule: "revoked_session",
            key_kind: "session",
            setting: "(no threshold)",
            values: each(&|_| "1".into()),
        },
    ]
}

fn table() -> String {
    let counts: Vec<BTreeMap<(String, String, String), usize>> =
        (0..4).map(|n| support::tally(&run(level(n)))).collect();
    let pct = |n: usize| n as f64 * 100.0 / support::BENIGN_LOGINS as f64;
    let mut out = String::from(
        "| signal | rule | key | setting | default | level 1 | level 2 | level 3 |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows() {
        let key = (
            row.event.to_owned(),
            row.rule.to_owned(),
            row.key_kind.to_owned(),
        );
        let cells: Vec<String> = (0..4)
            .map(|n| {
                let got = counts[n].get(&key).copied().unwrap_or(0);
                format!("{}: {} ({:.3}%)", row.values[n], got, pct(got))
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            row.event,
            row.rule,
            row.key_kind,
            row.setting,
            cells.join(" | ")
        ));
    }
    let total: Vec<usize> = counts.iter().map(|c| c.values().sum()).collect();
    out.push_str(&format!(
        "| all | | | | {} ({:.3}%) | {} ({:.3}%) | {} ({:.3}%) | {} ({:.3}%) |\n",
        total[0],
        pct(total[0]),
        total[1],
        pct(total[1]),
        total[2],
        pct(total[2]),
        total[3],
        pct(total[3])
    ));
    out
}

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/detect.md");
const START: &str =
    "<!-- false-positive table: generated by crates/authtel-detect/tests/benign_corpus.rs -->\n";
const END: &str = "<!-- end of false-positive table -->";

#[test]
fn the_false_positive_table_in_the_docs_is_current() {
    let table = table();
    let docs = std::fs::read_to_string(DOCS).unwrap_or_default();
    let (Some(a), Some(b)) = (docs.find(START), docs.find(END)) else {
        panic!("docs/detect.md has no false-positive table markers; the table is:\n{table}");
    };
    let current = &docs[a + START.len()..b];
    if current != table && std::env::var_os("AUTHTEL_BLESS").is_some() {
        let updated = format!("{}{START}{table}{}", &docs[..a], &docs[b..]);
        std::fs::write(DOCS, updated).unwrap();
        return;
    }
    assert_eq!(
        current, table,
        "docs/detect.md's false-positive table is stale; regenerate it: \
         AUTHTEL_BLESS=1 cargo test -p authtel-detect --test benign_corpus"
    );
}
