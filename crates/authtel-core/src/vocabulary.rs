//! Closed vocabularies for the fields whose values are codes, not text: the authentication
//! [`AuthMethod`], the failure or denial [`Reason`], the authorization [`Operation`] and
//! [`DenyReason`], the OAuth [`GrantType`] and the assurance level [`Aal`].
//!
//! A value is a well-known variant or an application's own code, `Custom(&'static str)`:
//! a string literal (or a `const`), so it is fixed when the program is compiled and cannot
//! carry a password, a token or an email that arrived at run time, short of leaking a
//! `String` into a `'static` on purpose. That is what makes these fields safe by
//! construction; the metadata policy still screens them when read, as a second line (the
//! canary matrix plants leaked secrets there to prove it). Setters take `impl Into<…>`, so a literal works where a variant does:
//!
//! ```
//! use authtel_core::metadata::Metadata;
//! use authtel_core::vocabulary::{AuthMethod, Reason};
//! let m = Metadata::new().method(AuthMethod::Totp).reason("code_reused");
//! assert_eq!(m.get_method(), Some("totp"));
//! assert_eq!(m.get_reason(), Some("code_reused"));
//! ```
//!
//! A string built at run time does not compile there:
//!
//! ```compile_fail
//! use authtel_core::metadata::Metadata;
//! let why = format!("password {} was wrong", "hunter2");
//! let m = Metadata::new().reason(why.as_str());
//! ```
//!
//! Two values are equal when their codes are: `Reason::Custom("expired") == Reason::Expired`.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Declares a vocabulary: well-known variants with their codes, plus `Custom(&'static str)`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident => $code:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// The application's own code: a literal or `const`, short `snake_case`
            /// (it becomes a label and a column value; keep the set small).
            Custom(&'static str),
        }

        impl $name {
            /// Every well-known variant, in declaration order.
            pub const WELL_KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The code recorded in the field.
            #[inline]
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $code, )*
                    $name::Custom(code) => code,
                }
            }

            /// The well-known variant whose code is `code`, if there is one (decoders and
            /// adapters; a literal converts with `From` without this lookup).
            pub fn well_known(code: &str) -> Option<$name> {
                $name::WELL_KNOWN.iter().copied().find(|v| v.as_str() == code)
            }
        }

        impl From<&'static str> for $name {
            /// An application code. Only `'static` strings convert: a value formatted at run
            /// time cannot become a code.
            #[inline]
            fn from(code: &'static str) -> $name {
                $name::Custom(code)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// How the user (or client) proved who they are: the `method` field.
    ///
    /// ```
    /// use authtel_core::vocabulary::AuthMethod;
    /// assert_eq!(AuthMethod::WebAuthn.as_str(), "webauthn");
    /// assert_eq!(AuthMethod::from("smart_card").as_str(), "smart_card");
    /// ```
    AuthMethod {
        /// A password.
        Password => "password",
        /// A time-based one-time code (RFC 6238).
        Totp => "totp",
        /// A counter-based one-time code (RFC 4226).
        Hotp => "hotp",
        /// A one-time code sent by SMS.
        Sms => "sms",
        /// A one-time code or link sent by email.
        EmailCode => "email_code",
        /// A sign-in link.
        MagicLink => "magic_link",
        /// A push approval on an enrolled device.
        Push => "push",
        /// A WebAuthn security key or platform authenticator.
        WebAuthn => "webauthn",
        /// A synced passkey.
        Passkey => "passkey",
        /// A recovery (backup) code.
        BackupCode => "backup_code",
        /// An external identity provider (OAuth 2.0 / OpenID Connect).
        OAuth => "oauth",
        /// An external identity provider over SAML.
        Saml => "saml",
        /// An API key.
        ApiKey => "api_key",
        /// A client certificate (mutual TLS).
        Certificate => "certificate",
        /// An existing session.
        Session => "session",
        /// A refresh token.
        RefreshToken => "refresh_token",
        /// A password-reset flow.
        Reset => "reset",
    }
}

vocabulary! {
    /// Why something failed or was denied: the `reason` field.
    ///
    /// The codes of the OAuth 2.0 error responses (RFC 6749 §5.2) are here under their own
    /// names; an authorization [`DenyReason`] converts with `From`.
    ///
    /// ```
    /// use authtel_core::vocabulary::{DenyReason, Reason};
    /// assert_eq!(Reason::InvalidPassword.as_str(), "invalid_password");
    /// assert_eq!(Reason::from(DenyReason::NamespaceMismatch).as_str(), "namespace_mismatch");
    /// assert_eq!(Reason::well_known("expired"), Some(Reason::Expired));
    /// ```
    Reason {
        /// The user name or password (or other credential) did not match; used when the
        /// application does not say which.
        InvalidCredentials => "invalid_credentials",
        /// The password did not match.
        InvalidPassword => "invalid_password",
        /// No account has this identifier.
        UnknownUser => "unknown_user",
        /// A one-time code did not match.
        InvalidCode => "invalid_code",
        /// A one-time code was used twice.
        CodeReused => "code_reused",
        /// The credential, code, link or session has expired.
        Expired => "expired",
        /// The token or session was revoked.
        Revoked => "revoked",
        /// A rotated refresh token was presented again.
        ReuseDetected => "reuse_detected",
        /// The token is malformed or its signature does not verify.
        InvalidToken => "invalid_token",
        /// The account is locked.
        AccountLocked => "account_locked",
        /// The account is disabled.
        AccountDisabled => "account_disabled",
        /// Too many attempts: the application refused to try.
        TooManyAttempts => "too_many_attempts",
        /// The request was rate limited.
        RateLimited => "rate_limited",
        /// A second factor is required and was not given.
        MfaRequired => "mfa_required",
        /// The user rejected the request (a push, a consent screen).
        UserDenied => "user_denied",
        /// The password was reset (why sessions were revoked).
        PasswordReset => "password_reset",
        /// The OAuth `state` did not match the one issued.
        InvalidState => "invalid_state",
        /// The redirect URI is not registered for the client.
        InvalidRedirectUri => "invalid_redirect_uri",
        /// OAuth `invalid_request`.
        InvalidRequest => "invalid_request",
        /// OAuth `invalid_client`: client authentication failed.
        InvalidClient => "invalid_client",
        /// OAuth `invalid_grant`: the grant or refresh token is invalid, expired or revoked.
        InvalidGrant => "invalid_grant",
        /// OAuth `unauthorized_client`.
        UnauthorizedClient => "unauthorized_client",
        /// OAuth `unsupported_grant_type`.
        UnsupportedGrantType => "unsupported_grant_type",
        /// OAuth `invalid_scope`.
        InvalidScope => "invalid_scope",
        /// OAuth `access_denied`.
        AccessDenied => "access_denied",
        /// An authorization check itself failed (see
        /// [`log_error`](crate::authorization::log_error)).
        AuthorizerError => "authorizer_error",
        /// A handler panicked.
        HandlerPanicked => "handler_panicked",
        /// A detector's verdict (authtel-detect).
        DetectorVerdict => "detector_verdict",
    }
}

vocabulary! {
    /// What the caller asked to do: the `operation` field of an authorization decision.
    ///
    /// ```
    /// use authtel_core::vocabulary::Operation;
    /// assert_eq!(Operation::Subscribe.as_str(), "subscribe");
    /// assert_eq!(Operation::Custom("rotate_keys").as_str(), "rotate_keys");
    /// ```
    Operation {
        /// Call a procedure.
        Call => "call",
        /// Publish to a topic.
        Publish => "publish",
        /// Subscribe to a topic.
        Subscribe => "subscribe",
        /// Announce (register) a procedure or service.
        Announce => "announce",
        /// Read a resource.
        Read => "read",
        /// Create or change a resource.
        Write => "write",
        /// Delete a resource.
        Delete => "delete",
    }
}

vocabulary! {
    /// Why an authorization was denied.
    ///
    /// ```
    /// use authtel_core::vocabulary::DenyReason;
    /// assert_eq!(DenyReason::ExpiredCredential.as_str(), "expired_credential");
    /// ```
    DenyReason {
        /// No rule grants the operation.
        Unauthorized => "unauthorized",
        /// The credential (capability token, certificate) is malformed or its signature fails.
        InvalidCredential => "invalid_credential",
        /// The credential has expired.
        ExpiredCredential => "expired_credential",
        /// The credential was revoked.
        RevokedCredential => "revoked_credential",
        /// The credential is valid but does not grant this operation on this resource.
        InsufficientCapability => "insufficient_capability",
        /// The caller's identity is malformed or unknown.
        InvalidCaller => "invalid_caller",
        /// The resource lies outside the caller's namespace.
        NamespaceMismatch => "namespace_mismatch",
    }
}

vocabulary! {
    /// The OAuth 2.0 grant type of a token request: the `grant_type` field.
    ///
    /// ```
    /// use authtel_core::vocabulary::GrantType;
    /// assert_eq!(GrantType::AuthorizationCode.as_str(), "authorization_code");
    /// assert_eq!(GrantType::from("urn:ietf:params:oauth:grant-type:jwt-bearer").as_str(), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    /// ```
    GrantType {
        /// RFC 6749 §4.1, with or without PKCE.
        AuthorizationCode => "authorization_code",
        /// RFC 6749 §4.4.
        ClientCredentials => "client_credentials",
        /// RFC 6749 §6.
        RefreshToken => "refresh_token",
        /// RFC 8628.
        DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        /// RFC 8693.
        TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        /// RFC 6749 §4.3 (deprecated by OAuth 2.1; still seen).
        Password => "password",
        /// RFC 6749 §4.2 (deprecated by OAuth 2.1; still seen).
        Implicit => "implicit",
    }
}

vocabulary! {
    /// The authentication assurance level reached (NIST SP 800-63B): the `aal` field.
    ///
    /// ```
    /// use authtel_core::vocabulary::Aal;
    /// assert_eq!(Aal::Aal2.as_str(), "aal2");
    /// ```
    Aal {
        /// Single factor.
        Aal1 => "aal1",
        /// Two distinct factors.
        Aal2 => "aal2",
        /// Two factors, one a hardware-based, phishing-resistant authenticator.
        Aal3 => "aal3",
    }
}

impl From<DenyReason> for Reason {
    #[inline]
    fn from(reason: DenyReason) -> Reason {
        Reason::Custom(reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn distinct_snake_case(codes: &[&'static str]) {
        assert!(codes.iter().all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }));
        let unique: HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
    }

    #[test]
    fn every_well_known_code_is_distinct_snake_case() {
        distinct_snake_case(
            &AuthMethod::WELL_KNOWN
                .iter()
                .map(AuthMethod::as_str)
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &Reason::WELL_KNOWN
                .iter()
                .map(Reason::as_str)
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(
            &Operation::WELL_KNOWN
                .iter()
                .map(Operation::as_str)
                .collect::<Vec<_>>(),
        );
        distinct_snake_case(&Aal::WELL_KNOWN.iter().map(Aal::as_str).collect::<Vec<_>>());
        distinct_snake_case(
            &DenyReason::WELL_KNOWN
                .iter()
                .map(DenyReason::as_str)
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn a_custom_code_equals_the_well_known_variant_with_its_text() {
        assert_eq!(Reason::Custom("expired"), Reason::Expired);
        assert_ne!(Reason::Custom("expired_soon"), Reason::Expired);
        let set: HashSet<Reason> = [Reason::Expired, Reason::from("expired")].into();
        assert_eq!(set.len(), 1);
        for r in Reason::WELL_KNOWN {
            assert_eq!(Reason::well_known(r.as_str()), Some(*r));
        }
        assert_eq!(Reason::well_known("password=hunter2"), None);
    }

    #[test]
    fn deny_reasons_convert_to_reasons_with_the_same_code() {
        for d in DenyReason::WELL_KNOWN {
            assert_eq!(Reason::from(*d).as_str(), d.as_str());
        }
    }
}
