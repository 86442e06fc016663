//! Register, logout and the session check.

use authtel::catalogue::{AUTH_LOGOUT, AUTH_REGISTER, TOKEN_VERIFY};
use authtel::sql::sqlx;
use authtel::{Metadata, Outcome, telemetry};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use super::{Authed, body};
use crate::client::row;
use crate::error::{ApiError, Step};
use crate::{App, db, secrets};

#[derive(Deserialize)]
pub(crate) struct Credentials {
    pub(crate) email: String,
    pub(crate) password: String,
}

/// Emails are opaque to the service beyond this sanity check; they never go into telemetry.
pub(crate) fn check_email(email: &str) -> Result<(), ApiError> {
    if email.len() > 254 || !email.contains('@') {
        return Err(ApiError::BadRequest(
            "email must be an address of at most 254 bytes",
        ));
    }
    Ok(())
}

pub(crate) fn check_password(password: &str) -> Result<(), ApiError> {
    if !(8..=1024).contains(&password.len()) {
        return Err(ApiError::BadRequest("password must be 8 to 1024 bytes"));
    }
    Ok(())
}

/// `POST /register {email, password}` → `201 {user_id}`.
///
/// The audit row is recorded before the user is inserted, in the same transaction: when the
/// insert fails (the email is taken), the transaction rolls back and the row goes with it.
pub(crate) async fn register(
    State(app): State<App>,
    payload: Result<Json<Credentials>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let creds = body(payload)?;
    check_email(&creds.email)?;
    check_password(&creds.password)?;
    let user_id = secrets::public_id();
    let meta = Metadata::new().user_id(&user_id).method("password");
    let work = async {
        let hash = app.hashing().hash_blocking(&creds.password).await?;
        let mut tx = app.audit_store().begin().await?;
        let row = row(AUTH_REGISTER.stop(), Outcome::Success)
            .user(&user_id)
            .method("password")
            .done();
        app.record(&mut tx, &row).await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user_id)
        .bind(&creds.email)
        .bind(&hash)
        .bind(db::now())
        .execute(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // Dropping `tx` rolls back: the audit row above is never stored.
                return Err(ApiError::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    };
    telemetry::span_async(&AUTH_REGISTER, meta, async { Step(work.await) })
        .await
        .0?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "user_id": user_id })),
    ))
}

/// `POST /logout` with the session's bearer token → `204`. Revokes the session and its
/// refresh tokens.
pub(crate) async fn logout(State(app): State<App>, authed: Authed) -> Result<StatusCode, ApiError> {
    let s = &authed.session;
    let work = async {
        let mut tx = app.audit_store().begin().await?;
        let now = db::now();
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ?")
            .bind(now)
            .bind(&s.id)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?) WHERE session_id = ?",
        )
        .bind(now)
        .bind(&s.id)
        .execute(tx.conn())
        .await?;
        let row = row(AUTH_LOGOUT.stop(), Outcome::Success)
            .user(&s.user_id)
            .session(&s.id)
            .done();
        app.record(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(())
    };
    if app.config().mutations.skip_logout_event {
        work.await?;
    } else {
        let meta = Metadata::new().user_id(&s.user_id).session_id(&s.id);
        telemetry::span_async(&AUTH_LOGOUT, meta, async { Step(work.await) })
            .await
            .0?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me` with a bearer token → `200 {user_id, session_id, role}`: the session check.
/// Reads are not audited; the check is a `token.verify` span (method `session`).
pub(crate) async fn me(
    State(app): State<App>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let meta = Metadata::new().method("session");
    let work = async {
        let token = super::bearer(&headers).ok_or(ApiError::Unauthenticated)?;
        db::session_by_token(app.pool(), &secrets::token_digest(token))
            .await?
            .ok_or(ApiError::InvalidCredentials("invalid_session"))
    };
    let session = telemetry::span_async(&TOKEN_VERIFY, meta, async { Step(work.await) })
        .await
        .0?;
    Ok(Json(serde_json::json!({
        "user_id": session.user_id,
        "session_id": session.id,
        "role": session.role,
    })))
}
