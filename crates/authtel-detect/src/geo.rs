//! Where an address is: the pluggable lookup impossible travel (and the new-network check)
//! use, and a test double.
//!
//! authtel ships no geolocation database and makes no network call at run time: plug in
//! your own [`GeoLookup`] (a MaxMind reader, a table from your CDN) or use [`FixedGeo`],
//! a table of networks given in code, for tests and small deployments.

use std::fmt;
use std::net::IpAddr;

/// A located address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// How far off the point may be, in km (IP geolocation is often off by a city or two).
    pub accuracy_km: u32,
    /// The autonomous system the address belongs to, if known: a mobile carrier's addresses
    /// change with every login but stay in one AS, so the new-network check compares these.
    pub asn: Option<u32>,
}

impl GeoPoint {
    /// A point with an accuracy and no AS.
    pub const fn new(lat: f64, lon: f64, accuracy_km: u32) -> GeoPoint {
        GeoPoint {
            lat,
            lon,
            accuracy_km,
            asn: None,
        }
    }

    /// The same point in AS `asn`.
    #[must_use]
    pub const fn with_asn(mut self, asn: u32) -> GeoPoint {
        self.asn = Some(asn);
        self
    }

    /// The great-circle distance to `other` in km (haversine, mean Earth radius).
    ///
    /// ```
    /// use authtel_detect::geo::GeoPoint;
    /// let berlin = GeoPoint::new(52.52, 13.405, 0);
    /// let sydney = GeoPoint::new(-33.87, 151.21, 0);
    /// let km = berlin.distance_km(&sydney);
    /// assert!((16_000.0..16_200.0).contains(&km), "{km}");
    /// ```
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        const R: f64 = 6371.0;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * R * a.sqrt().min(1.0).asin()
    }
}

/// Locates addresses. Called inline on successful logins: must be fast and must not block
/// (no network lookups; load your database at startup).
pub trait GeoLookup: Send + Sync + fmt::Debug + 'static {
    /// Where `ip` is, if known.
    fn lookup(&self, ip: IpAddr) -> Option<GeoPoint>;
}

/// A fixed table of networks and where they are: the test double, and enough for a
/// deployment that knows its own networks. Longest prefix wins.
///
/// ```
/// use authtel_detect::geo::{FixedGeo, GeoLookup, GeoPoint};
/// let geo = FixedGeo::new()
///     .with_network("203.0.113.0/24", GeoPoint::new(52.52, 13.405, 25).with_asn(64500))
///     .unwrap();
/// assert_eq!(geo.lookup("203.0.113.9".parse().unwrap()).unwrap().asn, Some(64500));
/// assert!(geo.lookup("198.51.100.1".parse().unwrap()).is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct FixedGeo {
    networks: Vec<(IpAddr, u8, GeoPoint)>,
}

/// A network that does not parse as `address/length`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network; write it as address/length, e.g. 203.0.113.0/24 or 2001:db8::/32")]
pub struct InvalidNetwork(String);

impl FixedGeo {
    /// An empty table.
    pub fn new() -> FixedGeo {
        FixedGeo::default()
    }

    /// Adds a network (`203.0.113.0/24`, `2001:db8::/32`).
    pub fn with_network(mut self, cidr: &str, point: GeoPoint) -> Result<FixedGeo, InvalidNetwork> {
        let bad = || InvalidNetwork(cidr.chars().take(64).collect());
        let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let len: u8 = len.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(bad());
        }
        self.networks.push((addr, len, point));
        Ok(self)
    }

    /// How many networks it holds.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl GeoLookup for FixedGeo {
    fn lookup(&self, ip: IpAddr) -> Option<GeoPoint> {
        self.networks
            .iter()
            .filter(|(net, len, _)| contains(*net, *len, ip))
            .max_by_key(|(_, len, _)| *len)
            .map(|(_, _, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_families_do_not_mix() {
        let geo = FixedGeo::new()
            .with_network("10.0.0.0/8", GeoPoint::new(1.0, 1.0, 0))
            .unwrap()
            .with_network("10.1.0.0/16", GeoPoint::new(2.0, 2.0, 0))
            .unwrap()
            .with_network("2001:db8::/32", GeoPoint::new(3.0, 3.0, 0))
            .unwrap();
        let at = |s: &str| geo.lookup(s.parse().unwrap()).map(|p| p.lat);
        assert_eq!(at("10.1.2.3"), Some(2.0));
        assert_eq!(at("10.9.2.3"), Some(1.0));
        assert_eq!(at("::ffff:10.9.2.3"), Some(1.0));
        assert_eq!(at("2001:db8:5::1"), Some(3.0));
        assert_eq!(at("11.0.0.1"), None);
        assert!(
            FixedGeo::new()
                .with_network("10.0.0.0/33", GeoPoint::new(0.0, 0.0, 0))
                .is_err()
        );
        assert!(
            FixedGeo::new()
                .with_network("nope", GeoPoint::new(0.0, 0.0, 0))
                .is_err()
        );
    }
}
