//! Exception and panic messages often quote the input that failed; by default sinks get
//! the exception's kind only. This binary never opts in, so the default is what it sees.

use std::panic::catch_unwind;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, ExceptionKind};
use authtel_testing::Capture;

#[test]
fn panic_and_exception_messages_are_not_exported_by_default() {
    assert!(!authtel_core::policy::exception_messages());
    let capture = Capture::new();
    let _scope = capture.enter();
    let _ = catch_unwind(|| {
        telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || -> bool {
            panic!("verify failed for password hunter2")
        })
    });
    telemetry::start(&catalogue::MFA_VERIFY, Metadata::new()).exception("totp 123456 was wrong");

    let login = capture.single("auth.login.exception").exception.unwrap();
    assert_eq!(login.kind, ExceptionKind::Panic);
    assert_eq!(login.reason, None);
    let mfa = capture.single("mfa.verify.exception");
    assert_eq!(mfa.exception.unwrap().reason, None);
    assert_eq!(mfa.error_type, Some("error"));
    capture.assert_no_secret(&["hunter2", "123456", "verify failed", "was wrong"]);
}
