//! An IP address formatted without allocating.

use std::net::IpAddr;

/// An IP address as text in a stack buffer, without allocating: for sinks that write the
/// client IP as a string (45 bytes hold the longest IPv6 form).
///
/// ```
/// use authtel_core::metadata::IpText;
/// use std::net::{IpAddr, Ipv4Addr};
/// let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
/// assert_eq!(IpText::new(ip).as_str(), "203.0.113.7");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    /// Formats `ip`.
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 48];
        let len = match ip {
            // By hand: `Display` for an address goes through the formatting machinery
            // twice, and this runs for every event a sink writes with a client IP.
            IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[n] = b'.';
                        n += 1;
                    }
                    if octet >= 100 {
                        buf[n] = b'0' + octet / 100;
                        n += 1;
                    }
                    if octet >= 10 {
                        buf[n] = b'0' + octet / 10 % 10;
                        n += 1;
                    }
                    buf[n] = b'0' + octet % 10;
                    n += 1;
                }
                n
            }
            IpAddr::V6(_) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut buf[..]);
                // Cannot fail: the buffer is longer than any address's text.
                let _ = write!(cursor, "{ip}");
                cursor.position() as usize
            }
        };
        IpText { buf, len }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons and hex letters were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}
