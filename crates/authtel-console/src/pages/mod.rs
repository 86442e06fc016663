//! One module per page. Shared here: the CSRF check every POST runs, the search filters
//! (the same as `authtel query`), and how a record is rendered.

use std::fmt::Write as _;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::outcome::Outcome;
use authtel_sql::AuditQuery;
use axum::http::HeaderMap;

use crate::access::{Viewer, csrf_matches};
use crate::error::PageError;
use crate::html::{escape, url_encode};

pub(crate) mod detect;
pub(crate) mod outbox;
pub(crate) mod search;
pub(crate) mod stream;
pub(crate) mod timeline;

/// Refuses a state-changing request that does not carry this session's CSRF token, or that
/// the browser says comes from another site.
pub(crate) fn check_csrf(
    viewer: &Viewer,
    headers: &HeaderMap,
    given: &str,
) -> Result<(), PageError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(PageError::csrf(
            "the browser says this request comes from another site",
        ));
    }
    let Some(session) = &viewer.session else {
        return Err(PageError::csrf(
            "there is no console session (state changes need a login through /login; a bare bearer token cannot make them)",
        ));
    };
    if given.is_empty() {
        return Err(PageError::csrf("the form carries no CSRF token"));
    }
    if !csrf_matches(session, given) {
        return Err(PageError::csrf(
            "the CSRF token does not match this session",
        ));
    }
    Ok(())
}

/// The hidden CSRF field for a form, empty without a session.
pub(crate) fn csrf_field(viewer: &Viewer) -> String {
    viewer.session.as_ref().map_or_else(String::new, |s| {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            escape(&s.csrf)
        )
    })
}

/// The search filters as query parameters; empty fields mean "any".
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    pub(crate) actor: String,
    #[serde(default)]
    pub(crate) ip: String,
    #[serde(default)]
    pub(crate) action: String,
    #[serde(default)]
    pub(crate) outcome: String,
    #[serde(default)]
    pub(crate) since: String,
    #[serde(default)]
    pub(crate) until: String,
}

impl Filters {
    /// The store query, or which field is wrong and how to write it.
    pub(crate) fn query(&self, now: Timestamp) -> Result<AuditQuery, PageError> {
        let mut q = AuditQuery::new();
        let actor = self.actor.trim();
        if !actor.is_empty() {
            q = q.actor(actor);
        }
        let ip = self.ip.trim();
        if !ip.is_empty() {
            let ip = ip.parse().map_err(|_| {
                PageError::bad_input(
                    format!("IP {ip:?} is not an IP address"),
                    "write it like 192.0.2.7 or 2001:db8::1",
                )
            })?;
            q = q.client_ip(ip);
        }
        let action = self.action.trim();
        if !action.is_empty() {
            q = q.action(action);
        }
        let outcome = self.outcome.trim();
        if !outcome.is_empty() {
            let o = Outcome::ALL
                .into_iter()
                .find(|o| o.as_str() == outcome)
                .ok_or_else(|| {
                    PageError::bad_input(
                        format!(
                            "outcome {outcome:?} is not one of success, failure, denied, error"
                        ),
                        "pick an outcome from the list",
                    )
                })?;
            q = q.outcome(o);
        }
        if let Some(t) = parse_time("since", &self.since, now)? {
            q = q.from(t);
        }
        if let Some(t) = parse_time("until", &self.until, now)? {
            q = q.until(t);
        }
        Ok(q)
    }

    /// The filters as a query string (`actor=…&ip=…`), for links to further pages.
    pub(crate) fn to_query_string(&self) -> String {
        [
            ("actor", &self.actor),
            ("ip", &self.ip),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// An RFC 3339 time or an age before `now` (`15m`, `24h`, `7d`); `None` when empty.
pub(crate) fn parse_time(
    field: &str,
    text: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(d) = parse_age(text) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        return Ok(Some(Timestamp::from_unix_micros(
            now.unix_micros().saturating_sub(micros),
        )));
    }
    text.parse::<Timestamp>().map(Some).map_err(|_| {
        PageError::bad_input(
            format!("{field} {text:?} is neither an age nor an RFC 3339 time"),
            "write an age like 15m, 24h, 7d or a time like 2026-11-22T10:15:30Z",
        )
    })
}

/// `90s`, `15m`, `24h`, `7d`, `2w`.
pub(crate) fn parse_age(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s.get(..digits)?.parse().ok()?;
    let unit = match &s[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration::from_secs)
}

/// The link to a record's detail page.
pub(crate) fn detail_href(base: &str, e: &AuditEvent) -> String {
    format!(
        "{}/records/{}?at={}",
        escape(base),
        e.id(),
        e.occurred_at().unix_micros()
    )
}

/// The header row of a record table.
pub(crate) const RECORD_HEADER: &str = "<tr><th>time</th><th>action</th><th>outcome</th>\
     <th>actor</th><th>client IP</th><th>user agent</th><th>resource</th><th>reason</th></tr>";

/// One record as a table row, every value escaped.
pub(crate) fn record_row(base: &str, e: &AuditEvent) -> String {
    let opt = |v: Option<&str>| escape(v.unwrap_or(""));
    let mut row = String::new();
    let _ = write!(
        row,
        "<tr class=\"outcome-{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        e.outcome().as_str(),
        detail_href(base, e),
        escape(&e.occurred_at().to_string()),
        escape(e.action()),
        e.outcome().as_str(),
        opt(e.actor().map(|a| a.id.as_str())),
        escape(&e.client_ip().map(|ip| ip.to_string()).unwrap_or_default()),
        opt(e.user_agent()),
        opt(e.resource()),
        opt(e.reason()),
    );
    row
}

/// A table of records, or a line saying there are none.
pub(crate) fn record_table(base: &str, events: &[AuditEvent], id: &str) -> String {
    let mut t = format!("<table id=\"{id}\"><thead>{RECORD_HEADER}</thead><tbody>");
    for e in events {
        t.push_str(&record_row(base, e));
    }
    t.push_str("</tbody></table>");
    if events.is_empty() {
        t.push_str("<p class=\"empty\">No records.</p>");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_parse_and_garbage_is_refused() {
        let now = Timestamp::from_unix_micros(10_000_000_000);
        let t = parse_time("since", "15m", now).unwrap().unwrap();
        assert_eq!(t.unix_micros(), 10_000_000_000 - 900_000_000);
        assert!(parse_time("since", "", now).unwrap().is_none());
        assert!(
            parse_time("since", "2026-11-22T10:15:30Z", now)
                .unwrap()
                .is_some()
        );
        let e = parse_time("until", "yesterday", now).unwrap_err();
        assert!(e.what.contains("until \"yesterday\""));
    }

    #[test]
    fn filters_refuse_a_bad_ip_and_outcome() {
        let f = Filters {
            ip: "999.1.1.1".into(),
            ..Filters::default()
        };
        assert!(f.query(Timestamp::now()).is_err());
        let f = Filters {
            outcome: "maybe".into(),
            ..Filters::default()
        };
        assert!(f.query(Timestamp::now()).is_err());
        let f = Filters {
            actor: "u 1&x".into(),
            outcome: "failure".into(),
            ..Filters::default()
        };
        assert_eq!(
            f.query(Timestamp::now()).unwrap(),
            AuditQuery::new().actor("u 1&x").outcome(Outcome::Failure)
        );
        assert_eq!(f.to_query_string(), "actor=u%201%26x&outcome=failure");
    }
}
