//! Password reset: request a single-use, expiring token by mail; complete it with a new
//! password. Tokens are stored as digests and burnt on use.

use authtel::catalogue::{
    ACCOUNT_PASSWORD_CHANGE, RESET_COMPLETED, RESET_REQUESTED, SESSION_REVOKE_ALL,
};
use authtel::sql::sqlx;
use authtel::telemetry::{self, Measurements};
use authtel::{Metadata, Outcome};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use super::account::check_password;
use super::body;
use crate::client::row;
use crate::error::{ApiError, Step};
use crate::mailbox::Mail;
use crate::{App, db, secrets};

#[derive(Deserialize)]
pub(crate) struct ResetRequest {
    email: String,
}

/// `POST /password/reset {email}` → `202` whether or not the account exists (the answer
/// must not reveal it). The token goes to the mailbox; with `dev_return_reset_token` it is
/// also in the response.
pub(crate) async fn request(
    State(app): State<App>,
    payload: Result<Json<ResetRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let req = body(payload)?;
    let user = db::user_by_email(app.pool(), &req.email).await?;
    let mut tx = app.audit_store().begin().await?;
    let (meta_user, token) = match &user {
        Some(u) => {
            let token = secrets::random_token()?;
            sqlx::query(
                "INSERT INTO reset_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
            )
            .bind(secrets::token_digest(&token))
            .bind(&u.id)
            .bind(db::now() + app.config().reset_ttl.as_secs() as i64)
            .execute(tx.conn())
            .await?;
            app.record(
                &mut tx,
                &row(&RESET_REQUESTED, Outcome::Success).user(&u.id).done(),
            )
            .await?;
            (Some(u.id.as_str()), Some(token))
        }
        None => {
            let row = row(&RESET_REQUESTED, Outcome::Failure)
                .reason("unknown_user")
                .done();
            app.record(&mut tx, &row).await?;
            (None, None)
        }
    };
    tx.commit().await?;
    let meta = match meta_user {
        Some(id) => Metadata::new().user_id(id),
        None => Metadata::new()
            .reason("unknown_user")
            .outcome(Outcome::Failure),
    };
    telemetry::event(&RESET_REQUESTED, Measurements::new(), meta);
    let mut answer =
        serde_json::json!({ "status": "if the account exists, a reset link was sent" });
    if let Some(token) = token {
        if app.config().dev_return_reset_token {
            answer["reset_token"] = token.clone().into();
        }
        app.mailbox().send(Mail {
            to: req.email,
            reset_token: token,
        });
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

#[derive(Deserialize)]
pub(crate) struct ResetComplete {
    token: String,
    new_password: String,
}

/// `POST /password/reset/complete {token, new_password}` → `204`. Sets the password,
/// burns the token and revokes every session of the account, in one transaction.
pub(crate) async fn complete(
    State(app): State<App>,
    payload: Result<Json<ResetComplete>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let req = body(payload)?;
    check_password(&req.new_password)?;
    let digest = secrets::token_digest(&req.token);
    let found = sqlx::query_as::<_, (String,)>(
        "SELECT user_id FROM reset_tokens WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(&digest)
    .bind(db::now())
    .fetch_optional(app.pool())
    .await?;
    let Some(found) = found else {
        let meta = Metadata::new().method("reset").reason("invalid_token");
        return telemetry::span_async(&ACCOUNT_PASSWORD_CHANGE, meta, async {
            Step::<()>(Err(ApiError::InvalidCredentials("invalid_token")))
        })
        .await
        .0
        .map(|()| StatusCode::NO_CONTENT);
    };
    let (user_id,) = found;
    let meta = Metadata::new().user_id(&user_id).method("reset");
    let work = async {
        let hash = app.hashing().hash_blocking(&req.new_password).await?;
        let mut tx = app.audit_store().begin().await?;
        let now = db::now();
        // Burn the token first; a concurrent use of the same token then updates nothing.
        let burnt = sqlx::query(
            "UPDATE reset_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        )
        .bind(now)
        .bind(&digest)
        .execute(tx.conn())
        .await?;
        if burnt.rows_affected() != 1 {
            return Err(ApiError::InvalidCredentials("invalid_token"));
        }
        sqlx::query("UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?")
            .bind(&hash)
            .bind(&user_id)
            .execute(tx.conn())
            .await?;
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        for row in [
            row(ACCOUNT_PASSWORD_CHANGE.stop(), Outcome::Success).method("reset"),
            row(&RESET_COMPLETED, Outcome::Success),
            row(&SESSION_REVOKE_ALL, Outcome::Success).reason("password_reset"),
        ] {
            app.record(&mut tx, &row.user(&user_id).done()).await?;
        }
        tx.commit().await?;
        telemetry::event(
            &RESET_COMPLETED,
            Measurements::new(),
            Metadata::new().user_id(&user_id),
        );
        telemetry::event(
            &SESSION_REVOKE_ALL,
            Measurements::new().count(revoked),
            Metadata::new().user_id(&user_id).reason("password_reset"),
        );
        Ok(())
    };
    telemetry::span_async(&ACCOUNT_PASSWORD_CHANGE, meta, async { Step(work.await) })
        .await
        .0?;
    Ok(StatusCode::NO_CONTENT)
}
