//! TOTP: enrolment and the second step of a login.

use authtel::catalogue::{MFA_ENROLL, MFA_LOCKOUT, MFA_VERIFY};
use authtel::sql::sqlx;
use authtel::telemetry::{self, Measurements};
use authtel::{Metadata, Outcome};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;

use super::{Authed, Tokens, body, create_session};
use crate::client::row;
use crate::error::{ApiError, Step};
use crate::secrets::totp;
use crate::{App, db, secrets};

/// `POST /mfa/enroll` (signed in) → `200 {secret, otpauth_uri}`: turns TOTP on for the
/// account. (A production service would ask for a first code before switching it on.)
pub(crate) async fn enroll(
    State(app): State<App>,
    authed: Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = &authed.session;
    let meta = Metadata::new()
        .user_id(&s.user_id)
        .session_id(&s.id)
        .method("totp");
    let work = async {
        let mut seed = [0u8; 20];
        getrandom::fill(&mut seed)
            .map_err(|e| ApiError::internal(format!("the OS random source failed: {e}")))?;
        let secret = totp::base32(&seed);
        let mut tx = app.audit_store().begin().await?;
        sqlx::query("UPDATE users SET totp_secret = ? WHERE id = ?")
            .bind(&secret)
            .bind(&s.user_id)
            .execute(tx.conn())
            .await?;
        let row = row(MFA_ENROLL.stop(), Outcome::Success)
            .user(&s.user_id)
            .session(&s.id)
            .method("totp")
            .done();
        app.record(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(secret)
    };
    let secret = telemetry::span_async(&MFA_ENROLL, meta, async { Step(work.await) })
        .await
        .0?;
    let uri = format!(
        "otpauth://totp/authtel-example:{}?secret={secret}&issuer=authtel-example",
        s.user_id
    );
    Ok(Json(
        serde_json::json!({ "secret": secret, "otpauth_uri": uri }),
    ))
}

#[derive(Debug)]
struct Challenge {
    user_id: String,
    failures: i64,
    totp_secret: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct MfaStep {
    mfa_token: String,
    code: String,
}

/// `POST /login/mfa {mfa_token, code}` → the session tokens. A wrong code counts against
/// the challenge; at `mfa_max_failures` it is burnt and `mfa.lockout` is emitted.
pub(crate) async fn login_mfa(
    State(app): State<App>,
    payload: Result<Json<MfaStep>, JsonRejection>,
) -> Result<Json<Tokens>, ApiError> {
    let step = body(payload)?;
    let digest = secrets::token_digest(&step.mfa_token);
    let (user_id, failures, totp_secret) = sqlx::query_as::<_, (String, i64, Option<String>)>(
        "SELECT c.user_id, c.failures, u.totp_secret FROM mfa_challenges c JOIN users u ON u.id = c.user_id
         WHERE c.token_hash = ? AND c.expires_at > ?",
    )
    .bind(&digest)
    .bind(db::now())
    .fetch_optional(app.pool())
    .await?
    .ok_or(ApiError::InvalidCredentials("invalid_challenge"))?;
    let challenge = Challenge {
        user_id,
        failures,
        totp_secret,
    };
    let meta = Metadata::new().user_id(&challenge.user_id).method("totp");
    let work = async {
        let seed = challenge
            .totp_secret
            .as_deref()
            .and_then(totp::from_base32)
            .ok_or(ApiError::InvalidCredentials("mfa_not_enrolled"))?;
        let mut tx = app.audit_store().begin().await?;
        let verify_row = |outcome| {
            row(MFA_VERIFY.stop(), outcome)
                .user(&challenge.user_id)
                .method("totp")
        };
        if !totp::verify(&seed, step.code.trim(), db::now() as u64) {
            let failures = challenge.failures + 1;
            app.record(
                &mut tx,
                &verify_row(Outcome::Failure).reason("invalid_code").done(),
            )
            .await?;
            let burnt = failures >= i64::from(app.config().mfa_max_failures);
            if burnt {
                sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = ?")
                    .bind(&digest)
                    .execute(tx.conn())
                    .await?;
                let lock = row(&MFA_LOCKOUT, Outcome::Failure)
                    .user(&challenge.user_id)
                    .reason("too_many_attempts")
                    .done();
                app.record(&mut tx, &lock).await?;
            } else {
                sqlx::query("UPDATE mfa_challenges SET failures = ? WHERE token_hash = ?")
                    .bind(failures)
                    .bind(&digest)
                    .execute(tx.conn())
                    .await?;
            }
            tx.commit().await?;
            if burnt {
                telemetry::event(
                    &MFA_LOCKOUT,
                    Measurements::new(),
                    Metadata::new()
                        .user_id(&challenge.user_id)
                        .reason("too_many_attempts"),
                );
            }
            return Err(ApiError::InvalidCredentials("invalid_code"));
        }
        sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = ?")
            .bind(&digest)
            .execute(tx.conn())
            .await?;
        app.record(&mut tx, &verify_row(Outcome::Success).done())
            .await?;
        let tokens = create_session(&app, &mut tx, &challenge.user_id).await?;
        tx.commit().await?;
        Ok(tokens)
    };
    let tokens = telemetry::span_async(&MFA_VERIFY, meta, async { Step(work.await) })
        .await
        .0?;
    Ok(Json(tokens))
}
