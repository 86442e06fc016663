//! The JSON rows: the load average for the conditions, percentiles, the row format of
//! `cargo xtask bench` and `sql.jsonl`.

use std::io::Write as _;

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One JSON row in the `cargo xtask bench` format, plus the run's conditions.
pub(crate) fn json_row(
    case: &str,
    value: f64,
    unit: &str,
    baseline: &str,
    base: f64,
    cond: &str,
) -> String {
    serde_json::json!({
        "case": case,
        "value": (value * 1000.0).round() / 1000.0,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": (base * 1000.0).round() / 1000.0,
        "ratio": ((value / base) * 1000.0).round() / 1000.0,
        "conditions": cond,
    })
    .to_string()
}

pub(crate) fn paired_row(
    case: &str,
    baseline: &str,
    (a, b): &(Vec<f64>, Vec<f64>),
    cond: &str,
) -> String {
    let (ma, mb) = (percentile(a, 0.5), percentile(b, 0.5));
    let cond = format!("{cond}; {} alternated pairs", a.len());
    json_row(case, ma, "ms/batch of 500", baseline, mb, &cond)
}

pub(crate) fn write_jsonl(rows: &[String]) {
    if rows.is_empty() {
        return;
    }
    for r in rows {
        println!("{r}");
    }
    let Some(target) = std::env::var_os("CARGO_TARGET_DIR") else {
        eprintln!("sql bench: CARGO_TARGET_DIR is unset; JSON rows only printed");
        return;
    };
    let dir = std::path::Path::new(&target).join("authtel-bench");
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("sql.jsonl"))?;
        rows.iter().try_for_each(|r| writeln!(f, "{r}"))
    });
    if let Err(e) = result {
        eprintln!("sql bench: could not write {}: {e}", dir.display());
    }
}
