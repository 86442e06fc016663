//! Secrets planted through every metadata entry point — typed fields, extra fields, the
//! guard's late metadata, exception reasons and panic messages (of spans, futures and
//! handlers) — never reach a handler: a search of everything captured finds none of them.
//! Emails are refused as identifiers.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::{Context, Waker};

use authtel_core::catalogue;
use authtel_core::metadata::{Metadata, MetadataError, REDACTED};
use authtel_core::registry::handler_fn;
use authtel_core::telemetry;
use authtel_testing::Capture;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1XzEiLCJleHAiOjE3MDB9.sIgNaTuRe-planted_JWT_sig";
const JWT_SIGNATURE: &str = "sIgNaTuRe-planted_JWT_sig";
const BEARER: &str = "Bearer opaque-bearer-planted-7f3a";
const BEARER_TOKEN: &str = "opaque-bearer-planted-7f3a";
const BASIC: &str = "Basic dXNlcjpodW50ZXIy";
const PASSWORD: &str = "hunter2-planted";
const PASSWORD_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHBsYW50ZWQ$aGFzaHBsYW50ZWQ";
const TOTP: &str = "492817";
const BACKUP_CODE: &str = "bk-7781-planted";
const REFRESH_TOKEN: &str = "rt_planted_refresh_9c1d";
const OAUTH_SECRET: &str = "gho_oauth_client_secret_planted";
const API_KEY: &str = "ak_live_planted_51c0";
const COOKIE: &str = "sid=s3ss10n-c00k1e-planted";
const EMAIL: &str = "alice.planted@example.com";

const SECRETS: &[&str] = &[
    JWT,
    JWT_SIGNATURE,
    BEARER,
    BEARER_TOKEN,
    BASIC,
    "dXNlcjpodW50ZXIy",
    PASSWORD,
    PASSWORD_HASH,
    TOTP,
    BACKUP_CODE,
    REFRESH_TOKEN,
    OAUTH_SECRET,
    API_KEY,
    COOKIE,
    EMAIL,
];

/// Metadata with a secret in every typed text field and every secret-named extra key.
fn planted() -> Metadata<'static> {
    Metadata::new()
        .user_id(EMAIL)
        .caller(EMAIL)
        .session_id(JWT)
        .user_agent(BEARER)
        .provider(BASIC)
        .method(JWT)
        .reason(BEARER)
        .operation(JWT)
        .resource(BEARER)
        .rate_limit_key(JWT)
        .with_extra("password", PASSWORD)
        .with_extra("password_hash", PASSWORD_HASH)
        .with_extra("totp_code", TOTP)
        .with_extra("backup_code", BACKUP_CODE)
        .with_extra("refresh_token", REFRESH_TOKEN)
        .with_extra("client_secret", OAUTH_SECRET)
        .with_extra("api_key", API_KEY)
        .with_extra("cookie", COOKIE)
}

#[test]
fn typed_fields_and_extra_fields_are_screened() {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::event(
        &catalogue::SECURITY_SUSPICIOUS_LOGIN,
        Default::default(),
        planted(),
    );
    // Token-looking values under innocent keys, and a JWT embedded in a longer value.
    telemetry::event(
        &catalogue::SECURITY_INVALID_CREDENTIALS,
        Default::default(),
        Metadata::new()
            .with_extra("note", JWT)
            .with_extra("header", BEARER)
            .with_extra("query", concat_leak("access=", JWT))
            .with_extra("basic", BASIC)
            .with_extra("authorization", "anything-planted-auth")
            .with_extra("session_token", "st-planted"),
    );
    capture.assert_emitted(&["security.suspicious_login", "security.invalid_credentials"]);
    capture.assert_no_secret(SECRETS);
    capture.assert_no_secret(&["anything-planted-auth", "st-planted"]);

    let event = capture.single("security.suspicious_login");
    assert_eq!(event.field("user_id"), None, "an email is not a user id");
    assert_eq!(event.field("caller"), None, "an email is not a caller");
    assert_eq!(event.field("session_id"), None, "a JWT is not a session id");
    assert_eq!(event.field("password"), Some(REDACTED));
    assert_eq!(event.field("cookie"), Some(REDACTED));
}

fn concat_leak(a: &str, b: &str) -> &'static str {
    format!("{a}{b}").leak()
}

#[test]
fn try_extra_and_late_guard_metadata_are_screened() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let mut guard = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new().user_id("u_1"));
    guard.metadata_mut().try_extra("otp", TOTP).unwrap();
    guard
        .metadata_mut()
        .try_extra("new_password", PASSWORD)
        .unwrap();
    guard
        .metadata_mut()
        .try_extra("bearer", BEARER_TOKEN)
        .unwrap();
    guard.metadata_mut().try_extra("hint", JWT).unwrap();
    guard.stop(authtel_core::Outcome::Failure);
    capture.assert_emitted(&["mfa.verify.start", "mfa.verify.stop"]);
    capture.assert_no_secret(SECRETS);
    capture.assert_field("mfa.verify.stop", "otp", REDACTED);
}

#[test]
fn emails_are_refused_as_identifiers() {
    assert_eq!(
        Metadata::new().try_user_id(EMAIL).err(),
        Some(MetadataError::EmailAsIdentifier { field: "user_id" })
    );
    let refused = Metadata::new().user_id(EMAIL).caller(EMAIL);
    assert_eq!(refused.refused(), 2);
    assert_eq!(refused.get_user_id(), None);
}

#[test]
fn exception_reasons_and_panic_messages_are_screened() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();

    // A closure span that panics with a JWT in its message.
    let _ = catch_unwind(|| {
        telemetry::span(&catalogue::JWT_VERIFY, Metadata::new(), || -> bool {
            panic!("could not verify {JWT}")
        })
    });
    // A guard ended with an exception whose reason carries a bearer credential.
    telemetry::start(&catalogue::API_TOKEN_USE, Metadata::new()).exception(BEARER);
    // A future whose poll panics with a JWT.
    let fut = telemetry::span_async(&catalogue::OAUTH_CALLBACK, Metadata::new(), async {
        if true {
            panic!("callback carried {JWT}");
        }
        true
    });
    let mut fut = pin!(fut);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }));
    // A handler that panics with a JWT in its message: the failure report's panic_message.
    capture
        .registry()
        .attach(
            "leaky-handler",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|_| panic!("sink rejected {JWT}")),
        )
        .unwrap();
    telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), planted());

    for name in [
        "jwt.verify.exception",
        "api_token.use.exception",
        "oauth.callback.exception",
    ] {
        assert_eq!(
            capture.single(name).exception.unwrap().reason.as_deref(),
            Some(REDACTED),
            "{name}"
        );
    }
    capture.assert_field("pipeline.handler.failure", "reason", "handler_panicked");
    capture.assert_field("pipeline.handler.failure", "panic_message", REDACTED);
    capture.assert_no_secret(SECRETS);
}

#[test]
fn metadata_debug_output_is_screened() {
    let text = format!("{:?}", planted());
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
