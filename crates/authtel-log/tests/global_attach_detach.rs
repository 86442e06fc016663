//! The global default logger: attached once, a second attach is refused, detach works.
//! One test in its own binary: it is the only one here touching the global registry.

use authtel_core::registry::{self, AttachError, DetachError};
use authtel_log::{DEFAULT_LOGGER_ID, LoggerOptions, attach_default_logger, detach_default_logger};

#[test]
fn attach_once_refuse_duplicate_then_detach() {
    attach_default_logger(LoggerOptions::new()).expect("first attach succeeds");
    assert!(
        registry::handlers()
            .iter()
            .any(|h| h.id == DEFAULT_LOGGER_ID)
    );

    let second = attach_default_logger(LoggerOptions::new());
    assert_eq!(
        second,
        Err(AttachError::AlreadyExists(DEFAULT_LOGGER_ID.to_owned()))
    );
    let message = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains(DEFAULT_LOGGER_ID), "{message}");

    detach_default_logger().expect("attached, so detach succeeds");
    assert!(
        !registry::handlers()
            .iter()
            .any(|h| h.id == DEFAULT_LOGGER_ID)
    );
    assert_eq!(
        detach_default_logger(),
        Err(DetachError::NotFound(DEFAULT_LOGGER_ID.to_owned()))
    );

    attach_default_logger(LoggerOptions::new()).expect("attach again after detach");
    detach_default_logger().expect("and detach again");
}
