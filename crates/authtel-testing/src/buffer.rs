//! An in-memory writer shared between a logger under test and the test's assertions.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A clonable in-memory writer: every clone appends to the same buffer. Hand one to a
/// `tracing_subscriber::fmt()` builder (`.with_writer(move || buffer.clone())`), run the
/// code, then read what was written with [`text`](SharedBuffer::text).
///
/// ```
/// use std::io::Write;
/// use authtel_testing::SharedBuffer;
/// let buffer = SharedBuffer::new();
/// let mut writer = buffer.clone();
/// writer.write_all(b"{\"event\":\"auth.login.stop\"}\n").unwrap();
/// assert_eq!(buffer.text(), "{\"event\":\"auth.login.stop\"}\n");
/// assert_eq!(buffer.lines().count(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> SharedBuffer {
        SharedBuffer::default()
    }

    /// Everything written so far, as text (invalid UTF-8 is replaced, never a panic).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// The written text, line by line.
    pub fn lines(&self) -> std::vec::IntoIter<String> {
        self.text()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A test that panicked while writing still leaves readable bytes behind.
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
