//! The application's own tables, next to the audit trail in the same SQLite database.
//!
//! Secrets are stored only as digests (tokens) or Argon2id hashes (passwords). The TOTP
//! seed is the exception every TOTP server shares: verifying a code needs it, so it is
//! stored as issued (encrypt the column at rest in a real deployment).

use std::time::{SystemTime, UNIX_EPOCH};

use authtel::sql::sqlx::{self, SqlitePool};

/// Creates the application tables if they are missing.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        sqlx::query(*statement).execute(pool).await?;
    }
    Ok(())
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'user',
        totp_secret TEXT,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER,
        created_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    )",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    )",
    "CREATE TABLE IF NOT EXISTS mfa_challenges (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS reset_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    )",
];

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A user row, as login needs it.
#[derive(Debug)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) password_hash: String,
    pub(crate) totp_secret: Option<String>,
    pub(crate) failed_logins: i64,
    pub(crate) locked_until: Option<i64>,
}

type UserRow = (String, String, Option<String>, i64, Option<i64>);

impl From<UserRow> for User {
    fn from((id, password_hash, totp_secret, failed_logins, locked_until): UserRow) -> User {
        User {
            id,
            password_hash,
            totp_secret,
            failed_logins,
            locked_until,
        }
    }
}

pub(crate) async fn user_by_email(
    pool: &SqlitePool,
    email: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as::<_, UserRow>(
        "SELECT id, password_hash, totp_secret, failed_logins, locked_until FROM users WHERE email = ?",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(User::from))
}

/// A live session found by its bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) role: String,
}

pub(crate) async fn session_by_token(
    pool: &SqlitePool,
    token_hash: &str,
) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query_as::<_, (String, String, String)>(
        "SELECT s.id, s.user_id, u.role FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
    )
    .bind(token_hash)
    .bind(now())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, user_id, role)| Session { id, user_id, role }))
}
