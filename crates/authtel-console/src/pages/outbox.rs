//! `/outbox`: delivery health per forwarder (pending, oldest pending age, retrying, dead,
//! done, the circuit breaker as the running relays report it) with the newest dead letters, and the two state-changing forms: requeue (POST
//! `/outbox/requeue`) and purge (POST `/purge`, a dry run unless confirmed). Both check the
//! session's CSRF token before touching anything.

use std::fmt::Write as _;
use std::sync::Arc;

use authtel_core::audit::Timestamp;
use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::Shared;
use crate::access::Viewer;
use crate::error::PageError;
use crate::html::{Html, escape};
use crate::pages::{check_csrf, csrf_field, parse_age};
use crate::trail::{reader_party, refused};
use authtel_sql::trail::{PurgeAction, purge_record, requeue_record};

/// Dead letters listed per forwarder.
const DEAD_SHOWN: u32 = 20;

/// Rows per DELETE statement of a purge (as `authtel purge`'s default).
const PURGE_BATCH: u32 = 1000;

fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

/// The breaker as the running relays report it, or why it is unknown: the same reading as
/// `authtel doctor` ([`authtel_sql::RelayReading`]).
fn breaker_cell(forwarder: &str, relays: &[authtel_sql::RelayStatus], now: Timestamp) -> String {
    use authtel_sql::{BreakerState, RelayReading};
    match RelayReading::of(forwarder, relays, now) {
        RelayReading::Reporting {
            breaker,
            since,
            last_seen,
            ..
        } => {
            let since = std::time::Duration::from_micros(
                (now.unix_micros() - since.unix_micros()).max(0) as u64,
            );
            let state = match breaker {
                BreakerState::Closed => "closed",
                BreakerState::HalfOpen => "half-open",
                BreakerState::Open => "open",
            };
            format!(
                "{state} for {} (relay seen {} ago)",
                age(since),
                age(last_seen)
            )
        }
        RelayReading::Stale { last_seen, .. } => {
            format!("not reachable: relay last seen {} ago", age(last_seen))
        }
        RelayReading::NoRelay => "no relay has reported".to_owned(),
    }
}

/// The health page.
pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html, PageError> {
    let base = escape(&shared.base);
    let states = shared
        .store
        .delivery_state()
        .await
        .map_err(PageError::store("reading the outbox delivery state"))?;
    let retrying = shared
        .store
        .retrying()
        .await
        .map_err(PageError::store("counting retrying outbox entries"))?;
    let relays = shared
        .store
        .relay_status()
        .await
        .map_err(PageError::store("reading the relay status"))?;
    let now = Timestamp::now();
    let csrf = csrf_field(&viewer);
    let mut body = String::from(
        "<h1>Outbox and sink health</h1><table id=\"forwarders\"><thead><tr><th>forwarder</th>\
         <th>pending</th><th>oldest pending</th><th>retrying</th><th>dead</th><th>done</th>\
         <th>breaker</th><th></th></tr></thead><tbody>",
    );
    for s in &states {
        let r = retrying.iter().find(|r| r.forwarder == s.forwarder);
        let requeue = if s.dead > 0 {
            format!(
                "<form method=\"post\" action=\"{base}/outbox/requeue\">{csrf}\
                 <input type=\"hidden\" name=\"forwarder\" value=\"{}\">\
                 <button type=\"submit\">Requeue {} dead</button></form>",
                escape(&s.forwarder),
                s.dead
            )
        } else {
            String::new()
        };
        let breaker = breaker_cell(&s.forwarder, &relays, now);
        let _ = write!(
            body,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"breaker\">{}</td><td>{requeue}</td></tr>",
            if s.dead > 0 { "unhealthy" } else { "healthy" },
            escape(&s.forwarder),
            s.pending,
            age(s.lag),
            r.map_or(0, |r| r.retrying),
            s.dead,
            s.done,
            escape(&breaker),
        );
    }
    body.push_str("</tbody></table>");
    if states.is_empty() {
        body.push_str("<p class=\"empty\">No outbox entries: no forwarder is configured, or all were purged.</p>");
    }
    for s in states.iter().filter(|s| s.dead > 0) {
        let dead = shared
            .store
            .dead_letters(&s.forwarder, DEAD_SHOWN)
            .await
            .map_err(PageError::store("reading dead letters"))?;
        let _ = write!(
            body,
            "<h2>Dead letters of {}</h2><table><thead><tr><th>record</th><th>attempts</th><th>when</th><th>last error</th></tr></thead><tbody>",
            escape(&s.forwarder)
        );
        for d in dead {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.event_id,
                d.attempts,
                escape(&d.at.to_string()),
                escape(&d.reason)
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        "<h2>Purge</h2><form method=\"post\" action=\"{base}/purge\" id=\"purge-form\">{csrf}\
         <label>Older than <input name=\"older_than\" value=\"90d\"></label> \
         <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\"> really delete (otherwise a dry run)</label> \
         <button type=\"submit\">Purge</button></form>"
    );
    Ok(Html::page("outbox", &shared.base, &body))
}

/// The requeue form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RequeueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    forwarder: String,
    #[serde(default)]
    event: String,
}

/// Dead → pending, for a forwarder or one record.
pub(crate) async fn requeue(
    State(shared): State<Arc<Shared>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RequeueForm>,
) -> Result<Html, PageError> {
    check_csrf(&viewer, &headers, &form.csrf)?;
    let forwarder = form.forwarder.trim();
    let event = form.event.trim();
    let result = if !event.is_empty() {
        let id = event.parse().map_err(|_| {
            PageError::bad_input(
                format!("event {event:?} is not a record id"),
                "paste the record's UUID",
            )
        })?;
        let f = (!forwarder.is_empty()).then_some(forwarder);
        shared.store.requeue_dead_event(id, f).await
    } else if !forwarder.is_empty() {
        shared.store.requeue_dead(forwarder).await
    } else {
        return Err(PageError::bad_input(
            "requeue needs a forwarder or a record id",
            "use the Requeue button of a forwarder on the outbox page",
        ));
    };
    let record = requeue_record(
        reader_party(&viewer.reader),
        (!forwarder.is_empty()).then_some(forwarder),
        event.parse().ok(),
        match &result {
            Ok(n) => Ok(*n),
            Err(e) => Err(e.to_string()),
        },
    )
    .map_err(refused)?;
    shared.record_action(record).await?;
    let moved = result.map_err(PageError::store("requeueing dead outbox entries"))?;
    tracing::info!(
        reader = viewer.reader.id(),
        forwarder,
        event,
        moved,
        "authtel console: requeue"
    );
    let body = format!(
        "<h1>Requeue</h1><p id=\"result\">Requeued {moved} dead entries; the relay delivers them on its next pass.</p>\
         <p><a href=\"{}/outbox\">Back to the outbox</a></p>",
        escape(&shared.base)
    );
    Ok(Html::page("requeue", &shared.base, &body))
}

/// The purge form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PurgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    older_than: String,
    #[serde(default)]
    confirm: String,
}

/// Retention purge: counts unless `confirm=yes`.
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PurgeForm>,
) -> Result<Html, PageError> {
    check_csrf(&viewer, &headers, &form.csrf)?;
    let older = form.older_than.trim();
    let Some(age) = parse_age(older).filter(|d| !d.is_zero()) else {
        return Err(PageError::bad_input(
            format!("older than {older:?} is not an age"),
            "write an age like 90d, 12w or 24h",
        ));
    };
    let micros = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
    let cutoff = Timestamp::from_unix_micros(Timestamp::now().unix_micros().saturating_sub(micros));
    let dry_run = form.confirm != "yes";
    let result = shared
        .store
        .purge_older_than(cutoff, PURGE_BATCH, dry_run)
        .await;
    let action = PurgeAction {
        cutoff,
        dry_run,
        result: match &result {
            Ok(r) => Ok(*r),
            Err(e) => Err(e.to_string()),
        },
        partitions_dropped: Vec::new(),
    };
    let record = purge_record(reader_party(&viewer.reader), &action).map_err(refused)?;
    shared.record_action(record).await?;
    let report = result.map_err(PageError::store("purging old audit rows"))?;
    tracing::info!(
        reader = viewer.reader.id(),
        older_than = older,
        dry_run,
        events = report.events,
        "authtel console: purge"
    );
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    let body = format!(
        "<h1>Purge</h1><p id=\"result\">{verb} {} audit rows older than {} and {} finished outbox entries{}.</p>\
         <p><a href=\"{}/outbox\">Back to the outbox</a></p>",
        report.events,
        escape(&cutoff.to_string()),
        report.outbox,
        if dry_run {
            " (dry run: tick \"really delete\" to delete)"
        } else {
            ""
        },
        escape(&shared.base)
    );
    Ok(Html::page("purge", &shared.base, &body))
}
