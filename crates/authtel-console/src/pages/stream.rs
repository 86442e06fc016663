//! `/`: the live security stream. The page shows the newest records and opens an
//! `EventSource` on `/stream/events`; each server-sent event carries one record, and its
//! `id:` is the record's feed position (commit order). When the connection drops, the
//! browser reconnects with `Last-Event-ID` and the stream resumes right after it: every
//! record committed meanwhile arrives once, in order, as long as the store still holds it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::AuditEvent;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};

use crate::Shared;
use crate::error::PageError;
use crate::html::{Html, escape};
use crate::pages::{RECORD_HEADER, detail_href, record_row};

/// Records shown when the page loads.
const BACKLOG: u64 = 25;

/// Records read per poll.
const BATCH: u32 = 500;

/// The page: the newest records, then live ones.
pub(crate) async fn page(State(shared): State<Arc<Shared>>) -> Result<Html, PageError> {
    let base = &shared.base;
    if !shared.store.supports_feed() {
        let body = "<h1>Live stream</h1><p class=\"notice\">The live stream needs a commit-ordered \
             record position, which this store does not offer. Use Search with a time range, \
             or <code>authtel tail</code>.</p>";
        return Ok(Html::page("live stream", base, body));
    }
    let head = shared
        .store
        .feed_head()
        .await
        .map_err(PageError::store("reading the newest record position"))?;
    let recent = shared
        .store
        .feed_after(head.saturating_sub(BACKLOG), BACKLOG as u32)
        .await
        .map_err(PageError::store("reading the newest records"))?;
    let mut rows = String::new();
    for (_, e) in recent.iter().rev() {
        rows.push_str(&record_row(base, e));
    }
    let body = format!(
        "<h1>Live stream</h1><p>Status: <span id=\"stream-status\">connecting…</span></p>\
         <table id=\"stream\" data-src=\"{}/stream/events?after={head}\"><thead>{RECORD_HEADER}</thead>\
         <tbody id=\"stream-rows\">{rows}</tbody></table>",
        escape(base)
    );
    Ok(Html::page("live stream", base, &body))
}

/// Where a stream starts: `?after=N` on the first connection.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct StreamParams {
    after: Option<u64>,
}

/// `text/event-stream` of records after `Last-Event-ID` (a reconnect), else `?after=`,
/// else the newest record.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<axum::response::Response, PageError> {
    if !shared.store.supports_feed() {
        return Err(PageError::new(
            StatusCode::NOT_IMPLEMENTED,
            "the live stream is not available on this store (no commit-ordered record position)",
            "use Search with a time range, or `authtel tail`",
        ));
    }
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    PageError::bad_input(
                        format!("Last-Event-ID {v:?} is not a stream position"),
                        "reload the page to start a fresh stream",
                    )
                })?,
        ),
        None => None,
    };
    let head = shared
        .store
        .feed_head()
        .await
        .map_err(PageError::store("reading the newest record position"))?;
    // A position past the newest record comes from another database (or one rebuilt since):
    // start at the newest record instead of waiting for the positions to catch up.
    let start = resume.or(params.after).map_or(head, |n| n.min(head));
    Ok(Sse::new(follow(shared, start))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Where a stream is: the last position sent and what was read but not yet sent.
struct Cursor {
    shared: Arc<Shared>,
    last: u64,
    pending: VecDeque<(u64, AuditEvent)>,
    hello: bool,
}

/// The events after `start`, polling the store every `shared.poll` when caught up.
fn follow(shared: Arc<Shared>, start: u64) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        shared,
        last: start,
        pending: VecDeque::new(),
        hello: true,
    };
    stream::unfold(cursor, |mut c| async move {
        if c.hello {
            // Tells the browser to reconnect within a second; carries no id, so the
            // browser's Last-Event-ID stays where it was.
            c.hello = false;
            let e = Event::default()
                .event("ready")
                .retry(Duration::from_secs(1))
                .data("ready");
            return Some((Ok(e), c));
        }
        loop {
            if let Some((seq, event)) = c.pending.pop_front() {
                c.last = seq;
                return Some((Ok(to_sse(&c.shared.base, seq, &event)), c));
            }
            match c.shared.store.feed_after(c.last, BATCH).await {
                Ok(batch) if !batch.is_empty() => c.pending.extend(batch),
                Ok(_) => tokio::time::sleep(c.shared.poll).await,
                Err(e) => {
                    tracing::warn!(error = %e, "authtel console: the live stream could not read the store");
                    tokio::time::sleep(c.shared.poll.max(Duration::from_secs(1))).await;
                    let msg = format!("reading the store failed ({e}); retrying");
                    return Some((Ok(Event::default().event("store-error").data(msg)), c));
                }
            }
        }
    })
}

/// One record as an SSE event: `id:` its position, `data:` a JSON summary the page
/// renders with `textContent` (never as HTML).
fn to_sse(base: &str, seq: u64, e: &AuditEvent) -> Event {
    let summary = serde_json::json!({
        "seq": seq,
        "id": e.id().to_string(),
        "at": e.occurred_at().to_string(),
        "action": e.action(),
        "outcome": e.outcome().as_str(),
        "actor": e.actor().map(|a| a.id.as_str()),
        "ip": e.client_ip().map(|ip| ip.to_string()),
        "user_agent": e.user_agent(),
        "resource": e.resource(),
        "reason": e.reason(),
        "href": detail_href(base, e).replace("&amp;", "&"),
    });
    Event::default()
        .id(seq.to_string())
        .event("audit")
        .data(summary.to_string())
}
