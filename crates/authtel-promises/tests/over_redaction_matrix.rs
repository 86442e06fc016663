//! The over-redaction matrix: legitimate values that share words or shapes with secrets
//! (`token_type`, `otp_enabled: true`, "password reset link expired", opaque session ids,
//! browser user agents, factor codes such as `sms_otp`) survive every sink with their value
//! and JSON type: the log, the recent store, SQLite, PostgreSQL, the Kafka payload and the
//! OTLP span attributes.

mod support;

use authtel_core::catalogue;
use authtel_core::metadata::{Metadata, REDACTED};
use authtel_core::telemetry;
use authtel_core::vocabulary::AuthMethod;
use authtel_testing::otlp::proto::tonic::common::v1::any_value::Value as Any;
use serde_json::Value as Json;
use support::legit::{self, EXTRAS, FIELDS, Legit};
use support::sinks::Sinks;

/// One legitimate value: a standard text field, an extra field or a list of factors.
#[derive(Clone, Copy, Debug)]
enum Case {
    Field(&'static str, &'static str),
    Extra(&'static str, Legit),
    Factors(&'static [AuthMethod]),
}

/// Factor lists whose codes share words with secrets (`otp`, `code`, `key`, `password`).
const FACTOR_LISTS: [&[AuthMethod]; 3] = [
    &[AuthMethod::Password, AuthMethod::Totp],
    &[
        AuthMethod::Custom("sms_otp"),
        AuthMethod::Custom("backup_code"),
    ],
    &[AuthMethod::WebAuthn, AuthMethod::Custom("hardware_key")],
];

impl Case {
    fn key(self) -> &'static str {
        match self {
            Case::Field(k, _) | Case::Extra(k, _) => k,
            Case::Factors(_) => "factors",
        }
    }
    fn json(self) -> Json {
        match self {
            Case::Field(_, v) => Json::from(v),
            Case::Extra(k, _) if legit::BY_DESIGN.contains(&k) => Json::from(REDACTED),
            Case::Extra(_, v) => v.json(),
            Case::Factors(list) => Json::from(list.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
        }
    }
    fn pointer(self) -> String {
        match self {
            Case::Field(k, _) => legit::record_pointer(k),
            Case::Extra(k, _) => format!("/metadata/{k}"),
            Case::Factors(_) => "/metadata/factors".to_owned(),
        }
    }
}

fn cases() -> Vec<Case> {
    let mut c: Vec<Case> = FIELDS.iter().map(|&(k, v)| Case::Field(k, v)).collect();
    c.extend(EXTRAS.iter().map(|&(k, v)| Case::Extra(k, v)));
    c.extend(FACTOR_LISTS.map(Case::Factors));
    c
}

/// The records (as JSON) of a sink, by the `case` marker in their metadata.
fn by_case(records: impl IntoIterator<Item = Json>, n: usize) -> Vec<Option<Json>> {
    let mut out = vec![None; n];
    for r in records {
        if r["action"] == "auth.login.stop"
            && let Some(i) = r["metadata"]["case"].as_u64()
        {
            out[i as usize] = Some(r);
        }
    }
    out
}

fn json_lines(bytes: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How the log's `extra` text renders a value (see authtel-log).
fn log_pair(key: &str, v: &Json) -> String {
    match v {
        Json::String(s) if s.is_empty() || s.contains([' ', '=', '"']) => format!("{key}={s:?}"),
        Json::String(s) => format!("{key}={s}"),
        other => format!("{key}={other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_values_survive_every_sink_with_their_type() {
    let sinks = Sinks::start("over_redaction").await;
    let cases = cases();
    {
        let _scope = sinks.registry.enter();
        for (i, case) in cases.iter().enumerate() {
            let m = Metadata::new().with_extra("case", i as u64);
            let m = match *case {
                Case::Field(k, v) if Metadata::CODE_FIELDS.contains(&k) => {
                    m.with_code_field(k, v).expect("a code field")
                }
                Case::Field(k, v) => m.with_text_field(k, v).expect("a standard field"),
                Case::Extra(k, v) => m.with_extra(k, v.value()),
                Case::Factors(list) => m.factors(list),
            };
            tokio::task::block_in_place(|| {
                let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                    Err::<(), _>("invalid_password")
                });
            });
        }
    }
    sinks.settle().await;
    let outputs = sinks.outputs().await;
    let output = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    };
    let n = cases.len();

    // Each sink's view: for each case, the value found (or None).
    let mut views: Vec<(&str, Vec<Option<Json>>)> = Vec::new();
    let record_view = |records: Vec<Option<Json>>| -> Vec<Option<Json>> {
        records
            .iter()
            .zip(&cases)
            .map(|(r, c)| r.as_ref().and_then(|r| r.pointer(&c.pointer()).cloned()))
            .collect()
    };
    let recent: Vec<Json> = serde_json::from_slice(&output("recent_store").unwrap()).unwrap();
    views.push(("recent_store", record_view(by_case(recent, n))));
    views.push((
        "sqlite",
        record_view(by_case(json_lines(&output("sqlite_export").unwrap()), n)),
    ));
    if let Some(pg) = &sinks.postgres {
        let mut export = Vec::new();
        pg.export_ndjson(&authtel_sql::AuditQuery::new(), &mut export)
            .await
            .unwrap();
        views.push(("postgres", record_view(by_case(json_lines(&export), n))));
    }
    if let Some(kafka) = output("kafka") {
        views.push(("kafka_payload", record_view(by_case(json_lines(&kafka), n))));
    }
    // OTLP: the span's attribute, typed.
    let mut otlp = vec![None; n];
    for span in sinks.receiver.spans() {
        let attr = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.as_ref()?.value.clone())
        };
        let Some(Any::IntValue(i)) = attr("auth.extra.case") else {
            continue;
        };
        let case = cases[i as usize];
        let key = match case {
            Case::Field(k, _) => legit::otlp_attribute(k),
            Case::Extra(k, _) => format!("auth.extra.{k}"),
            Case::Factors(_) => "auth.factors".to_owned(),
        };
        otlp[i as usize] = attr(&key).map(|v| match v {
            Any::StringValue(s) => Json::from(s),
            Any::IntValue(n) => Json::from(n),
            Any::BoolValue(b) => Json::from(b),
            Any::DoubleValue(f) => Json::from(f),
            Any::ArrayValue(a) => Json::from(
                a.values
                    .iter()
                    .map(|v| match &v.value {
                        Some(Any::StringValue(s)) => Json::from(s.as_str()),
                        other => Json::from(format!("{other:?}")),
                    })
                    .collect::<Vec<_>>(),
            ),
            other => Json::from(format!("{other:?}")),
        });
    }
    views.push(("otlp_attributes", otlp));
    // The log: standard fields are JSON fields; extras are one `key=value` text, so a
    // value's type shows in its rendering (`true`, `42`, `0.75`, a bare or quoted string).
    let mut log = vec![None; n];
    for line in json_lines(&output("log").unwrap()) {
        if line["event"] != "auth.login.stop" {
            continue;
        }
        let Some(extra) = line["extra"].as_str() else {
            continue;
        };
        let Some(i) = extra
            .split(' ')
            .next()
            .and_then(|p| p.strip_prefix("case="))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        log[i] = match cases[i] {
            Case::Field(k, _) => line.get(k).cloned(),
            Case::Extra(k, v) => {
                let expected = cases[i].json();
                let pair = log_pair(k, &expected);
                let _ = v;
                extra.contains(&pair).then_some(expected)
            }
            // The log writes the list as one text, `password,totp`.
            Case::Factors(_) => line["factors"]
                .as_str()
                .map(|t| Json::from(t.split(',').collect::<Vec<_>>())),
        };
    }
    views.push(("log", log));

    let mut destroyed = Vec::new();
    for (sink, view) in &views {
        for (case, found) in cases.iter().zip(view) {
            if found.as_ref() != Some(&case.json()) {
                destroyed.push(format!(
                    "{sink}: {} = {} became {found:?}",
                    case.key(),
                    case.json()
                ));
            }
        }
    }
    println!(
        "over-redaction matrix: {} values ({} standard fields, {} extra fields, of which {} redacted by design and checked to be, {} factor lists) x {} sinks ({}) = {} cells; destroyed: {}",
        n,
        FIELDS.len(),
        EXTRAS.len(),
        legit::BY_DESIGN.len(),
        FACTOR_LISTS.len(),
        views.len(),
        views.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", "),
        n * views.len(),
        destroyed.len()
    );
    for d in &destroyed {
        println!("DESTROYED {d}");
    }
    let checked = sinks
        .records_checked
        .load(std::sync::atomic::Ordering::Relaxed);
    let unscreened = sinks
        .records_unscreened
        .load(std::sync::atomic::Ordering::Relaxed);
    println!("records built from events: {checked}, not already screened: {unscreened}");
    assert!(checked >= n as u64);
    // A record from_record builds that the policy would change again is stored one way
    // by the recent store (which trusts it) and another by SQL and Kafka (which screen).
    assert_eq!(
        unscreened, 0,
        "records built from events must already pass the policy"
    );
    assert!(views.len() >= 4, "the matrix covers the sinks");
    assert!(
        destroyed.is_empty(),
        "{} legitimate values destroyed",
        destroyed.len()
    );
}
