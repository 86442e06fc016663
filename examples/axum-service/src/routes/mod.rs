//! The HTTP routes. Each handler: resolve what it needs, then run the operation inside a
//! span, writing the audit row in the transaction of the change.

mod account;
mod authz;
mod login;
mod mfa;
mod reset;
mod tokens;

use authtel::sql::AuditTx;
use authtel::sql::sqlx::Sqlite;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::client::row;
use crate::error::ApiError;
use crate::{App, db, secrets};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/register", post(account::register))
        .route("/login", post(login::login))
        .route("/login/mfa", post(mfa::login_mfa))
        .route("/logout", post(account::logout))
        .route("/me", get(account::me))
        .route("/mfa/enroll", post(mfa::enroll))
        .route("/password/reset", post(reset::request))
        .route("/password/reset/complete", post(reset::complete))
        .route("/token/refresh", post(tokens::refresh))
        .route("/authz/check", post(authz::check))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.render_metrics(),
    )
}

/// A request carrying a live session's bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Authed {
    pub(crate) session: db::Session,
}

impl FromRequestParts<App> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Authed, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let session = db::session_by_token(app.pool(), &secrets::token_digest(token))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Authed { session })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Tokens handed out at the end of a login, MFA step or refresh.
#[derive(Debug, Serialize)]
pub(crate) struct Tokens {
    pub(crate) session_id: String,
    pub(crate) session_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
}

/// Creates a session and its first refresh token inside `tx`, in a `session.create` span.
pub(crate) async fn create_session(
    app: &App,
    tx: &mut AuditTx<'static, Sqlite>,
    user_id: &str,
) -> Result<Tokens, ApiError> {
    let session_id = secrets::public_id();
    let meta = authtel::Metadata::new()
        .user_id(user_id)
        .session_id(&session_id);
    let work = async {
        let session_token = secrets::random_token()?;
        let refresh_token = secrets::random_token()?;
        let now = db::now();
        let ttl = app.config().session_ttl.as_secs();
        authtel::sql::sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&session_id)
        .bind(secrets::token_digest(&session_token))
        .bind(user_id)
        .bind(now)
        .bind(now + ttl as i64)
        .execute(tx.conn())
        .await?;
        insert_refresh(app, tx, &refresh_token, &session_id, user_id).await?;
        let row = row(
            authtel::catalogue::SESSION_CREATE.stop(),
            authtel::Outcome::Success,
        )
        .user(user_id)
        .session(&session_id)
        .done();
        app.record(tx, &row).await?;
        Ok(Tokens {
            session_id: session_id.clone(),
            session_token,
            refresh_token,
            expires_in: ttl,
        })
    };
    authtel::telemetry::span_async(&authtel::catalogue::SESSION_CREATE, meta, async {
        crate::error::Step(work.await)
    })
    .await
    .0
}

pub(crate) async fn insert_refresh(
    app: &App,
    tx: &mut AuditTx<'static, Sqlite>,
    token: &str,
    session_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    authtel::sql::sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(secrets::token_digest(token))
    .bind(session_id)
    .bind(user_id)
    .bind(db::now() + app.config().refresh_ttl.as_secs() as i64)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A JSON body, or a 400 naming what is wrong (never echoing the input).
pub(crate) fn body<T>(
    payload: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    payload
        .map(|Json(t)| t)
        .map_err(|_| ApiError::BadRequest("the body must be JSON with the documented fields"))
}
