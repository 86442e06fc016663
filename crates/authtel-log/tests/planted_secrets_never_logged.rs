//! Secrets planted through the public API never reach the log output.

mod support;

use authtel_core::catalogue::{
    AUTH_LOGIN, JWT_REFRESH, MFA_VERIFY, OAUTH_CALLBACK, SECURITY_SUSPICIOUS_LOGIN,
};
use authtel_core::metadata::{Metadata, REDACTED};
use authtel_core::telemetry::{self, Measurements};
use authtel_log::LoggerOptions;
use support::capture;
use tracing::Level;

const PASSWORD: &str = "hunter2-Pa55w0rd-planted";
const BEARER: &str = "Bearer sk_live_bearer_planted_4f9a8b";
const BEARER_SECRET_PART: &str = "sk_live_bearer_planted_4f9a8b";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzEiLCJwbGFudGVkIjp0cnVlfQ.c2lnbmF0dXJlX3BsYW50ZWQ";
const TOTP: &str = "90417263";
const REFRESH_TOKEN: &str = "rt_planted_8c1f0e2d9a7b6c5d";
const CLIENT_SECRET: &str = "cs_oauth_planted_7d3e9f1a2b";
const COOKIE: &str = "session=ck_planted_77aa99bb";
const PASSWORD_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHBsYW50ZWQ$aGFzaHBsYW50ZWQ";

/// Not a secret but personal data: an email given where an identifier belongs.
const EMAIL: &str = "alice.planted@example.com";

const SECRETS: [&str; 12] = [
    EMAIL,
    "planted@example",
    PASSWORD,
    BEARER,
    BEARER_SECRET_PART,
    JWT,
    "c2lnbmF0dXJlX3BsYW50ZWQ",
    TOTP,
    REFRESH_TOKEN,
    CLIENT_SECRET,
    "ck_planted_77aa99bb",
    PASSWORD_HASH,
];

fn leaky_metadata() -> Metadata<'static> {
    Metadata::new()
        .user_id("u_planted")
        .reason(JWT)
        .user_agent(BEARER)
        .with_extra("password", PASSWORD)
        .with_extra("otp", TOTP)
        .with_extra("refresh_token", REFRESH_TOKEN)
        .with_extra("client_secret", CLIENT_SECRET)
        .with_extra("cookie", COOKIE)
        .with_extra("password_hash", PASSWORD_HASH)
        .with_extra("note", BEARER)
        .with_extra("id_token_hint", JWT)
}

#[test]
fn planted_secrets_never_reach_the_log() {
    let out = capture(LoggerOptions::new().with_level(Level::TRACE), None, || {
        let _ = telemetry::span(&AUTH_LOGIN, leaky_metadata(), || {
            Err::<(), _>("invalid_password")
        });
        let _ = telemetry::span(&OAUTH_CALLBACK, leaky_metadata().provider(JWT), || true);
        let _ = telemetry::span(&JWT_REFRESH, leaky_metadata().session_id(JWT), || Some(()));
        telemetry::event(
            &SECURITY_SUSPICIOUS_LOGIN,
            Measurements::new().count(1),
            leaky_metadata(),
        );
        // An email as user id and as caller: refused, so neither is logged.
        telemetry::event(
            &SECURITY_SUSPICIOUS_LOGIN,
            Measurements::new().count(1),
            Metadata::new()
                .user_id(EMAIL)
                .caller(EMAIL)
                .reason("email_as_id"),
        );
        // Exception reasons are free text: a panic message or an explicit reason carrying
        // a credential must not leak either.
        let panicked = std::panic::catch_unwind(|| {
            telemetry::span(&MFA_VERIFY, leaky_metadata(), || -> bool {
                panic!("{}", JWT)
            })
        });
        assert!(panicked.is_err());
        telemetry::start(&MFA_VERIFY, leaky_metadata()).exception(BEARER);
    });

    // The scenario really logged, with the fields the secrets were planted in.
    assert_eq!(out.lines().len(), 7, "{}", out.text);
    assert!(out.text.contains("email_as_id"), "{}", out.text);
    assert!(out.text.contains("password=[REDACTED]"), "{}", out.text);
    assert!(out.text.contains("u_planted"));
    assert!(out.text.contains(REDACTED));

    let hits: Vec<&str> = SECRETS
        .iter()
        .copied()
        .filter(|s| out.text.contains(s))
        .collect();
    assert!(
        hits.is_empty(),
        "secrets leaked into the log: {hits:?}\n{}",
        out.text
    );
    assert!(
        !out.text.contains("eyJ"),
        "something JWT-shaped leaked:\n{}",
        out.text
    );
}
