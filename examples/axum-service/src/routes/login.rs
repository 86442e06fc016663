//! `POST /login {email, password}`.
//!
//! Order: look the account up, ask the detectors for a verdict (429 + `Retry-After` when
//! they say slow down or block), then the `auth.login` span around the password check and
//! the transaction that records the attempt. The span's metadata carries what the detectors
//! read: the account's id (never the typed email), the client's address and user agent, and
//! `reason = unknown_user` for an account that does not exist.

use authtel::catalogue::{AUTH_LOGIN, SECURITY_LOCKOUT, SECURITY_RATE_LIMITED};
use authtel::detect::Verdict;
use authtel::sql::sqlx;
use authtel::telemetry::{self, Measurements};
use authtel::{Metadata, Outcome};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;

use super::account::Credentials;
use super::{Tokens, body, create_session};
use crate::client::row;
use crate::error::{ApiError, Step};
use crate::{App, db, secrets};

/// What a correct password leads to.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub(crate) enum LoginOk {
    /// Signed in.
    Session(Tokens),
    /// The account has TOTP: post the code with this challenge to `/login/mfa`.
    Mfa {
        mfa_required: bool,
        mfa_token: String,
    },
}

pub(crate) async fn login(
    State(app): State<App>,
    payload: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<LoginOk>, ApiError> {
    let creds = body(payload)?;
    let user = db::user_by_email(app.pool(), &creds.email).await?;
    let user_id = user.as_ref().map(|u| u.id.as_str());

    let verdict = app.detectors().verdict(crate::client::client_ip(), user_id);
    if let Verdict::SlowDown(wait) | Verdict::Block(wait) = verdict {
        return Err(rate_limited(&app, user_id, wait).await?);
    }

    let now = db::now();
    let locked = user
        .as_ref()
        .is_some_and(|u| u.locked_until.is_some_and(|t| t > now));
    let mut meta = Metadata::new().method("password");
    meta = match user_id {
        Some(id) => meta.user_id(id),
        None => meta.reason(authtel::detect::reasons::UNKNOWN_USER),
    };
    if locked {
        meta = meta.reason("account_locked");
    }
    let work = attempt(&app, user.as_ref(), locked, &creds.password);
    let ok = telemetry::span_async(&AUTH_LOGIN, meta, async { Step(work.await) })
        .await
        .0?;
    Ok(Json(ok))
}

async fn attempt(
    app: &App,
    user: Option<&db::User>,
    locked: bool,
    password: &str,
) -> Result<LoginOk, ApiError> {
    let matched = app
        .hashing()
        .verify_blocking(password, user.map(|u| u.password_hash.as_str()))
        .await?;
    let mut tx = app.audit_store().begin().await?;
    let login_row = |outcome, reason: Option<&str>| {
        let mut r = row(AUTH_LOGIN.stop(), outcome).method("password");
        if let Some(u) = user {
            r = r.user(&u.id);
        }
        if let Some(why) = reason {
            r = r.reason(why);
        }
        r.done()
    };
    let Some(user) = user else {
        app.record(&mut tx, &login_row(Outcome::Failure, Some("unknown_user")))
            .await?;
        tx.commit().await?;
        return Err(ApiError::InvalidCredentials("unknown_user"));
    };
    if locked {
        app.record(
            &mut tx,
            &login_row(Outcome::Failure, Some("account_locked")),
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::Locked);
    }
    if !matched {
        let failures = user.failed_logins + 1;
        let threshold = i64::from(app.config().lockout_threshold);
        app.record(
            &mut tx,
            &login_row(Outcome::Failure, Some("invalid_password")),
        )
        .await?;
        if failures >= threshold {
            let until = db::now() + app.config().lockout_duration.as_secs() as i64;
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?")
                .bind(until)
                .bind(&user.id)
                .execute(tx.conn())
                .await?;
            let lock = row(&SECURITY_LOCKOUT, Outcome::Failure)
                .user(&user.id)
                .reason("too_many_attempts")
                .done();
            app.record(&mut tx, &lock).await?;
            tx.commit().await?;
            telemetry::event(
                &SECURITY_LOCKOUT,
                Measurements::new(),
                Metadata::new()
                    .user_id(&user.id)
                    .reason("too_many_attempts"),
            );
        } else {
            sqlx::query("UPDATE users SET failed_logins = ? WHERE id = ?")
                .bind(failures)
                .bind(&user.id)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
        }
        return Err(ApiError::InvalidCredentials("invalid_password"));
    }
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?")
        .bind(&user.id)
        .execute(tx.conn())
        .await?;
    let ok = if user.totp_secret.is_some() {
        let challenge = secrets::random_token()?;
        sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
        )
        .bind(secrets::token_digest(&challenge))
        .bind(&user.id)
        .bind(db::now() + app.config().mfa_ttl.as_secs() as i64)
        .execute(tx.conn())
        .await?;
        app.record(&mut tx, &login_row(Outcome::Success, Some("mfa_required")))
            .await?;
        LoginOk::Mfa {
            mfa_required: true,
            mfa_token: challenge,
        }
    } else {
        app.record(&mut tx, &login_row(Outcome::Success, None))
            .await?;
        LoginOk::Session(create_session(app, &mut tx, &user.id).await?)
    };
    tx.commit().await?;
    Ok(ok)
}

/// Records and reports a login the detectors refused; returns the 429 to answer with.
async fn rate_limited(
    app: &App,
    user_id: Option<&str>,
    wait: std::time::Duration,
) -> Result<ApiError, ApiError> {
    let mut row = row(&SECURITY_RATE_LIMITED, Outcome::Denied).reason("detector_verdict");
    let mut meta = Metadata::new()
        .reason("detector_verdict")
        .method("password");
    if let Some(id) = user_id {
        row = row.user(id);
        meta = meta.user_id(id);
    }
    let mut tx = app.audit_store().begin().await?;
    app.record(&mut tx, &row.done()).await?;
    tx.commit().await?;
    telemetry::event(&SECURITY_RATE_LIMITED, Measurements::new().count(1), meta);
    Ok(ApiError::RateLimited(wait))
}
