//! `docs/ops` is tested, not just written: promtool checks and unit-tests the alert rules,
//! every alert has a firing and a non-firing case, every dashboard query parses, and the
//! rules, dashboard and metric table use exactly the metric names this crate exposes.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use authtel_prometheus::names;
use common::promtool;

const RULES: &str = "authtel-rules.yml";
const RULE_TESTS: &str = "authtel-rules_test.yml";
const DASHBOARD: &str = "grafana-dashboard.json";
const TABLE: &str = "metrics.md";

fn ops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ops")
}

fn read(name: &str) -> String {
    let path = ops_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn run_promtool(promtool: &Path, args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every `authtel_…` metric name in `text`, with histogram suffixes folded to the base name.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("authtel_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        found.insert(base.to_owned());
        rest = &tail[end..];
    }
    found
}

fn exposed() -> BTreeSet<String> {
    names::metric_names().map(str::to_owned).collect()
}

fn alert_names(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = promtool("alert_rules_pass_promtool_check_and_unit_tests") else {
        return;
    };
    let (ok, out) = run_promtool(&promtool, &["check", "rules", RULES], &ops_dir());
    assert!(ok, "promtool check rules {RULES} failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (ok, out) = run_promtool(&promtool, &["test", "rules", RULE_TESTS], &ops_dir());
    assert!(ok, "promtool test rules {RULE_TESTS} failed:\n{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_case() {
    let rules = read(RULES);
    let tests = read(RULE_TESTS);
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 9, "{alerts:?}");
    for alert in alerts {
        let silent = format!("alertname: {alert}\n    exp_alerts: []");
        let firing = format!("alertname: {alert}\n    exp_alerts:\n    - exp_labels:");
        assert!(tests.contains(&silent), "{alert} has no must-not-fire case");
        assert!(tests.contains(&firing), "{alert} has no must-fire case");
    }
}

#[test]
fn rules_dashboard_and_table_use_exactly_our_metric_names() {
    let exposed = exposed();
    for file in [RULES, RULE_TESTS, DASHBOARD] {
        let used = metric_names_in(&read(file));
        assert!(!used.is_empty(), "{file} uses no metric");
        let unknown: Vec<_> = used.difference(&exposed).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses unknown metrics {unknown:?}"
        );
    }
    let documented = metric_names_in(&read(TABLE));
    assert_eq!(
        documented.intersection(&exposed).count(),
        exposed.len(),
        "{TABLE} misses some of {exposed:?}"
    );
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is valid JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let text = read(DASHBOARD);
    for topic in [
        "auth.login",
        "mfa.verify",
        "lockout",
        "histogram_quantile",
        "pipeline",
    ] {
        assert!(
            text.contains(topic),
            "the dashboard shows nothing about {topic}"
        );
    }
    let Some(promtool) = promtool("every_dashboard_query_is_valid_promql") else {
        return;
    };
    // promtool parses expressions in rule files: wrap each query as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m");
        let quoted = serde_json::to_string(&expr).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("authtel-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard-rules.yml"), &rules).unwrap();
    let (ok, out) = run_promtool(&promtool, &["check", "rules", "dashboard-rules.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "a dashboard query does not parse:\n{out}\n{rules}");
}
