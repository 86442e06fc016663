//! Outgoing mail. The example keeps it in memory; a real service hands each message to its
//! mailer. Tokens live only here and in the response of a dev-mode request, never in
//! telemetry.

use std::fmt;
use std::sync::{Arc, Mutex};

/// One message: a password-reset link for `to`.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient.
    pub to: String,
    /// The single-use reset token the link carries.
    pub reset_token: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Mail")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Messages sent so far.
///
/// ```
/// let mailbox = authtel_axum_service::Mailbox::default();
/// assert!(mailbox.take_for("a@example.com").is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Mailbox {
    sent: Arc<Mutex<Vec<Mail>>>,
}

impl Mailbox {
    pub(crate) fn send(&self, mail: Mail) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(mail);
    }

    /// Removes and returns the latest message to `to`.
    pub fn take_for(&self, to: &str) -> Option<Mail> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let index = sent.iter().rposition(|m| m.to == to)?;
        Some(sent.remove(index))
    }
}
