//! The secret classes, the forms a careless application writes them in, and which
//! combinations the policy can decide (the rest are out of scope, see `in_scope`).

/// What makes a secret recognisable on its own, without a key or a word naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Nothing: `Tr0ub4dor0042x`, `40000037`. Only a key or a word can give it away.
    None,
    /// Randomness only. Opaque identifiers are random by design, so an identifier field
    /// cannot tell this from an id.
    Entropy,
    /// A structure: JWT, hash format, vendor prefix, email, URL credentials, cookie pair.
    Structural,
}

/// One planted secret: the value written and the distinctive parts searched for.
#[derive(Clone, Debug)]
pub struct Secret {
    pub class: &'static str,
    pub value: String,
    /// Distinctive substrings (at least 8 bytes), each unique to this plant.
    pub needles: Vec<String>,
    pub shape: Shape,
}

fn b64url(bytes: &[u8]) -> String {
    crate::support::needles::base64(bytes, crate::support::needles::URL_SAFE, false)
}

/// Every secret class, made unique by `n` (the plant's number) so a hit names its plant.
pub fn all(n: usize) -> Vec<Secret> {
    let s = |class, value: String, needles: Vec<String>, shape| Secret {
        class,
        value,
        needles,
        shape,
    };
    let jwt_payload = b64url(format!("{{\"sub\":\"canary{n:05}\",\"adm\":true}}").as_bytes());
    let spaced_header = b64url(b"{ \"alg\": \"HS256\", \"typ\": \"JWT\" }");
    vec![
        s(
            "password",
            format!("Tr0ub4dor{n:05}x"),
            vec![format!("Tr0ub4dor{n:05}x")],
            Shape::None,
        ),
        s(
            "argon2_hash",
            format!("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ{n:05}$aGFzaGhhc2hoYXNo{n:05}"),
            vec![format!("aGFzaGhhc2hoYXNo{n:05}")],
            Shape::Structural,
        ),
        s(
            "bcrypt_hash",
            format!("$2b$12$R9h/cIPz0gi.URNNX3kh2O{n:05}ST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
            vec![format!("URNNX3kh2O{n:05}ST9")],
            Shape::Structural,
        ),
        s(
            "totp",
            format!("{}", 40_000_000 + n * 37),
            vec![format!("{}", 40_000_000 + n * 37)],
            Shape::None,
        ),
        s(
            "backup_code",
            format!("{:04}-{:04}-{:04}", 1000 + n % 9000, 7000 + n % 3000, 5311),
            vec![format!(
                "{:04}-{:04}-{:04}",
                1000 + n % 9000,
                7000 + n % 3000,
                5311
            )],
            Shape::None,
        ),
        s(
            "bearer_token",
            format!("8fK2xQ9aB7{n:05}mZ4pL1vN6cR3tYw"),
            vec![format!("8fK2xQ9aB7{n:05}mZ4p")],
            Shape::Entropy,
        ),
        s(
            "refresh_token",
            format!("rt_Zk3Lq8Wm2Xp{n:05}Vn7Bc4Hd9Jf"),
            vec![format!("Zk3Lq8Wm2Xp{n:05}")],
            Shape::Entropy,
        ),
        s(
            "jwt",
            format!("eyJhbGciOiJIUzI1NiJ9.{jwt_payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV{n:05}"),
            vec![
                jwt_payload.clone(),
                format!("SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV{n:05}"),
            ],
            Shape::Structural,
        ),
        s(
            "jwt_spaced_header",
            format!("{spaced_header}.{jwt_payload}.dGhpcyBpcyBub3QgYSBzaWc{n:05}"),
            vec![format!("dGhpcyBpcyBub3QgYSBzaWc{n:05}")],
            Shape::Structural,
        ),
        s(
            "oauth_client_secret",
            format!("cs_Q7wE9rT2yU{n:05}iO5pA8sD3fG"),
            vec![format!("Q7wE9rT2yU{n:05}")],
            Shape::Entropy,
        ),
        s(
            "session_cookie",
            format!("connect.sid=s%3AkYt7Rj2Lm{n:05}Qp.Hx9Wv3Nb5Zc8Df1Gh4Jk6Lm"),
            vec![format!("kYt7Rj2Lm{n:05}Qp")],
            Shape::Structural,
        ),
        s(
            "stripe_key",
            format!("sk_live_51HqLyjWDarjtT1zdp7dc{n:05}ZxY"),
            vec![format!("51HqLyjWDarjtT1zdp7dc{n:05}")],
            Shape::Structural,
        ),
        s(
            "github_token",
            format!("ghp_16C7e42F292c6912E7710c8383{n:05}Ae"),
            vec![format!("16C7e42F292c6912E7710c8383{n:05}")],
            Shape::Structural,
        ),
        s(
            "email",
            format!("alice.canary{n:05}@example.com"),
            vec![format!("alice.canary{n:05}")],
            Shape::Structural,
        ),
        s(
            "dsn_password",
            format!("postgres://auth:S3cretPw{n:05}@db.internal:5432/auth"),
            vec![format!("S3cretPw{n:05}")],
            Shape::Structural,
        ),
    ]
}

/// How many secret classes [`all`] returns.
pub fn classes() -> usize {
    all(0).len()
}

/// The forms a careless application writes a secret in; `{}` is the secret.
pub const FORMS: [(&str, &str); 12] = [
    ("bare", "{}"),
    ("pair", "password={}"),
    ("prose", "verify failed for password {}"),
    (
        "debug",
        "LoginForm { username: \"u_42\", password: \"{}\" }",
    ),
    ("authorization", "Authorization: Bearer {}"),
    ("query", "/callback?state=xyz&access_token={}"),
    ("reset_link", "/reset?token={}"),
    ("url_userinfo", "https://svc:{}@host.internal/api"),
    ("totp_prose", "totp {} was wrong"),
    ("bearer_tab", "Authorization:\tBearer\t{}"),
    ("cookie_header", "Cookie: theme=dark; session={}"),
    // The secret only in base64 (`svc:<secret>`): found by the search's base64 needles.
    ("basic_auth", "Authorization: Basic {b64}"),
];

/// Fills a form with a secret.
pub fn fill(form: &str, secret: &str) -> String {
    let b64 = crate::support::needles::base64(
        format!("svc:{secret}").as_bytes(),
        crate::support::needles::STANDARD,
        true,
    );
    form.replace("{b64}", &b64).replace("{}", secret)
}

/// What kind of position a value is planted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Free text under an innocent name (`reason`, `note`, a panic message).
    Text,
    /// An identifier (user id, session id, an audit party's id): opaque and random by
    /// design, so the entropy rule does not apply.
    Identifier,
    /// Under a key that names a secret (`pw`, `auth`): everything is redacted.
    SecretKey,
}

/// Whether the policy can decide this combination. Out of scope (documented in
/// `authtel_core::policy`, "What screening cannot catch"): a bare secret with no shape in
/// free text or an identifier (`with_extra("note", "Tr0ub4dor")`), and a bare secret whose
/// only shape is randomness in an identifier (a random session id *is* random).
pub fn in_scope(secret: &Secret, form: &str, slot: Slot) -> bool {
    if form != "bare" {
        return true;
    }
    match slot {
        Slot::SecretKey => true,
        Slot::Text => secret.shape != Shape::None,
        Slot::Identifier => secret.shape == Shape::Structural,
    }
}
