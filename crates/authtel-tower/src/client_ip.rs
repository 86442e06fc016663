//! Which address is the client's: the peer, unless the peer is a trusted proxy, and then
//! the nearest untrusted hop its forwarding header names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

/// Most forwarding hops looked at, from the right. Deeper chains resolve to the hop reached.
pub(crate) const MAX_HOPS: usize = 32;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or one address (`192.0.2.1`,
/// read as `/32` or `/128`): a range of addresses trusted as proxies.
///
/// ```
/// use authtel_tower::Cidr;
/// let net: Cidr = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.1.2.3".parse()?));
/// assert!(!net.contains("11.0.0.1".parse()?));
/// // An IPv4 peer seen through a dual-stack socket (`::ffff:10.1.2.3`) matches too.
/// assert!(net.contains("::ffff:10.1.2.3".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy network was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "trusted proxy {value:?} is not an address or a CIDR network ({problem}); write it as `10.0.0.0/8`, `192.0.2.1` or `2001:db8::/32`"
)]
pub struct CidrError {
    value: String,
    problem: &'static str,
}

impl CidrError {
    /// The refused text.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl Cidr {
    /// The network holding `address` with a prefix of `prefix` bits; `None` when the prefix
    /// is longer than the address (32 for IPv4, 128 for IPv6). Host bits are cleared.
    ///
    /// ```
    /// use authtel_tower::Cidr;
    /// use std::net::Ipv4Addr;
    /// let net = Cidr::new(Ipv4Addr::new(192, 168, 7, 9).into(), 16).unwrap();
    /// assert_eq!(net.to_string(), "192.168.0.0/16");
    /// assert!(Cidr::new(Ipv4Addr::LOCALHOST.into(), 33).is_none());
    /// ```
    pub fn new(address: IpAddr, prefix: u8) -> Option<Cidr> {
        let address = address.to_canonical();
        let network = match address {
            IpAddr::V4(v4) if prefix <= 32 => {
                IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & mask32(prefix)))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask128(prefix)))
            }
            _ => return None,
        };
        Some(Cidr { network, prefix })
    }

    /// Whether `address` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => a.to_bits() & mask32(self.prefix) == net.to_bits(),
            (IpAddr::V6(net), IpAddr::V6(a)) => a.to_bits() & mask128(self.prefix) == net.to_bits(),
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = |problem| CidrError {
            value: s.chars().take(64).collect(),
            problem,
        };
        let (address, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| err("not an IP address"))?;
        let max = if address.to_canonical().is_ipv4() {
            32
        } else {
            128
        };
        let prefix =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    err("the prefix length is not a number within the address size")
                })?,
            };
        Cidr::new(address, prefix).ok_or_else(|| err("the prefix is too long"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

/// Which header the trusted proxies write the forwarding chain into. Exactly one is read:
/// a proxy that appends to one header passes the other through untouched, so reading both
/// would let a client forge the one the proxy ignores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, AWS ALB, most CDNs).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: `peer` itself unless it is trusted; then the forwarding header's
/// hops are walked right to left, skipping trusted ones, and the first untrusted hop is the
/// client. A malformed hop ends the walk at the last address established (so garbage never
/// becomes the client, and never hides a trusted proxy's own report); a chain of trusted
/// hops only resolves to its leftmost hop.
pub(crate) fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
        ForwardedHeader::Forwarded => FORWARDED,
    };
    let mut client = peer;
    // Header lines in order, each a comma-separated list: their concatenation is the chain.
    let lines: Vec<_> = headers.get_all(&name).iter().collect();
    let mut hops = 0;
    for line in lines.iter().rev() {
        let Ok(line) = line.to_str() else {
            return client;
        };
        for element in line.rsplit(',') {
            hops += 1;
            if hops > MAX_HOPS {
                return client;
            }
            let hop = match header {
                ForwardedHeader::XForwardedFor => parse_node(element),
                ForwardedHeader::Forwarded => forwarded_for(element).and_then(parse_node),
            };
            let Some(hop) = hop else {
                return client;
            };
            client = hop;
            if !is_trusted(hop) {
                return hop;
            }
        }
    }
    client
}

/// The `for=` parameter of one `Forwarded` element (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// One node: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:4711`. Anything
/// else (`unknown`, an obfuscated `_hidden` name, garbage) is `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let bracketed = node.strip_prefix('[')?.strip_suffix(']')?;
    bracketed
        .parse::<Ipv6Addr>()
        .ok()
        .map(|v6| IpAddr::V6(v6).to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = xff(&["198.51.100.1"]);
        let got = resolve(ip("203.0.113.9"), &h, &[], ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("203.0.113.9"));
        let trusted = nets(&["10.0.0.0/8"]);
        let got = resolve(
            ip("203.0.113.9"),
            &h,
            &trusted,
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn trusted_hops_are_skipped_right_to_left() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // The client forged the leftmost entry; the first untrusted hop from the right wins.
        let h = xff(&["1.1.1.1, 198.51.100.7", "10.0.0.2"]);
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.7"));
        let h = xff(&["2001:db8::5, 2001:db8:ffff::1"]);
        let got = resolve(
            ip("2001:db8:ffff::2"),
            &h,
            &trusted,
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(got, ip("2001:db8::5"));
        // Every hop trusted: the leftmost.
        let h = xff(&["10.9.9.9, 10.0.0.2"]);
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.9.9.9"));
    }

    #[test]
    fn malformed_hops_end_the_walk_without_becoming_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        for bad in [
            "garbage",
            "unknown",
            "",
            " , ",
            "300.1.1.1",
            "[::1",
            "1.2.3.4:99999",
        ] {
            let h = xff(&[bad]);
            let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
            assert_eq!(got, ip("10.0.0.1"), "{bad:?}");
        }
        // A forged value left of garbage is never reached.
        let h = xff(&["198.51.100.66, nonsense, 10.0.0.3"]);
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.0.0.3"));
        // Not visible ASCII at all.
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_header_is_parsed_and_only_read_when_chosen() {
        let trusted = nets(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            FORWARDED,
            HeaderValue::from_static(
                r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=10.0.0.9"#,
            ),
        );
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::Forwarded);
        assert_eq!(got, ip("2001:db8:cafe::17"));
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.1"));
        let mut h = HeaderMap::new();
        h.insert(
            FORWARDED,
            HeaderValue::from_static("for=_hidden, for=unknown"),
        );
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::Forwarded);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn long_chains_are_bounded() {
        let trusted = nets(&["10.0.0.0/8"]);
        let chain = vec!["10.0.0.5"; 1000].join(",");
        let h = xff(&[&format!("198.51.100.1,{chain}")]);
        let got = resolve(ip("10.0.0.1"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.0.0.5"));
    }

    #[test]
    fn cidrs_parse_and_refuse() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/x",
            "10.0.0/8",
            "",
        ] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert_eq!(err.value(), bad);
        }
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
    }
}
