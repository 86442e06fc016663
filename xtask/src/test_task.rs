//! `cargo xtask test`: the README's one test command. Provisions the services, then runs every
//! check CI runs, in order, and says which failed and how to run it again.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Result, bail};

use crate::services::{self, Guard};
use crate::util::{Cmd, root};

/// Options of `cargo xtask test`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TestOptions {
    /// Don't install/start/stop services; take `DATABASE_URL` etc. from the environment.
    pub(crate) no_services: bool,
}

/// One check: a name for the summary and the command.
#[derive(Debug)]
struct Step {
    name: String,
    cmd: Cmd,
    needs_services: bool,
}

fn nextest_available() -> bool {
    Command::new(crate::util::cargo())
        .args(["nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The facade's cargo features except `default`, read from its manifest's `[features]`.
fn facade_features() -> Vec<String> {
    let manifest = fs::read_to_string(root().join("crates/authtel/Cargo.toml")).unwrap_or_default();
    features_of(&manifest)
}

fn features_of(manifest: &str) -> Vec<String> {
    let mut in_features = false;
    let mut features = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') && name != "default" {
                features.push(name.to_owned());
            }
        }
    }
    features
}

/// The `docs/ops` files promtool should check: rule files and rule unit tests.
fn promtool_files() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut rules = Vec::new();
    let mut tests = Vec::new();
    let Ok(entries) = fs::read_dir(root().join("docs/ops")) else {
        return (rules, tests);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        if name.ends_with("_test.yml") {
            tests.push(PathBuf::from(name));
        } else if name.contains("rules") && name.ends_with(".yml") {
            rules.push(PathBuf::from(name));
        }
    }
    (rules, tests)
}

fn steps() -> Vec<Step> {
    let mut steps = vec![
        Step {
            name: "fmt".into(),
            cmd: Cmd::cargo(["fmt", "--all", "--check"]),
            needs_services: false,
        },
        Step {
            name: "clippy".into(),
            cmd: Cmd::cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
            needs_services: false,
        },
        Step {
            name: "docs".into(),
            // Broken intra-doc links and rustdoc lints fail the run, with every feature on
            // so feature-gated items are linked too.
            cmd: Cmd::cargo(["doc", "--workspace", "--no-deps", "--all-features"])
                .with_env("RUSTDOCFLAGS", "-D warnings"),
            needs_services: false,
        },
        if nextest_available() {
            Step {
                name: "tests (nextest)".into(),
                cmd: Cmd::cargo(["nextest", "run", "--workspace", "--no-fail-fast"]),
                needs_services: true,
            }
        } else {
            Step {
                name: "tests".into(),
                cmd: Cmd::cargo(["test", "--workspace", "--no-fail-fast"]),
                needs_services: true,
            }
        },
        Step {
            name: "doctests".into(),
            cmd: Cmd::cargo(["test", "--workspace", "--doc"]),
            needs_services: true,
        },
    ];
    // The core without its one optional feature (`internal-logs`, the `tracing` report of a
    // panicking handler): the `#[cfg]`-gated code must build both ways.
    steps.push(Step {
        name: "core: no defaults".into(),
        cmd: Cmd::cargo(["check", "-p", "authtel-core", "--no-default-features"]),
        needs_services: false,
    });
    // The facade's features one at a time (`cargo check`, no default features): a sink
    // that only builds together with another feature fails here.
    steps.push(Step {
        name: "features: none".into(),
        cmd: Cmd::cargo(["check", "-p", "authtel", "--no-default-features"]),
        needs_services: false,
    });
    for feature in facade_features() {
        steps.push(Step {
            name: format!("features: {feature}"),
            cmd: Cmd::cargo([
                "check",
                "-p",
                "authtel",
                "--no-default-features",
                "--features",
            ])
            .with_args([feature.as_str()]),
            needs_services: false,
        });
    }
    let (rules, tests) = promtool_files();
    let ops = root().join("docs/ops");
    if !rules.is_empty() {
        let mut cmd = Cmd::new("promtool", ["check", "rules"]).with_args(&rules);
        cmd.cwd = Some(ops.clone());
        steps.push(Step {
            name: "promtool check rules".into(),
            cmd,
            needs_services: false,
        });
    }
    if !tests.is_empty() {
        let mut cmd = Cmd::new("promtool", ["test", "rules"]).with_args(&tests);
        cmd.cwd = Some(ops);
        steps.push(Step {
            name: "promtool test rules".into(),
            cmd,
            needs_services: false,
        });
    }
    steps
}

/// Runs all checks; every step runs even after a failure, and the summary names each failure.
pub(crate) fn run(opts: TestOptions) -> Result<()> {
    let started = Instant::now();
    let guard = if opts.no_services {
        None
    } else {
        Some(Guard::provision()?)
    };
    let service_env = if opts.no_services {
        Vec::new()
    } else {
        services::env_vars()
    };

    let mut results = Vec::new();
    for mut step in steps() {
        eprintln!("\n==> {}", step.name);
        if step.needs_services {
            step.cmd.envs.extend(service_env.iter().cloned());
        }
        let step_started = Instant::now();
        let ok = match step.cmd.run_status() {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("error: {e:#}");
                false
            }
        };
        results.push((step, ok, step_started.elapsed()));
    }
    drop(guard);

    eprintln!("\n==> summary ({:.0} s)", started.elapsed().as_secs_f64());
    for (step, ok, took) in &results {
        eprintln!(
            "  {:<4} {:<22} {:>6.1} s",
            if *ok { "ok" } else { "FAIL" },
            step.name,
            took.as_secs_f64()
        );
    }
    let failed: Vec<_> = results.iter().filter(|(_, ok, _)| !ok).collect();
    // A plain closing line, so a reader of the log sees the verdict last.
    eprintln!(
        "steps: {} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        return Ok(());
    }
    for (step, _, _) in &failed {
        let repro = if step.needs_services && !opts.no_services {
            format!(
                "eval \"$(cargo xtask services start)\" && {}",
                step.cmd.display()
            )
        } else {
            step.cmd.display()
        };
        eprintln!("FAILED step `{}`; to reproduce run: {repro}", step.name);
        if step.name == "fmt" {
            eprintln!("  (to fix formatting: cargo fmt --all)");
        }
    }
    bail!(
        "{} of {} steps failed: {}",
        failed.len(),
        results.len(),
        failed
            .iter()
            .map(|(s, _, _)| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facade_features_are_read_from_its_manifest() {
        let features = facade_features();
        for expected in [
            "log", "audit", "pipeline", "sql", "postgres", "kafka", "otlp",
        ] {
            assert!(
                features.iter().any(|f| f == expected),
                "{expected} in {features:?}"
            );
        }
        assert!(!features.iter().any(|f| f == "default"));
    }

    #[test]
    fn only_the_features_table_counts() {
        let manifest = "[package]\nname = \"x\"\n[features]\ndefault = [\"a\"]\n## doc\na = []\nb = [\"dep:c\"]\n[dependencies]\nc = \"1\"\n";
        assert_eq!(features_of(manifest), ["a", "b"]);
    }
}
