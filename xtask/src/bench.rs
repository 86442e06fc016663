//! `cargo xtask bench [--quick] [--no-services] [--rounds N] [-p CRATE]... [-- <bench args>]`:
//! runs every benchmark (or those of the named crates) and prints one markdown table of
//! medians and ratios against baselines. With `--rounds N` it runs them N times and the
//! table gives, per row, the median over the rounds and the min–max of the value, the
//! baseline and the ratio (see [`crate::bench_table`]): on a shared or noisy machine one
//! run's ratio can be off by half, and the spread says how far to trust it.
//!
//! # Naming convention (other crates' benches follow it)
//!
//! - A criterion benchmark group is named for the topic: `c.benchmark_group("event")`.
//! - Each case's function id is the case name (`nothing_attached`, `one_noop_handler`); a
//!   baseline's function id starts with `baseline:` (`baseline:tracing_info_no_subscriber`).
//! - In a group, every case is paired with the group's baseline. When a group has several
//!   baselines, a case names its own as `case@baseline`: the function id
//!   `one_handler@tracing_info` pairs with `baseline:tracing_info`. An unpaired case shows `—`.
//! - Parameterised cases (`BenchmarkId::new("case", param)`) pair with the baseline of the same
//!   parameter, else with an unparameterised baseline.
//! - `group.throughput(Throughput::Elements(n))` makes the table show ns per element.
//! - Ratio = case median / baseline median, two decimals: `3.10` means 3.1 times the baseline.
//!
//! Bench targets need `harness = false`, and library targets `[lib] bench = false`, because
//! `--quick` passes criterion's `--warm-up-time 1 --measurement-time 2` to every bench binary.
//!
//! # Rows from other bench binaries
//!
//! A bench that is not criterion (e.g. a throughput run against a real broker) appends JSON
//! lines to a file in `$AUTHTEL_BENCH_DIR` (= `$CARGO_TARGET_DIR/authtel-bench`), named
//! `<something>.jsonl`, one object per row:
//! `{"case": "kafka/send_batch", "value": 1234.5, "unit": "ns/msg", "baseline": "raw rdkafka",
//! "baseline_value": 1100.0, "ratio": 1.12}`; `baseline`, `baseline_value` and `ratio` may be
//! `null` or absent (the ratio is computed when both values are there). xtask empties that
//! folder before the run. `AUTHTEL_BENCH_QUICK=1` is set with `--quick`.
//!
//! Only criterion results written during this run are shown, so deleted benches don't linger.
//! The table also goes to `$CARGO_TARGET_DIR/bench-table.md`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::bench_table::{self, Row};
use crate::json::Json;
use crate::services::{self, Guard};
use crate::util::{Cmd, target_dir};

/// Options of `cargo xtask bench`.
#[derive(Debug, Default, Clone)]
pub(crate) struct BenchOptions {
    /// Short warm-up and measurement (about 3 s per case).
    pub(crate) quick: bool,
    /// Don't provision services.
    pub(crate) no_services: bool,
    /// Extra arguments for the bench binaries (after `--`), e.g. a filter.
    pub(crate) extra: Vec<String>,
    /// How many times to run everything (at least 1).
    pub(crate) rounds: usize,
    /// Only these crates' benches (`-p`); all of the workspace's when empty.
    pub(crate) packages: Vec<String>,
}

/// One criterion measurement.
#[derive(Debug, Clone, PartialEq)]
struct Measured {
    group: String,
    function: String,
    value: Option<String>,
    median_ns: f64,
    elements: Option<f64>,
}

impl Measured {
    /// ns per op, or per element when the group declared `Throughput::Elements`.
    fn per_unit(&self) -> (f64, &'static str) {
        match self.elements {
            Some(n) if n > 0.0 => (self.median_ns / n, "ns/element"),
            _ => (self.median_ns, "ns/op"),
        }
    }
}

/// Reads every `new/estimates.json` (+ its `benchmark.json`) under `dir` modified at or after
/// `since`.
fn collect_criterion(dir: &Path, since: Option<SystemTime>) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let estimates = path.join("estimates.json");
            if path.file_name().is_some_and(|n| n == "new") && estimates.is_file() {
                let fresh = since.is_none_or(|since| {
                    fs::metadata(&estimates)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= since)
                });
                if fresh {
                    out.push(read_measured(&path)?);
                }
            } else {
                stack.push(path);
            }
        }
    }
    out.sort_by(|a, b| (&a.group, &a.function, &a.value).cmp(&(&b.group, &b.function, &b.value)));
    Ok(out)
}

fn read_json(path: &Path) -> Result<Json> {
    let text =
        fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    Json::parse(&text).with_context(|| format!("could not parse {}", path.display()))
}

fn read_measured(new_dir: &Path) -> Result<Measured> {
    let estimates = read_json(&new_dir.join("estimates.json"))?;
    let median_ns = estimates
        .get("median")
        .and_then(|m| m.get("point_estimate"))
        .and_then(Json::as_f64)
        .with_context(|| {
            format!(
                "no median.point_estimate in {}/estimates.json",
                new_dir.display()
            )
        })?;
    let bench = read_json(&new_dir.join("benchmark.json"))?;
    let text = |key: &str| bench.get(key).and_then(Json::as_str).map(str::to_owned);
    let group = text("group_id").unwrap_or_default();
    let function = text("function_id").unwrap_or_default();
    let elements = bench.get("throughput").and_then(|t| {
        t.get("Elements").and_then(Json::as_f64).or_else(|| {
            t.get("ElementsAndBytes")
                .and_then(|e| e.get("elements"))
                .and_then(Json::as_f64)
        })
    });
    Ok(Measured {
        group,
        function,
        value: text("value_str"),
        median_ns,
        elements,
    })
}

fn label(m: &Measured, function: &str) -> String {
    let mut s = if m.group.is_empty() {
        function.to_owned()
    } else {
        format!("{}/{function}", m.group)
    };
    if let Some(v) = &m.value {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// Pairs cases with baselines by the naming convention in the module docs; `results` sorted by
/// group (as [`collect_criterion`] returns them).
fn pair(results: &[Measured]) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut baseline_rows: Vec<Row> = Vec::new();
    for (i, m) in results.iter().enumerate() {
        // Each group's baselines follow its cases (results are sorted by group).
        if i > 0 && results[i - 1].group != m.group {
            rows.append(&mut baseline_rows);
        }
        let (value, unit) = m.per_unit();
        if m.function.starts_with("baseline:") {
            baseline_rows.push(Row {
                case: label(m, &m.function),
                value,
                baseline: None,
                baseline_value: None,
                ratio: None,
                unit: unit.into(),
            });
            continue;
        }
        let (case_name, wanted) = match m.function.split_once('@') {
            Some((case, base)) => (case, Some(base)),
            None => (m.function.as_str(), None),
        };
        let in_group: Vec<&Measured> = results
            .iter()
            .filter(|b| b.group == m.group && b.function.starts_with("baseline:"))
            .collect();
        let mut names: Vec<&str> = in_group
            .iter()
            .map(|b| &b.function["baseline:".len()..])
            .collect();
        names.sort_unstable();
        names.dedup();
        let name = match (wanted, names.as_slice()) {
            (Some(w), _) => Some(w),
            (None, [only]) => Some(*only),
            _ => None,
        };
        let baseline = name.and_then(|name| {
            let candidates = || {
                in_group
                    .iter()
                    .filter(|b| &b.function["baseline:".len()..] == name)
            };
            candidates()
                .find(|b| b.value == m.value)
                .or_else(|| candidates().find(|b| b.value.is_none()))
        });
        let (baseline, baseline_value) = match baseline {
            Some(b) => (Some(label(b, &b.function)), Some(b.per_unit().0)),
            None => (None, None),
        };
        let ratio = baseline_value.filter(|v| *v > 0.0).map(|b| value / b);
        rows.push(Row {
            case: label(m, case_name),
            value,
            baseline,
            baseline_value,
            ratio,
            unit: unit.into(),
        });
    }
    rows.extend(baseline_rows);
    rows
}

/// Reads the JSON-lines rows that non-criterion benches wrote into `dir`.
fn collect_jsonl(dir: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(rows);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file)?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let where_ = || format!("{}:{}", file.display(), n + 1);
            let v = Json::parse(line).with_context(where_)?;
            let case = v
                .get("case")
                .and_then(Json::as_str)
                .with_context(|| format!("{}: no \"case\"", where_()))?;
            let value = v
                .get("value")
                .and_then(Json::as_f64)
                .with_context(|| format!("{}: no numeric \"value\"", where_()))?;
            let baseline_value = v.get("baseline_value").and_then(Json::as_f64);
            let ratio = v
                .get("ratio")
                .and_then(Json::as_f64)
                .or_else(|| baseline_value.filter(|b| *b > 0.0).map(|b| value / b));
            rows.push(Row {
                case: case.into(),
                value,
                baseline: v.get("baseline").and_then(Json::as_str).map(str::to_owned),
                baseline_value,
                ratio,
                unit: v.get("unit").and_then(Json::as_str).unwrap_or("").into(),
            });
        }
    }
    Ok(rows)
}

/// Runs the benches and prints the table.
pub(crate) fn run(opts: BenchOptions) -> Result<()> {
    let guard = if opts.no_services {
        None
    } else {
        Some(Guard::provision()?)
    };
    let target = target_dir();
    let rows_dir = target.join("authtel-bench");
    fs::create_dir_all(&rows_dir)
        .with_context(|| format!("could not create {}", rows_dir.display()))?;
    let rounds = opts.rounds.max(1);
    let mut results: Vec<Vec<Row>> = Vec::new();
    let mut failed = None;
    for round in 1..=rounds {
        if rounds > 1 {
            eprintln!("bench: round {round} of {rounds}");
        }
        let (rows, ok, cmd) = run_once(&opts, &target, &rows_dir)?;
        results.push(rows);
        if !ok {
            failed = Some(cmd);
            break;
        }
    }
    drop(guard);

    let table = match results.as_slice() {
        [one] => bench_table::render(one),
        many => bench_table::render_rounds(&bench_table::aggregate(many), many.len()),
    };
    println!("{table}");
    let table_path = target.join("bench-table.md");
    fs::write(&table_path, &table)
        .with_context(|| format!("could not write {}", table_path.display()))?;
    let count = results.last().map_or(0, Vec::len);
    eprintln!(
        "bench: {count} rows, {} round(s); table written to {}",
        results.len(),
        table_path.display()
    );
    if let Some(cmd) = failed {
        bail!("`{cmd}` failed (the table shows what finished); run it again to see why");
    }
    if count == 0 {
        eprintln!(
            "bench: no results; are there benches under crates/*/benches with harness = false?"
        );
    }
    Ok(())
}

/// One run of the bench binaries: the rows it produced, whether it succeeded, and the
/// command (for the error).
fn run_once(
    opts: &BenchOptions,
    target: &Path,
    rows_dir: &Path,
) -> Result<(Vec<Row>, bool, String)> {
    for entry in fs::read_dir(rows_dir)?.filter_map(|e| e.ok()) {
        if entry.path().extension().is_some_and(|x| x == "jsonl") {
            fs::remove_file(entry.path())?;
        }
    }
    let since = SystemTime::now();
    let mut cmd = Cmd::cargo(["bench", "--benches"]);
    if opts.packages.is_empty() {
        cmd = cmd.with_args(["--workspace"]);
    }
    for p in &opts.packages {
        cmd = cmd.with_args(["-p", p.as_str()]);
    }
    cmd = cmd
        .with_env("CARGO_TARGET_DIR", &target.display().to_string())
        .with_env("AUTHTEL_BENCH_DIR", &rows_dir.display().to_string());
    if !opts.no_services {
        cmd.envs.extend(services::env_vars());
    }
    let mut bench_args: Vec<String> = Vec::new();
    if opts.quick {
        cmd = cmd.with_env("AUTHTEL_BENCH_QUICK", "1");
        bench_args.extend(["--warm-up-time", "1", "--measurement-time", "2"].map(String::from));
    }
    bench_args.extend(opts.extra.iter().cloned());
    if !bench_args.is_empty() {
        cmd = cmd.with_args(["--"]).with_args(bench_args);
    }
    let ok = cmd.run_status()?;
    let mut rows = pair(&collect_criterion(&target.join("criterion"), Some(since))?);
    rows.extend(collect_jsonl(rows_dir)?);
    Ok((rows, ok, cmd.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_table::{num, render};

    fn m(
        group: &str,
        function: &str,
        value: Option<&str>,
        median: f64,
        elements: Option<f64>,
    ) -> Measured {
        Measured {
            group: group.into(),
            function: function.into(),
            value: value.map(Into::into),
            median_ns: median,
            elements,
        }
    }

    #[test]
    fn cases_pair_with_the_groups_only_baseline() {
        let rows = pair(&[
            m("event", "nothing_attached", None, 2.0, None),
            m(
                "event",
                "baseline:tracing_info_no_subscriber",
                None,
                1.0,
                None,
            ),
        ]);
        assert_eq!(rows[0].case, "event/nothing_attached");
        assert_eq!(
            rows[0].baseline.as_deref(),
            Some("event/baseline:tracing_info_no_subscriber")
        );
        assert_eq!(rows[0].ratio, Some(2.0));
        assert_eq!(
            rows[1].baseline, None,
            "baselines are listed without a pair"
        );
    }

    #[test]
    fn at_sign_picks_one_of_several_baselines() {
        let rows = pair(&[
            m("event", "one_handler@tracing_info", None, 9.0, None),
            m("event", "unnamed", None, 9.0, None),
            m("event", "baseline:tracing_info", None, 3.0, None),
            m("event", "baseline:metrics_counter", None, 1.0, None),
        ]);
        assert_eq!(rows[0].case, "event/one_handler");
        assert_eq!(rows[0].ratio, Some(3.0));
        assert_eq!(rows[1].baseline, None, "ambiguous without @");
    }

    #[test]
    fn throughput_elements_gives_ns_per_element_and_params_pair_by_value() {
        let rows = pair(&[
            m("batch", "sink", Some("100"), 1000.0, Some(100.0)),
            m("batch", "baseline:raw", Some("100"), 500.0, Some(100.0)),
            m("batch", "baseline:raw", Some("10"), 1.0, Some(10.0)),
        ]);
        assert_eq!(rows[0].case, "batch/sink/100");
        assert_eq!((rows[0].value, rows[0].unit.as_str()), (10.0, "ns/element"));
        assert_eq!(rows[0].ratio, Some(2.0));
    }

    #[test]
    fn baselines_follow_their_groups_cases() {
        let rows = pair(&[
            m("a", "baseline:x", None, 1.0, None),
            m("a", "case", None, 1.0, None),
            m("b", "case", None, 1.0, None),
        ]);
        let cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(cases, ["a/case", "a/baseline:x", "b/case"]);
    }

    #[test]
    fn small_numbers_keep_three_significant_digits() {
        assert_eq!(num(0.018_76), "0.0188");
        assert_eq!(num(0.5), "0.500");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(1234.5), "1234");
    }

    #[test]
    fn reads_criterion_files_and_jsonl_rows() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let new = dir.join("criterion/event/one_handler_tracing_info/new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("estimates.json"),
            r#"{"median":{"point_estimate":12.5}}"#,
        )
        .unwrap();
        fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"event","function_id":"one_handler@tracing_info","value_str":null,"throughput":null}"#,
        )
        .unwrap();
        let found = collect_criterion(&dir.join("criterion"), None).unwrap();
        assert_eq!(
            found,
            vec![m("event", "one_handler@tracing_info", None, 12.5, None)]
        );

        fs::write(
            dir.join("kafka.jsonl"),
            "{\"case\":\"kafka/send\",\"value\":20,\"unit\":\"ns/msg\",\"baseline\":\"raw\",\"baseline_value\":10}\n\n",
        )
        .unwrap();
        let rows = collect_jsonl(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows[0].ratio, Some(2.0));
        let table = render(&rows);
        assert!(
            table.starts_with("| case | median ns/op | baseline | baseline median ns/op | ratio |")
        );
        assert!(
            table.contains("| kafka/send | 20.0 | raw | 10.0 | 2.00 | ns/msg |"),
            "{table}"
        );
    }
}
