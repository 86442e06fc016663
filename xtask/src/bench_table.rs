//! The table `cargo xtask bench` prints: one row per case with its baseline and ratio, and
//! for `--rounds N` the rows of N runs folded into one — per case the median over the rounds
//! with the min–max of its value, its baseline's and its ratio (each round's ratio is case ÷
//! baseline of the same round, so a round slowed as a whole keeps its ratio).

/// One table row: a case, its unit and, when paired, its baseline and the ratio.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) case: String,
    pub(crate) value: f64,
    pub(crate) baseline: Option<String>,
    pub(crate) baseline_value: Option<f64>,
    pub(crate) ratio: Option<f64>,
    pub(crate) unit: String,
}

/// Readable precision: whole ns for big values, three significant digits for small ones.
pub(crate) fn num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 || v <= 0.0 {
        format!("{v:.2}")
    } else {
        let decimals = (2.0 - v.log10().floor()).clamp(2.0, 9.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// Renders the markdown table.
pub(crate) fn render(rows: &[Row]) -> String {
    let mut out =
        String::from("| case | median ns/op | baseline | baseline median ns/op | ratio | unit |\n");
    out.push_str("|---|---:|---|---:|---:|---|\n");
    let dash = || "—".to_string();
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.case,
            num(r.value),
            r.baseline.clone().unwrap_or_else(dash),
            r.baseline_value.map(num).unwrap_or_else(dash),
            r.ratio.map(|x| format!("{x:.2}")).unwrap_or_else(dash),
            r.unit,
        ));
    }
    out
}

/// One case over all rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RoundsRow {
    pub(crate) case: String,
    pub(crate) unit: String,
    pub(crate) values: Vec<f64>,
    pub(crate) baseline: Option<String>,
    pub(crate) baseline_values: Vec<f64>,
    pub(crate) ratios: Vec<f64>,
}

/// The median of `xs` (the mean of the middle two for an even count); `None` if empty.
fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn spread(xs: &[f64], fmt: impl Fn(f64) -> String) -> String {
    if xs.is_empty() {
        return "—".into();
    }
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{}–{}", fmt(min), fmt(max))
}

/// Folds the rounds' rows by case, in the order of the first round that has each case.
pub(crate) fn aggregate(rounds: &[Vec<Row>]) -> Vec<RoundsRow> {
    let mut out: Vec<RoundsRow> = Vec::new();
    for row in rounds.iter().flatten() {
        let i = match out.iter().position(|r| r.case == row.case) {
            Some(i) => i,
            None => {
                out.push(RoundsRow {
                    case: row.case.clone(),
                    unit: row.unit.clone(),
                    values: Vec::new(),
                    baseline: row.baseline.clone(),
                    baseline_values: Vec::new(),
                    ratios: Vec::new(),
                });
                out.len() - 1
            }
        };
        let r = &mut out[i];
        r.values.push(row.value);
        r.baseline_values.extend(row.baseline_value);
        r.ratios.extend(row.ratio);
    }
    out
}

/// The markdown table of [`aggregate`]'s rows.
pub(crate) fn render_rounds(rows: &[RoundsRow], rounds: usize) -> String {
    let mut out = format!(
        "| case ({rounds} rounds) | median | min–max | baseline | baseline median | baseline min–max | ratio median | ratio min–max | unit |\n"
    );
    out.push_str("|---|---:|---:|---|---:|---:|---:|---:|---|\n");
    let dash = || "—".to_string();
    let ratio = |x: f64| format!("{x:.2}");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.case,
            median(&r.values).map(num).unwrap_or_else(dash),
            spread(&r.values, num),
            r.baseline.clone().unwrap_or_else(dash),
            median(&r.baseline_values).map(num).unwrap_or_else(dash),
            spread(&r.baseline_values, num),
            median(&r.ratios).map(ratio).unwrap_or_else(dash),
            spread(&r.ratios, ratio),
            r.unit,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &str, value: f64, baseline: Option<f64>) -> Row {
        Row {
            case: case.into(),
            value,
            baseline: baseline.map(|_| "g/baseline:b".into()),
            baseline_value: baseline,
            ratio: baseline.map(|b| value / b),
            unit: "ns/op".into(),
        }
    }

    #[test]
    fn medians_and_spreads_are_taken_per_case_over_the_rounds() {
        let rounds = vec![
            vec![row("g/a", 10.0, Some(5.0)), row("g/solo", 1.0, None)],
            vec![row("g/a", 30.0, Some(10.0)), row("g/solo", 3.0, None)],
            vec![row("g/a", 20.0, Some(10.0))],
        ];
        let rows = aggregate(&rounds);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].values, [10.0, 30.0, 20.0]);
        assert_eq!(rows[0].ratios, [2.0, 3.0, 2.0]);
        assert_eq!(rows[1].baseline_values, Vec::<f64>::new());
        let table = render_rounds(&rows, 3);
        assert!(
            table.starts_with("| case (3 rounds) | median | min–max |"),
            "{table}"
        );
        assert!(
            table.contains("| g/a | 20.0 | 10.0–30.0 | g/baseline:b | 10.0 | 5.00–10.0 | 2.00 | 2.00–3.00 | ns/op |"),
            "{table}"
        );
        assert!(
            table.contains("| g/solo | 2.00 | 1.00–3.00 | — | — | — | — | — | ns/op |"),
            "{table}"
        );
    }

    #[test]
    fn a_median_of_an_even_count_is_the_middle_pair_mean() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 7.0]), Some(7.0));
    }
}
