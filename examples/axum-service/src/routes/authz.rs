//! `POST /authz/check {resource, operation}` (signed in) → `200 {allowed}`.
//!
//! The policy: `public/…` is open to everyone signed in; `users/<id>/…` to that user;
//! `admin/…` to the `admin` role. Every decision is audited with
//! `authorization::log_authorized` / `log_denied`, and an audit row.

use authtel::Outcome;
use authtel::authorization::{DenyReason, Operation, log_authorized, log_denied};
use authtel::catalogue::{AUTHORIZATION_ALLOWED, AUTHORIZATION_DENIED};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;

use super::{Authed, body};
use crate::App;
use crate::client::row;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Check {
    resource: String,
    operation: String,
}

/// The operations the policy knows (a closed set: it becomes a metric label).
fn operation(name: &str) -> Result<Operation, ApiError> {
    match name {
        "read" => Ok(Operation::Read),
        "write" => Ok(Operation::Write),
        "delete" => Ok(Operation::Delete),
        _ => Err(ApiError::BadRequest(
            "operation must be read, write or delete",
        )),
    }
}

pub(crate) async fn check(
    State(app): State<App>,
    authed: Authed,
    payload: Result<Json<Check>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req = body(payload)?;
    if req.resource.len() > 256 {
        return Err(ApiError::BadRequest("resource must be at most 256 bytes"));
    }
    let op = operation(&req.operation)?;
    let s = &authed.session;
    let own = format!("users/{}/", s.user_id);
    let allowed = req.resource.starts_with("public/")
        || req.resource.starts_with(&own)
        || (req.resource.starts_with("admin/") && s.role == "admin");
    let (event, outcome) = if allowed {
        (&AUTHORIZATION_ALLOWED, Outcome::Success)
    } else {
        (&AUTHORIZATION_DENIED, Outcome::Denied)
    };
    let mut row = row(event, outcome).user(&s.user_id).session(&s.id).done();
    row = row.with_actor(authtel::audit::Party::new(s.user_id.as_str(), "caller"));
    row = row.with_resource(req.resource.clone());
    row = row.with_operation(op.as_str().to_owned());
    if !allowed {
        row = row.with_reason(DenyReason::InsufficientCapability.as_str().to_owned());
    }
    let mut tx = app.audit_store().begin().await?;
    app.record(&mut tx, &row).await?;
    tx.commit().await?;
    if allowed {
        log_authorized(op, &s.user_id, &req.resource);
    } else {
        log_denied(
            op,
            &s.user_id,
            &req.resource,
            DenyReason::InsufficientCapability,
        );
    }
    Ok(Json(serde_json::json!({ "allowed": allowed })))
}
