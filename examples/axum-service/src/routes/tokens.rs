//! `POST /token/refresh {refresh_token}`: rotation with reuse detection.
//!
//! Every refresh burns the presented token and issues a new one (and a new session token).
//! A burnt token presented again means it was copied: the whole family (the session and
//! every refresh token of it) is revoked, and the `jwt.refresh` failure carries
//! `reason = reuse_detected`, which the refresh-reuse detector turns into
//! `security.refresh_token_reuse`.

use authtel::catalogue::JWT_REFRESH;
use authtel::sql::sqlx;
use authtel::{Metadata, Outcome, telemetry};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;

use super::{Tokens, body, insert_refresh};
use crate::client::row;
use crate::error::{ApiError, Step};
use crate::{App, db, secrets};

#[derive(Deserialize)]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

#[derive(Debug)]
struct Found {
    session_id: String,
    user_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

pub(crate) async fn refresh(
    State(app): State<App>,
    payload: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<Json<Tokens>, ApiError> {
    let req = body(payload)?;
    let digest = secrets::token_digest(&req.refresh_token);
    let found = sqlx::query_as::<_, (String, String, i64, Option<i64>, Option<i64>)>(
        "SELECT r.session_id, r.user_id, r.expires_at, r.used_at, s.revoked_at
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = ?",
    )
    .bind(&digest)
    .fetch_optional(app.pool())
    .await?
    .map(
        |(session_id, user_id, expires_at, used_at, revoked_at)| Found {
            session_id,
            user_id,
            expires_at,
            used_at,
            revoked_at,
        },
    );
    let Some(found) = found else {
        let meta = Metadata::new().reason("invalid_token");
        return telemetry::span_async(&JWT_REFRESH, meta, async {
            Step(Err(ApiError::InvalidCredentials("invalid_token")))
        })
        .await
        .0;
    };
    // `session_id` is the family's id: the session, never the token.
    let reused = found.used_at.is_some();
    let mut meta = Metadata::new()
        .user_id(&found.user_id)
        .session_id(&found.session_id);
    if reused {
        meta = meta.reason("reuse_detected");
    } else if found.revoked_at.is_some() {
        meta = meta.reason("revoked");
    }
    let work = rotate(&app, &found, &digest);
    let tokens = telemetry::span_async(&JWT_REFRESH, meta, async { Step(work.await) })
        .await
        .0?;
    Ok(Json(tokens))
}

async fn rotate(app: &App, found: &Found, digest: &str) -> Result<Tokens, ApiError> {
    let now = db::now();
    let refresh_row = |outcome| {
        row(JWT_REFRESH.stop(), outcome)
            .user(&found.user_id)
            .session(&found.session_id)
    };
    let mut tx = app.audit_store().begin().await?;
    if found.used_at.is_some() {
        // Reuse: revoke the family in the same transaction as its audit row.
        sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(now)
            .bind(&found.session_id)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?) WHERE session_id = ?",
        )
        .bind(now)
        .bind(&found.session_id)
        .execute(tx.conn())
        .await?;
        app.record(
            &mut tx,
            &refresh_row(Outcome::Failure)
                .reason("reuse_detected")
                .done(),
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::RefreshReuse);
    }
    if found.revoked_at.is_some() || found.expires_at <= now {
        let why = if found.revoked_at.is_some() {
            "revoked"
        } else {
            "expired"
        };
        app.record(&mut tx, &refresh_row(Outcome::Failure).reason(why).done())
            .await?;
        tx.commit().await?;
        return Err(ApiError::InvalidCredentials(
            if found.revoked_at.is_some() {
                "revoked"
            } else {
                "expired"
            },
        ));
    }
    let burnt = sqlx::query(
        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
    )
    .bind(now)
    .bind(digest)
    .execute(tx.conn())
    .await?;
    if burnt.rows_affected() != 1 {
        // A concurrent refresh won the race with the same token: that is reuse too.
        return Err(ApiError::RefreshReuse);
    }
    let session_token = secrets::random_token()?;
    let refresh_token = secrets::random_token()?;
    sqlx::query("UPDATE sessions SET token_hash = ?, expires_at = ? WHERE id = ?")
        .bind(secrets::token_digest(&session_token))
        .bind(now + app.config().session_ttl.as_secs() as i64)
        .bind(&found.session_id)
        .execute(tx.conn())
        .await?;
    insert_refresh(
        app,
        &mut tx,
        &refresh_token,
        &found.session_id,
        &found.user_id,
    )
    .await?;
    app.record(&mut tx, &refresh_row(Outcome::Success).done())
        .await?;
    tx.commit().await?;
    Ok(Tokens {
        session_id: found.session_id.clone(),
        session_token,
        refresh_token,
        expires_in: app.config().session_ttl.as_secs(),
    })
}
