//! `/detections`: the detector signals (`security.*` records: brute force, password
//! spraying, lockouts, impossible travel, …) in the last `?since=` (default 24h), newest
//! first, one store query per signal of the catalogue.

use std::sync::Arc;

use authtel_core::audit::Timestamp;
use authtel_core::catalogue::{self, Category};
use authtel_sql::AuditQuery;
use axum::extract::{Query, State};

use crate::Shared;
use crate::error::PageError;
use crate::html::{Html, escape};
use crate::pages::{parse_time, record_table};

/// Hits shown per signal at most.
const PER_SIGNAL: u32 = 200;

/// The window.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DetectParams {
    #[serde(default)]
    since: String,
}

/// The page.
pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<DetectParams>,
) -> Result<Html, PageError> {
    let since_text = if p.since.trim().is_empty() {
        "24h"
    } else {
        p.since.trim()
    };
    let since = parse_time("since", since_text, Timestamp::now())?.unwrap_or_else(Timestamp::now);
    let mut hits = Vec::new();
    for event in catalogue::all()
        .iter()
        .filter(|e| e.category() == Category::Security)
    {
        let q = AuditQuery::new()
            .action(event.name())
            .from(since)
            .limit(PER_SIGNAL);
        let page = shared
            .store
            .query(&q)
            .await
            .map_err(PageError::store("reading detector signals"))?;
        hits.extend(page.events);
    }
    hits.sort_by_key(|e| std::cmp::Reverse((e.occurred_at(), e.id())));
    let body = format!(
        "<h1>Detector hits</h1><p>{} security signals since {} ({}).</p>{}",
        hits.len(),
        escape(&since.to_string()),
        escape(since_text),
        record_table(&shared.base, &hits, "detections")
    );
    Ok(Html::page("detections", &shared.base, &body))
}
