use super::rules::*;
use super::*;

/// `Debug` output (`password: "…"`) in an identifier, where `key: value` pairs are not
/// read (colons namespace ids): the word naming the secret ends in a colon.
#[test]
fn a_secret_word_with_a_colon_names_what_follows() {
    for id in [
        r#"LoginForm { username: "u_42", password: "Tr0ub4dor0042x" }"#,
        r#"LoginForm { username: "u_42", password: "40314722" }"#,
        "token: 8fK2xQ9aB7mZ4pL1vN6c",
    ] {
        assert_eq!(
            find(id, Scan::IDENTIFIER),
            Some(Finding::SecretAfterWord),
            "{id}"
        );
    }
    for id in [
        "did:key:z6MkhaXgBZDvotDkL5257",
        "user:u_42",
        "password: reset",
    ] {
        assert_eq!(find(id, Scan::IDENTIFIER), None, "{id}");
    }
}

#[test]
fn each_rule_finds_its_shape() {
    let cases: &[(&str, Finding)] = &[
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", Finding::Jwt),
        (
            "x eyAiYWxnIjogIkhTMjU2In0.eyAic3ViIjogMX0.sig",
            Finding::Jwt,
        ),
        ("ewogImFsZyI6ICJub25lIgp9.eyJzdWIiOiIxIn0.", Finding::Jwt),
        (
            "got Bearer\tabc123XYZ from the client",
            Finding::AuthorizationScheme,
        ),
        ("Basic dXNlcjpodW50ZXIy", Finding::AuthorizationScheme),
        ("bearer%20abcdef", Finding::AuthorizationScheme),
        ("password=hunter2-in-reason", Finding::SecretPair),
        (
            "https://app/cb?state=1&code=SplxlOBeZQQYbYS6WxSbIA",
            Finding::SecretPair,
        ),
        (
            "redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fcode%3DX",
            Finding::SecretPair,
        ),
        ("connect.sid=s%3Aabc.def", Finding::SecretPair),
        (
            r#"LoginForm { user: "u1", password: "hunter2" }"#,
            Finding::SecretPair,
        ),
        (r#"{"api_key": "k_123"}"#, Finding::SecretPair),
        (
            "verify failed for password hunter2",
            Finding::SecretAfterWord,
        ),
        ("the pin is 1234", Finding::SecretAfterWord),
        ("mfa check failed with 123456", Finding::OneTimeCode),
        ("totp 123456 was wrong", Finding::SecretAfterWord),
        (
            "postgres://svc:s3cret@db.internal/auth",
            Finding::UrlCredentials,
        ),
        (
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            Finding::PasswordHash,
        ),
        (
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            Finding::VendorToken,
        ),
        ("AKIAIOSFODNN7EXAMPLE", Finding::VendorToken),
        (
            "note 4eC39HqLyjWDarjtT1zdp7dc end",
            Finding::HighEntropyToken,
        ),
        (
            "d41d8cd98f00b204e9800998ecf8427e0123abcd",
            Finding::HighEntropyToken,
        ),
        ("sent to alice.smith@example.com", Finding::Email),
    ];
    for (text, finding) in cases {
        assert_eq!(find_credential(text), Some(*finding), "{text:?}");
    }
}

/// Every rule, one after the other, with no filter: what `find` must answer.
fn find_every_rule(text: &str, scan: Scan) -> Option<Finding> {
    let bytes = crate::policy::truncate(text, SCREENED_PREFIX).as_bytes();
    if bytes.len() < 5 {
        return None;
    }
    let rules: [(bool, Finding); 10] = [
        (has_jwt(bytes), Finding::Jwt),
        (
            has_authorization_scheme(bytes),
            Finding::AuthorizationScheme,
        ),
        (
            has_secret_pair(bytes, scan.colon_pairs),
            Finding::SecretPair,
        ),
        (has_secret_after_word(bytes), Finding::SecretAfterWord),
        (has_one_time_code(bytes), Finding::OneTimeCode),
        (has_url_credentials(bytes), Finding::UrlCredentials),
        (has_password_hash(bytes), Finding::PasswordHash),
        (has_vendor_token_every_position(bytes), Finding::VendorToken),
        (
            scan.entropy && has_high_entropy_token(bytes),
            Finding::HighEntropyToken,
        ),
        (has_email(bytes), Finding::Email),
    ];
    rules.into_iter().find(|(hit, _)| *hit).map(|(_, f)| f)
}

/// `has_vendor_token` without its first-byte shortcut.
fn has_vendor_token_every_position(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|i| {
        at_word_start(bytes, i)
            && VENDOR_PREFIXES.iter().any(|(prefix, rest)| {
                bytes[i..].starts_with(prefix) && run(bytes, i + prefix.len(), is_b64url) >= *rest
            })
    })
}

#[test]
fn the_shape_filter_never_changes_a_finding() {
    // Fragments that trigger (or nearly trigger) each rule, joined at random with
    // separators: the filtered and unfiltered screens must agree on every one.
    const PARTS: [&str; 42] = [
        "password",
        "token",
        "pin",
        "otp",
        "code",
        "mfa",
        "bearer",
        "Basic",
        "key",
        "api_key",
        "u_42",
        "svc_421",
        "=",
        ":",
        "%3D",
        "%3a",
        "%20",
        "+",
        " ",
        "\t",
        "@",
        "$2b$",
        "$argon2id$",
        "://",
        ".",
        "eyJhbGciOiJIUz",
        "eyJzdWIi",
        "123456",
        "1234",
        "ghp_",
        "xoxb-",
        "AKIA",
        "sk_live_",
        "16C7e42F292c6912E7710c8",
        "example.com",
        "alice",
        "hunter2",
        "4eC39HqLyjWDarjtT1zdp7dc",
        "é",
        "\"",
        "\u{1}",
        "\u{7f}",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut checked = 0;
    let mut found = 0;
    for _ in 0..20_000 {
        let n = 1 + (next() % 7) as usize;
        let text: String = (0..n)
            .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
            .collect();
        for scan in [Scan::TEXT, Scan::IDENTIFIER] {
            let expected = find_every_rule(&text, scan);
            assert_eq!(find(&text, scan), expected, "{text:?}");
            found += usize::from(expected.is_some());
            checked += 1;
        }
        // The identifier check's one pass answers as its checks did one by one.
        assert_eq!(
            crate::policy::check_identifier(&text),
            check_identifier_pass_by_pass(&text),
            "{text:?}"
        );
    }
    assert_eq!(checked, 40_000);
    assert!(
        found > 5_000,
        "the corpus reaches the rules: {found} findings"
    );
}

/// `check_identifier` as it was written before its checks shared one pass.
fn check_identifier_pass_by_pass(id: &str) -> Result<(), crate::policy::IdentifierProblem> {
    use crate::policy::{IdentifierProblem, LIMITS};
    if id.is_empty() || id.bytes().any(|b| b.is_ascii_control()) {
        return Err(IdentifierProblem::Malformed);
    }
    if id.len() > LIMITS.id_bytes {
        return Err(IdentifierProblem::TooLong);
    }
    if id.contains('@') {
        return Err(IdentifierProblem::Email);
    }
    match find_every_rule(id, Scan::IDENTIFIER) {
        None => Ok(()),
        Some(Finding::Email) => Err(IdentifierProblem::Email),
        Some(_) => Err(IdentifierProblem::Credential),
    }
}

#[test]
fn ordinary_text_is_left_alone() {
    for text in [
        "password reset link expired",
        "Basic plan quota exceeded",
        "the bearer token was expired",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "/api/v1/users/12345/sessions",
        "/Users/Alice/Documents2024/Report",
        "invalid_password",
        "too_many_attempts",
        "error_code=E1042",
        "token_type=bearer",
        "0191b6a2-7c1e-7d3a-9f00-2b5c1d9e8a77",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "at 10:15:30 from 203.0.113.7",
        "user:u_42",
        "ip:203.0.113.7",
        "ThisIsAVeryLongIdentifierName",
        "password_reset_link_expired_after_24h",
        "https://example.com/path?page=2",
        "",
        "é€😀 non-ASCII text with ümlauts",
    ] {
        assert_eq!(find_credential(text), None, "{text:?}");
    }
}
