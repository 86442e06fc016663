//! The generated world: cities, their networks and addresses, and its geo table.

use std::net::{IpAddr, Ipv4Addr};

use authtel_detect::{FixedGeo, GeoPoint};

pub(crate) const CITIES: [(&str, f64, f64); 12] = [
    ("berlin", 52.52, 13.405),
    ("paris", 48.857, 2.352),
    ("london", 51.507, -0.128),
    ("madrid", 40.417, -3.704),
    ("rome", 41.903, 12.496),
    ("warsaw", 52.23, 21.012),
    ("new_york", 40.713, -74.006),
    ("san_francisco", 37.775, -122.419),
    ("toronto", 43.653, -79.383),
    ("tokyo", 35.676, 139.65),
    ("sydney", -33.869, 151.209),
    ("sao_paulo", -23.55, -46.633),
];

/// Network kinds of a city, each its own AS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Net {
    IspA,
    IspB,
    Mobile,
    Office,
    Hotel,
}

fn asn(city: usize, net: Net) -> u32 {
    64_500 + 10 * city as u32 + net as u32
}

fn net_base(city: usize, net: Net) -> (u8, u8) {
    let c = city as u8;
    match net {
        Net::IspA => (10, c),
        Net::IspB => (10, 100 + c),
        Net::Mobile => (100, 64 + c),
        Net::Office => (172, 16 + c),
        Net::Hotel => (10, 200 + c),
    }
}

pub(super) fn addr(city: usize, net: Net, c: u8, d: u8) -> IpAddr {
    let (a, b) = net_base(city, net);
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The geo table of the generated world: every city's networks, each a /16 with its AS,
/// located at the city (a few km apart), accurate to 25 km (50 for mobile).
pub(crate) fn world_geo() -> FixedGeo {
    let mut geo = FixedGeo::new();
    for (city, (_, lat, lon)) in CITIES.iter().enumerate() {
        for (i, net) in [Net::IspA, Net::IspB, Net::Mobile, Net::Office, Net::Hotel]
            .into_iter()
            .enumerate()
        {
            let (a, b) = net_base(city, net);
            let accuracy = if net == Net::Mobile { 50 } else { 25 };
            let point = GeoPoint::new(lat + 0.02 * i as f64, lon - 0.02 * i as f64, accuracy)
                .with_asn(asn(city, net));
            geo = geo
                .with_network(&format!("{a}.{b}.0.0/16"), point)
                .expect("valid network");
        }
    }
    geo
}

pub(super) fn distance_km(a: usize, b: usize) -> f64 {
    let (_, la, oa) = CITIES[a];
    let (_, lb, ob) = CITIES[b];
    GeoPoint::new(la, oa, 0).distance_km(&GeoPoint::new(lb, ob, 0))
}
