//! Secrets planted through every public path of the metadata never reach the exposition,
//! neither rendered nor scraped over HTTP.

mod common;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection};
use authtel_core::telemetry::{self, Measurements};
use authtel_prometheus::PrometheusSink;
use common::http_get;

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzQyIn0.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ";
const SECRETS: &[&str] = &[
    "hunter2-correct-horse",
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
    "493817",
    JWT,
    "rt_refresh_7f3a9c1e5b",
    "oauth-client-secret-Zq8",
    "sid=cookie-value-91c2",
    "backup-code-4471-2290",
];

#[test]
fn planted_secrets_never_reach_the_exposition() {
    let sink = PrometheusSink::builder()
        .with_listen_address(([127, 0, 0, 1], 0))
        .build()
        .unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    {
        let _scope = registry.enter();
        let planted = || {
            Metadata::new()
                .with_extra("password", SECRETS[0])
                .with_extra("password_hash", SECRETS[1])
                .with_extra("totp_code", SECRETS[2])
                .with_extra("access_token", SECRETS[3])
                .with_extra("refresh_token", SECRETS[4])
                .with_extra("client_secret", SECRETS[5])
                .with_extra("cookie", SECRETS[6])
                .with_extra("note", SECRETS[7])
                .reason(JWT)
                .user_agent(SECRETS[0])
                .operation(SECRETS[4])
                .method(SECRETS[7])
        };
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, planted(), || {
            Err::<(), _>(SECRETS[0])
        });
        telemetry::event(
            &catalogue::SECURITY_INVALID_CREDENTIALS,
            Measurements::new(),
            planted(),
        );
        telemetry::event(
            &catalogue::AUTHORIZATION_DENIED,
            Measurements::new(),
            planted(),
        );
        telemetry::event(&catalogue::OAUTH_REFRESH, Measurements::new(), planted());
        let guard = telemetry::start(&catalogue::JWT_REFRESH, planted());
        guard.exception(JWT);
        let caught = std::panic::catch_unwind(|| {
            telemetry::span(&catalogue::MFA_VERIFY, planted(), || -> bool {
                panic!("totp {} rejected", SECRETS[2])
            })
        });
        assert!(caught.is_err());
    }

    let rendered = sink.render();
    let (status, scraped) = http_get(sink.listen_address().unwrap(), "/metrics");
    assert!(status.contains("200"));
    // The events were recorded, so the search below looks at real output.
    assert!(rendered.contains(r#"event="security.invalid_credentials""#));
    assert!(scraped.contains(r#"span="mfa.verify",kind="panic""#));
    for output in [&rendered, &scraped] {
        for secret in SECRETS {
            assert!(
                !output.contains(secret),
                "secret {secret:?} reached:\n{output}"
            );
        }
        // Parts of the JWT (header, payload) must not leak either.
        assert!(!output.contains("eyJ"), "JWT fragment reached:\n{output}");
    }
}
