//! `/timeline`: logins, failed logins, lockouts and denials per minute over the last
//! `?minutes=` (default 60), counted from the store's own query and drawn as SVG on the
//! server as grouped bars (no charting script). `/timeline.svg` is the chart alone.

use std::fmt::Write as _;
use std::sync::Arc;

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditQuery, MAX_PAGE};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::error::PageError;
use crate::html::{Html, escape};

/// Rows read per series at most; beyond it the chart says it is truncated.
const MAX_ROWS_PER_SERIES: usize = 200_000;

/// The longest window: one day.
const MAX_MINUTES: u32 = 1440;

/// One line of the chart: its name, colour and the queries whose rows it counts.
struct Series {
    name: &'static str,
    colour: &'static str,
    queries: Vec<AuditQuery>,
}

fn series() -> Vec<Series> {
    let login = authtel_sql::detect::LOGIN_ACTION;
    vec![
        Series {
            name: "logins",
            colour: "#2e7d32",
            queries: vec![AuditQuery::new().action(login).outcome(Outcome::Success)],
        },
        Series {
            name: "failures",
            colour: "#ef6c00",
            queries: vec![AuditQuery::new().action(login).outcome(Outcome::Failure)],
        },
        Series {
            name: "lockouts",
            colour: "#c62828",
            queries: authtel_sql::detect::LOCKOUT_ACTIONS
                .iter()
                .map(|a| AuditQuery::new().action(*a))
                .collect(),
        },
        Series {
            name: "denials",
            colour: "#6a1b9a",
            queries: vec![AuditQuery::new().outcome(Outcome::Denied)],
        },
    ]
}

/// Counts per minute for each series.
#[derive(Debug)]
pub(crate) struct Counts {
    start: Timestamp,
    minutes: u32,
    lines: Vec<(&'static str, &'static str, Vec<u64>)>,
    truncated: bool,
}

/// The chart's window.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TimelineParams {
    minutes: Option<u32>,
}

async fn count(shared: &Shared, minutes: u32) -> Result<Counts, PageError> {
    let now = Timestamp::now().unix_micros();
    // Whole minutes, ending with the current one.
    let end = (now / 60_000_000 + 1) * 60_000_000;
    let start = end - i64::from(minutes) * 60_000_000;
    let mut counts = Counts {
        start: Timestamp::from_unix_micros(start),
        minutes,
        lines: Vec::new(),
        truncated: false,
    };
    for s in series() {
        let mut buckets = vec![0u64; minutes as usize];
        let mut read = 0usize;
        for q in s.queries {
            let mut q = q
                .from(Timestamp::from_unix_micros(start))
                .until(Timestamp::from_unix_micros(end))
                .limit(MAX_PAGE);
            loop {
                let page = shared
                    .store
                    .query(&q)
                    .await
                    .map_err(PageError::store("counting records for the timeline"))?;
                for e in &page.events {
                    let i = ((e.occurred_at().unix_micros() - start) / 60_000_000) as usize;
                    if let Some(b) = buckets.get_mut(i) {
                        *b += 1;
                    }
                }
                read += page.events.len();
                match page.next {
                    Some(c) if read < MAX_ROWS_PER_SERIES => q = q.after(c),
                    Some(_) => {
                        counts.truncated = true;
                        break;
                    }
                    None => break,
                }
            }
        }
        counts.lines.push((s.name, s.colour, buckets));
    }
    Ok(counts)
}

const W: f64 = 800.0;
const H: f64 = 240.0;
const PAD: f64 = 40.0;

/// The chart as an SVG element.
fn svg_of(c: &Counts) -> String {
    let max = c
        .lines
        .iter()
        .flat_map(|(_, _, b)| b.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = c.minutes.max(1) as f64;
    let slot = (W - 2.0 * PAD) / n;
    let series = c.lines.len().max(1) as f64;
    // Each minute's slot holds one bar per series side by side, with a gap of one bar.
    let bar = slot / (series + 1.0);
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" role=\"img\" \
         viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\">\
         <title>Logins, failures, lockouts and denials per minute, last {} minutes</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\
         <line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">{max}</text>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">0</text>\
         <text x=\"{PAD}\" y=\"{}\" font-size=\"11\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">now</text>",
        c.minutes,
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD,
        PAD + 4.0,
        H - PAD,
        H - PAD + 16.0,
        escape(&c.start.to_string()),
        W - PAD,
        H - PAD + 16.0,
    );
    for (k, (name, colour, buckets)) in c.lines.iter().enumerate() {
        let total: u64 = buckets.iter().sum();
        let _ = write!(
            s,
            "<g class=\"series\" data-series=\"{name}\" data-total=\"{total}\" fill=\"{colour}\">"
        );
        for (i, v) in buckets.iter().enumerate().filter(|(_, v)| **v > 0) {
            let x = PAD + slot * i as f64 + bar * (k as f64 + 0.5);
            let top = y(*v);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{name}: {v}</title></rect>",
                bar.max(1.0),
                (H - PAD - top).max(0.0),
            );
        }
        let _ = write!(
            s,
            "</g><text x=\"{}\" y=\"20\" font-size=\"12\" fill=\"{colour}\">{name}: {total}</text>",
            PAD + 150.0 * k as f64,
        );
    }
    if c.truncated {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"34\" font-size=\"11\" text-anchor=\"end\">truncated at {MAX_ROWS_PER_SERIES} rows per series</text>",
            W - PAD
        );
    }
    s.push_str("</svg>");
    s
}

fn minutes(p: &TimelineParams) -> u32 {
    p.minutes.unwrap_or(60).clamp(1, MAX_MINUTES)
}

/// The page around the chart.
pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<TimelineParams>,
) -> Result<Html, PageError> {
    let c = count(&shared, minutes(&p)).await?;
    let base = escape(&shared.base);
    let body = format!(
        "<h1>Timeline</h1><p>Per minute, last {m} minutes \
         (<a href=\"{base}/timeline?minutes=15\">15 min</a>, \
         <a href=\"{base}/timeline?minutes=60\">1 h</a>, \
         <a href=\"{base}/timeline?minutes=360\">6 h</a>, \
         <a href=\"{base}/timeline?minutes=1440\">24 h</a>).</p>{}",
        svg_of(&c),
        m = c.minutes,
    );
    Ok(Html::page("timeline", &shared.base, &body))
}

/// The chart alone, as `image/svg+xml`.
pub(crate) async fn svg(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<TimelineParams>,
) -> Result<Response, PageError> {
    let c = count(&shared, minutes(&p)).await?;
    let mut r = svg_of(&c).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_one_line_per_series_with_its_total() {
        let c = Counts {
            start: Timestamp::from_unix_micros(0),
            minutes: 3,
            lines: vec![
                ("logins", "#000", vec![1, 0, 2]),
                ("lockouts", "#f00", vec![0, 0, 1]),
            ],
            truncated: false,
        };
        let s = svg_of(&c);
        assert!(s.starts_with("<svg"));
        assert!(s.contains("data-series=\"logins\" data-total=\"3\""));
        assert!(s.contains("data-series=\"lockouts\" data-total=\"1\""));
        assert_eq!(s.matches("<g class=\"series\"").count(), 2);
        assert_eq!(
            s.matches("<rect x=").count(),
            1 + 3,
            "the background and one bar per non-zero minute"
        );
    }
}
