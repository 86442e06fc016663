//! `/search`: the filters of `authtel query`, one page at a time with the store's cursor;
//! `/records/{id}?at=…`: one record with every field.

use std::fmt::Write as _;
use std::sync::Arc;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_sql::{AuditQuery, Cursor, MAX_PAGE};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use uuid::Uuid;

use crate::Shared;
use crate::error::PageError;
use crate::html::{Html, escape, url_encode};
use crate::pages::{Filters, record_table};

/// The search form's parameters: the filters, the cursor and the page size.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct SearchParams {
    #[serde(flatten)]
    filters: Filters,
    #[serde(default)]
    after: String,
    limit: Option<u32>,
}

fn input(name: &str, label: &str, value: &str, hint: &str) -> String {
    format!(
        "<label>{label} <input name=\"{name}\" value=\"{}\" placeholder=\"{hint}\"></label> ",
        escape(value)
    )
}

/// The form and one page of results.
pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<SearchParams>,
) -> Result<Html, PageError> {
    let base = &shared.base;
    let f = &params.filters;
    let mut q = f.query(Timestamp::now())?;
    let limit = params.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    q = q.limit(limit);
    let after = params.after.trim();
    if !after.is_empty() {
        let cursor: Cursor = after.parse().map_err(|_| {
            PageError::bad_input(
                format!("the page cursor {after:?} is not one this console made"),
                "start the search again from its first page",
            )
        })?;
        q = q.after(cursor);
    }
    let page = shared
        .store
        .query(&q)
        .await
        .map_err(PageError::store("searching the audit trail"))?;
    let mut outcome =
        String::from("<label>Outcome <select name=\"outcome\"><option value=\"\">any</option>");
    for o in authtel_core::outcome::Outcome::ALL {
        let sel = if f.outcome == o.as_str() {
            " selected"
        } else {
            ""
        };
        let _ = write!(outcome, "<option{sel}>{}</option>", o.as_str());
    }
    outcome.push_str("</select></label> ");
    let mut body = format!(
        "<h1>Search</h1><form method=\"get\" action=\"{}/search\" id=\"search-form\">{}{}{}{}{}{}\
         <button type=\"submit\">Search</button></form>",
        escape(base),
        input("actor", "Actor", &f.actor, "u_123"),
        input("ip", "Client IP", &f.ip, "192.0.2.7"),
        input("action", "Action", &f.action, "auth.login.stop"),
        outcome,
        input("since", "Since", &f.since, "24h or 2026-11-22T10:00:00Z"),
        input("until", "Until", &f.until, "RFC 3339 or age"),
    );
    let _ = write!(body, "<p>{} records on this page.</p>", page.events.len());
    body.push_str(&record_table(base, &page.events, "results"));
    if let Some(next) = page.next {
        let qs = f.to_query_string();
        let sep = if qs.is_empty() { "" } else { "&amp;" };
        let _ = write!(
            body,
            "<p><a id=\"next-page\" href=\"{}/search?{}{sep}after={}&amp;limit={limit}\">Next page</a></p>",
            escape(base),
            escape(&qs),
            url_encode(&next.to_string())
        );
    }
    Ok(Html::page("search", base, &body))
}

/// Where a record is: its time, which the store's index orders by.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DetailParams {
    at: Option<i64>,
}

/// One record, every field.
pub(crate) async fn detail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(params): Query<DetailParams>,
) -> Result<Html, PageError> {
    let base = &shared.base;
    let id: Uuid = id.parse().map_err(|_| {
        PageError::bad_input(
            format!(
                "{:?} is not a record id (a UUID)",
                authtel_core::metadata::truncate(&id, 80)
            ),
            "open records from the search or the live stream",
        )
    })?;
    let Some(at) = params.at else {
        return Err(PageError::bad_input(
            "the link has no ?at= (the record's time in microseconds)",
            "open records from the search or the live stream",
        ));
    };
    let q = AuditQuery::new()
        .from(Timestamp::from_unix_micros(at))
        .until(Timestamp::from_unix_micros(at.saturating_add(1)))
        .limit(MAX_PAGE);
    let page = shared
        .store
        .query(&q)
        .await
        .map_err(PageError::store("reading the record"))?;
    let Some(e) = page.events.iter().find(|e| e.id() == id) else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("no record {id} at that time"),
            "it may have been purged; search by time range to look around it",
        ));
    };
    Ok(Html::page("record", base, &render_detail(base, e)))
}

fn render_detail(base: &str, e: &AuditEvent) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", e.id().to_string()),
        ("occurred at", e.occurred_at().to_string()),
        ("action", e.action().to_owned()),
        ("outcome", e.outcome().as_str().to_owned()),
    ];
    let mut push = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            rows.push((k, v));
        }
    };
    push("tenant", e.tenant_id().map(str::to_owned));
    push("actor", e.actor().map(|p| format!("{} ({})", p.id, p.kind)));
    push(
        "target",
        e.target().map(|p| format!("{} ({})", p.id, p.kind)),
    );
    push("session", e.session_id().map(str::to_owned));
    push("client IP", e.client_ip().map(|ip| ip.to_string()));
    push("user agent", e.user_agent().map(str::to_owned));
    push("resource", e.resource().map(str::to_owned));
    push("operation", e.operation().map(str::to_owned));
    push("reason", e.reason().map(str::to_owned));
    push("span id", e.span_id().map(str::to_owned));
    push("trace id", e.trace_id().map(str::to_owned));
    push("schema version", Some(e.schema_version().to_string()));
    let mut body = String::from("<h1>Record</h1><table id=\"record\">");
    for (k, v) in rows {
        let _ = write!(body, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    body.push_str("</table>");
    if !e.metadata().is_empty() {
        let json = serde_json::to_string_pretty(&e.metadata()).unwrap_or_default();
        let _ = write!(
            body,
            "<h2>Metadata</h2><pre id=\"metadata\">{}</pre>",
            escape(&json)
        );
    }
    if let Some(actor) = &e.actor() {
        let _ = write!(
            body,
            "<p><a href=\"{}/search?actor={}\">Everything by this actor</a></p>",
            escape(base),
            url_encode(&actor.id)
        );
    }
    body
}
