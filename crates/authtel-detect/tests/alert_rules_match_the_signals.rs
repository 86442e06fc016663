//! `docs/ops/authtel-detect-rules.yml` is tested, not just written: every detector signal
//! has an alert, every alert names a real signal and has a firing and a silent promtool
//! case, and promtool checks and unit-tests the rules (skipped without promtool, required
//! under CI).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RULES: &str = "authtel-detect-rules.yml";
const TESTS: &str = "authtel-detect-rules_test.yml";

fn ops() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ops")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(ops().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

#[test]
fn every_signal_has_an_alert_and_every_alert_two_cases() {
    let rules = read(RULES);
    let tests = read(TESTS);
    let named: BTreeSet<&str> = rules
        .split("signal=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let signals: BTreeSet<&str> = authtel_detect::signal_events()
        .iter()
        .map(|e| e.name())
        .collect();
    assert_eq!(named, signals, "alerts and detector signals differ");
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let silent = format!("alertname: {alert}\n    exp_alerts: []");
        let firing = format!("alertname: {alert}\n    exp_alerts:\n    - exp_labels:");
        assert!(tests.contains(&silent), "{alert} has no must-not-fire case");
        assert!(tests.contains(&firing), "{alert} has no must-fire case");
    }
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required under CI (cargo xtask services install)"
        );
        eprintln!("skipping: promtool is not installed");
        return;
    }
    for args in [["check", "rules", RULES], ["test", "rules", TESTS]] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(ops())
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
