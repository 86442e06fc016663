//! The service's auth flows, described for the completeness kit and run over HTTP.
//!
//! `run` drives every flow once against a fresh service and returns what the kit found,
//! so the same suite serves the passing test and the mutation check.

use authtel::Outcome;
use authtel::catalogue::*;
use authtel_axum_service::{Config, totp};
use authtel_testing::Capture;
use authtel_testing::flows::{Coverage, Expect, Field, Flow, FlowFailure, FlowSuite};
use serde_json::json;

use super::Service;
use super::http::{Request, Response};

/// What one run of the suite found.
pub struct SuiteRun {
    pub failures: Vec<FlowFailure>,
    pub coverage: Coverage,
    /// Every secret the run handled (passwords, tokens, TOTP seeds), for leak checks.
    pub secrets: Vec<String>,
    pub service: Service,
}

impl SuiteRun {
    pub fn report(&self) -> String {
        self.failures.iter().map(|f| format!("{f}\n")).collect()
    }
}

struct Runner {
    service: Service,
    suite: FlowSuite,
    failures: Vec<FlowFailure>,
    secrets: Vec<String>,
}

impl Runner {
    async fn flow(&mut self, flow: Flow, request: Request, status: u16) -> Response {
        let mark = self.service.mark().await;
        let response = request.send(self.service.addr).await;
        assert_eq!(
            response.status,
            status,
            "flow {:?}: {}",
            flow.name(),
            response.body
        );
        let seen = self.service.since(mark).await;
        if let Err(failure) = self.suite.check(&flow, &seen) {
            self.failures.push(failure);
        }
        response
    }

    /// A request that is set-up, not a checked flow.
    async fn send(&self, request: Request, status: u16) -> Response {
        let response = request.send(self.service.addr).await;
        assert_eq!(
            response.status, status,
            "set-up request failed: {}",
            response.body
        );
        response
    }
}

fn flow(name: &str) -> Flow {
    Flow::new(name).with_request_context()
}

fn creds(email: &str, password: &str) -> serde_json::Value {
    json!({ "email": email, "password": password })
}

/// The detectors run in monitor mode here (signals, no throttling), so the flows' own
/// repeated failures from one loopback address do not trip the brute-force verdict; the
/// verdict has its own test.
pub async fn run(capture: &Capture, configure: impl FnOnce(&mut Config)) -> SuiteRun {
    let service = Service::start(capture, |c| {
        c.detect = c.detect.clone().with_mode(authtel::detect::Mode::Monitor);
        configure(c);
    })
    .await;
    let mut r = Runner {
        service,
        suite: FlowSuite::new(),
        failures: Vec::new(),
        secrets: Vec::new(),
    };
    let password = "correct horse battery staple";
    r.secrets.push(password.to_owned());

    // Register, then the same email again: that transaction rolls back.
    let alice = "alice@example.com";
    let register = flow("register").expect(
        Expect::stop(&AUTH_REGISTER, Outcome::Success)
            .fields([Field::UserId, Field::Method])
            .audited(),
    );
    let body = r
        .flow(
            register,
            Request::post("/register", creds(alice, password)),
            201,
        )
        .await;
    let alice_id = body.text("user_id");
    let duplicate = flow("duplicate registration (rolled back)")
        .rolled_back()
        .expect(Expect::stop(&AUTH_REGISTER, Outcome::Failure));
    r.flow(
        duplicate,
        Request::post("/register", creds(alice, password)),
        409,
    )
    .await;

    // Logins.
    let login_ok = flow("login ok")
        .expect(
            Expect::stop(&AUTH_LOGIN, Outcome::Success)
                .fields([Field::UserId, Field::Method])
                .audited(),
        )
        .expect(
            Expect::stop(&SESSION_CREATE, Outcome::Success)
                .fields([Field::UserId, Field::SessionId])
                .audited(),
        );
    let session = r
        .flow(
            login_ok,
            Request::post("/login", creds(alice, password)),
            200,
        )
        .await;
    let (token, refresh) = (session.text("session_token"), session.text("refresh_token"));
    r.secrets.extend([token.clone(), refresh.clone()]);

    let bad = flow("login with a wrong password").expect(
        Expect::stop(&AUTH_LOGIN, Outcome::Failure)
            .field(Field::UserId)
            .audited(),
    );
    r.secrets.push("wrong password 1".into());
    r.flow(
        bad,
        Request::post("/login", creds(alice, "wrong password 1")),
        401,
    )
    .await;

    let unknown = flow("login of an unknown user").expect(
        Expect::stop(&AUTH_LOGIN, Outcome::Failure)
            .field(Field::Reason)
            .audited(),
    );
    r.flow(
        unknown,
        Request::post("/login", creds("nobody@example.com", password)),
        401,
    )
    .await;

    let check = flow("session check")
        .expect(Expect::stop(&TOKEN_VERIFY, Outcome::Success).field(Field::Method));
    r.flow(check, Request::get("/me").bearer(&token), 200).await;

    // Authorization decisions.
    let allowed = flow("authorization allowed").expect(
        Expect::signal(&AUTHORIZATION_ALLOWED)
            .fields([Field::Caller, Field::Resource, Field::Operation])
            .audited(),
    );
    let own = format!("users/{alice_id}/profile");
    let ask = |resource: &str| {
        Request::post(
            "/authz/check",
            json!({"resource": resource, "operation": "read"}),
        )
    };
    r.flow(allowed, ask(&own).bearer(&token), 200).await;
    let denied = flow("authorization denied").expect(
        Expect::signal(&AUTHORIZATION_DENIED)
            .fields([
                Field::Caller,
                Field::Resource,
                Field::Operation,
                Field::Reason,
            ])
            .audited(),
    );
    let resp = r
        .flow(denied, ask("admin/settings").bearer(&token), 200)
        .await;
    assert_eq!(resp.json()["allowed"], false);

    // Refresh: rotate, then present the rotated token again.
    let rotate = flow("refresh").expect(
        Expect::stop(&JWT_REFRESH, Outcome::Success)
            .fields([Field::UserId, Field::SessionId])
            .audited(),
    );
    let rotated = r
        .flow(
            rotate,
            Request::post("/token/refresh", json!({"refresh_token": refresh})),
            200,
        )
        .await;
    let (token, new_refresh) = (rotated.text("session_token"), rotated.text("refresh_token"));
    r.secrets.extend([token.clone(), new_refresh.clone()]);
    let reuse = flow("refresh token reuse")
        .expect(
            Expect::stop(&JWT_REFRESH, Outcome::Failure)
                .fields([Field::UserId, Field::SessionId, Field::Reason])
                .audited(),
        )
        .expect(Expect::signal(&SECURITY_REFRESH_TOKEN_REUSE).field(Field::SessionId));
    r.flow(
        reuse,
        Request::post("/token/refresh", json!({"refresh_token": refresh})),
        401,
    )
    .await;
    // The family is revoked: the newest token and the session are dead too.
    r.send(
        Request::post("/token/refresh", json!({"refresh_token": new_refresh})),
        401,
    )
    .await;
    r.send(Request::get("/me").bearer(&token), 401).await;

    // A fresh session, MFA enrolment, and a login with MFA.
    let session = r
        .send(Request::post("/login", creds(alice, password)), 200)
        .await;
    let token = session.text("session_token");
    let enroll = flow("mfa enroll").expect(
        Expect::stop(&MFA_ENROLL, Outcome::Success)
            .fields([Field::UserId, Field::SessionId, Field::Method])
            .audited(),
    );
    let enrolled = r
        .flow(
            enroll,
            Request::post("/mfa/enroll", json!({})).bearer(&token),
            200,
        )
        .await;
    let seed_text = enrolled.text("secret");
    r.secrets.push(seed_text.clone());
    let seed = totp::from_base32(&seed_text).expect("base32 seed");
    let mfa_login = flow("login ok, mfa required").expect(
        Expect::stop(&AUTH_LOGIN, Outcome::Success)
            .fields([Field::UserId, Field::Method])
            .audited(),
    );
    let challenge = r
        .flow(
            mfa_login,
            Request::post("/login", creds(alice, password)),
            200,
        )
        .await
        .text("mfa_token");
    r.secrets.push(challenge.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let good = totp::code(&seed, now);
    // A wrong code: the right code for a time two hours away.
    let wrong = totp::code(&seed, now + 7200);
    let mfa_bad = flow("mfa wrong code").expect(
        Expect::stop(&MFA_VERIFY, Outcome::Failure)
            .fields([Field::UserId, Field::Method])
            .audited(),
    );
    let step =
        |code: &str| Request::post("/login/mfa", json!({"mfa_token": challenge, "code": code}));
    r.flow(mfa_bad, step(&wrong), 401).await;
    let mfa_ok = flow("mfa ok")
        .expect(
            Expect::stop(&MFA_VERIFY, Outcome::Success)
                .fields([Field::UserId, Field::Method])
                .audited(),
        )
        .expect(
            Expect::stop(&SESSION_CREATE, Outcome::Success)
                .fields([Field::UserId, Field::SessionId])
                .audited(),
        );
    let token = r.flow(mfa_ok, step(&good), 200).await.text("session_token");
    r.secrets.push(token.clone());

    let logout = flow("logout").expect(
        Expect::stop(&AUTH_LOGOUT, Outcome::Success)
            .fields([Field::UserId, Field::SessionId])
            .audited(),
    );
    r.flow(
        logout,
        Request::post("/logout", json!({})).bearer(&token),
        204,
    )
    .await;

    // Password reset: request, complete, and the used token again.
    let requested = flow("password reset requested").expect(
        Expect::signal(&RESET_REQUESTED)
            .field(Field::UserId)
            .audited(),
    );
    r.flow(
        requested,
        Request::post("/password/reset", json!({"email": alice})),
        202,
    )
    .await;
    let mail = r
        .service
        .app
        .mailbox()
        .take_for(alice)
        .expect("a reset mail");
    r.secrets.push(mail.reset_token.clone());
    let new_password = "a brand new passphrase";
    r.secrets.push(new_password.to_owned());
    let complete = flow("password reset completed")
        .expect(
            Expect::stop(&ACCOUNT_PASSWORD_CHANGE, Outcome::Success)
                .fields([Field::UserId, Field::Method])
                .audited(),
        )
        .expect(
            Expect::signal(&RESET_COMPLETED)
                .field(Field::UserId)
                .audited(),
        )
        .expect(
            Expect::signal(&SESSION_REVOKE_ALL)
                .field(Field::UserId)
                .audited(),
        );
    let finish = Request::post(
        "/password/reset/complete",
        json!({"token": mail.reset_token, "new_password": new_password}),
    );
    r.flow(complete, finish.clone(), 204).await;
    let used = flow("password reset token used twice")
        .expect(Expect::stop(&ACCOUNT_PASSWORD_CHANGE, Outcome::Failure).field(Field::Reason));
    r.flow(used, finish, 401).await;

    // Lockout: wrong passwords up to the threshold, then a locked account.
    let threshold = r.service.app.config().lockout_threshold;
    for i in 1..threshold {
        r.send(
            Request::post("/login", creds(alice, &format!("wrong password {i}"))),
            401,
        )
        .await;
    }
    let lockout = flow("lockout")
        .expect(
            Expect::stop(&AUTH_LOGIN, Outcome::Failure)
                .field(Field::UserId)
                .audited(),
        )
        .expect(
            Expect::signal(&SECURITY_LOCKOUT)
                .fields([Field::UserId, Field::Reason])
                .audited(),
        );
    r.flow(
        lockout,
        Request::post("/login", creds(alice, "wrong password 9")),
        401,
    )
    .await;
    let locked = flow("login while locked").expect(
        Expect::stop(&AUTH_LOGIN, Outcome::Failure)
            .fields([Field::UserId, Field::Reason])
            .audited(),
    );
    r.flow(
        locked,
        Request::post("/login", creds(alice, new_password)),
        423,
    )
    .await;

    SuiteRun {
        failures: r.failures,
        coverage: r.suite.coverage(),
        secrets: r.secrets,
        service: r.service,
    }
}
