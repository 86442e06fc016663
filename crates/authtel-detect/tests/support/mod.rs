//! The corpora: a deterministic generator of benign traffic and of scripted attacks, their
//! text form (the committed `tests/corpus/attacks.tsv`), a geo table for the generated
//! world, a replay that emits every event through the registry on a manual clock, and the
//! signals a capture saw, as comparable tuples.
//!
//! Regenerate the committed attack corpus with
//! `AUTHTEL_BLESS=1 cargo test -p authtel-detect --test attack_corpus`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use authtel_core::catalogue::{AUTH_LOGIN, JWT_REFRESH, MFA_VERIFY, SESSION_DELETE};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry;
use authtel_detect::clock::ManualClock;
use authtel_detect::{FixedGeo, GeoPoint};
use authtel_testing::CapturedEvent;

/// The seed both corpora are generated from.
pub(crate) const SEED: u64 = 0x00A7_7E1D_E7EC_7015;

pub(crate) const SECOND: u64 = 1000;
pub(crate) const MINUTE: u64 = 60 * SECOND;
pub(crate) const HOUR: u64 = 60 * MINUTE;
pub(crate) const DAY: u64 = 24 * HOUR;
/// Corpus time starts here (a Monday 00:00 in corpus time), far from the clock's origin.
pub(crate) const EPOCH: u64 = 1_000 * DAY;

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// What a corpus line makes the replay emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `auth.login` start and stop.
    Login,
    /// `mfa.verify` start and stop.
    Mfa,
    /// `jwt.refresh` start and stop.
    Refresh,
    /// `session.delete` start and stop.
    Logout,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Mfa => "mfa",
            Kind::Refresh => "refresh",
            Kind::Logout => "logout",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "login" => Kind::Login,
            "mfa" => Kind::Mfa,
            "refresh" => Kind::Refresh,
            "logout" => Kind::Logout,
            other => panic!("unknown corpus kind {other:?}"),
        }
    }
}

type Text = Option<Arc<str>>;

/// One event of a corpus.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ev {
    pub(crate) t: u64,
    pub(crate) kind: Kind,
    pub(crate) outcome: Outcome,
    pub(crate) user: Text,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) ua: Text,
    pub(crate) method: Text,
    pub(crate) reason: Text,
    pub(crate) session: Text,
}

fn text(s: &str) -> Text {
    Some(Arc::from(s))
}

impl Ev {
    fn new(t: u64, kind: Kind, outcome: Outcome) -> Ev {
        Ev {
            t,
            kind,
            outcome,
            user: None,
            ip: None,
            ua: None,
            method: None,
            reason: None,
            session: None,
        }
    }

    fn login(t: u64, user: Option<&Arc<str>>, ip: IpAddr, ua: &Arc<str>, ok: bool) -> Ev {
        let mut e = Ev::new(
            t,
            Kind::Login,
            if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        );
        e.user = user.cloned();
        e.ip = Some(ip);
        e.ua = Some(ua.clone());
        e.method = text("password");
        if !ok {
            e.reason = text(if user.is_some() {
                "invalid_password"
            } else {
                "unknown_user"
            });
        }
        e
    }

    fn mfa(
        t: u64,
        user: &Arc<str>,
        ip: IpAddr,
        method: &str,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Ev {
        let mut e = Ev::new(t, Kind::Mfa, outcome);
        e.user = Some(user.clone());
        e.ip = Some(ip);
        e.method = text(method);
        e.reason = reason.and_then(text);
        e
    }

    fn session_event(
        t: u64,
        kind: Kind,
        user: &Arc<str>,
        ip: IpAddr,
        session: &str,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Ev {
        let mut e = Ev::new(t, kind, outcome);
        e.user = Some(user.clone());
        e.ip = Some(ip);
        e.session = text(session);
        e.reason = reason.and_then(text);
        e
    }

    /// One tab-separated line: time kind outcome user ip user_agent method reason session.
    pub(crate) fn to_line(&self) -> String {
        let t = |v: &Text| v.as_deref().unwrap_or("-").to_owned();
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.t,
            self.kind.as_str(),
            self.outcome.as_str(),
            t(&self.user),
            self.ip.map_or("-".to_owned(), |ip| ip.to_string()),
            t(&self.ua),
            t(&self.method),
            t(&self.reason),
            t(&self.session),
        )
    }

    pub(crate) fn from_line(line: &str) -> Ev {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "corpus line {line:?}");
        let t = |s: &str| (s != "-").then(|| Arc::from(s));
        Ev {
            t: f[0].parse().expect("time"),
            kind: Kind::parse(f[1]),
            outcome: match f[2] {
                "success" => Outcome::Success,
                "failure" => Outcome::Failure,
                "denied" => Outcome::Denied,
                "error" => Outcome::Error,
                o => panic!("outcome {o:?}"),
            },
            user: t(f[3]),
            ip: (f[4] != "-").then(|| f[4].parse().expect("ip")),
            ua: t(f[5]),
            method: t(f[6]),
            reason: t(f[7]),
            session: t(f[8]),
        }
    }
}

/// Emits `events` in order through the thread's registry, the clock set to each one's time.
pub(crate) fn replay(events: &[Ev], clock: &ManualClock) {
    for e in events {
        clock.set_ms(e.t);
        emit(e);
    }
}

/// A code read from the corpus file as `'static` (the code fields take nothing else): the
/// corpora have a handful of distinct codes, each leaked once.
fn code(s: &str) -> &'static str {
    static CODES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut codes = CODES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = codes.get(s) {
        return known;
    }
    let leaked: &'static str = Box::leak(s.into());
    codes.insert(leaked);
    leaked
}

pub(crate) fn emit(e: &Ev) {
    let mut m = Metadata::new();
    if let Some(u) = &e.user {
        m = m.user_id(u);
    }
    if let Some(ip) = e.ip {
        m = m.client_ip(ip);
    }
    if let Some(ua) = &e.ua {
        m = m.user_agent(ua);
    }
    if let Some(x) = &e.method {
        m = m.method(code(x));
    }
    if let Some(x) = &e.reason {
        m = m.reason(code(x));
    }
    if let Some(x) = &e.session {
        m = m.session_id(x);
    }
    let span = match e.kind {
        Kind::Login => &AUTH_LOGIN,
        Kind::Mfa => &MFA_VERIFY,
        Kind::Refresh => &JWT_REFRESH,
        Kind::Logout => &SESSION_DELETE,
    };
    telemetry::start(span, m).stop(e.outcome);
}

// ---------------------------------------------------------------------------------------
// The world: cities and their networks.

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
enum Net {
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

fn addr(city: usize, net: Net, c: u8, d: u8) -> IpAddr {
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

fn distance_km(a: usize, b: usize) -> f64 {
    let (_, la, oa) = CITIES[a];
    let (_, lb, ob) = CITIES[b];
    GeoPoint::new(la, oa, 0).distance_km(&GeoPoint::new(lb, ob, 0))
}

// ---------------------------------------------------------------------------------------
// Benign traffic.

const BROWSERS: [&str; 4] = ["firefox", "chrome", "safari", "edge"];
const DESKTOPS: [&str; 3] = ["windows", "macos", "linux"];
const PHONES: [&str; 2] = ["ios", "android"];

#[derive(Debug)]
struct User {
    id: Arc<str>,
    city: usize,
    isp: Net,
    home: (u8, u8),
    office: Option<(usize, u8)>,
    laptop: Arc<str>,
    second: Option<Arc<str>>,
    phone: Option<Arc<str>>,
    totp: bool,
    push: bool,
    /// Departure time, destination.
    trip: Option<(u64, usize)>,
}

/// How many logins the benign corpus has.
pub(crate) const BENIGN_LOGINS: usize = 100_000;
/// How many accounts.
pub(crate) const BENIGN_USERS: usize = 10_000;
/// Its length in days.
pub(crate) const BENIGN_DAYS: u64 = 14;

/// Share of the day's logins in each hour (office hours heavy, a small night).
const HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 2, 4, 8, 14, 12, 9, 8, 8, 9, 8, 7, 6, 6, 6, 6, 5, 4, 3, 2,
];

fn pick_hour(rng: &mut Rng) -> u64 {
    let total: u32 = HOURS.iter().sum();
    let mut x = rng.range(0, total.into()) as u32;
    for (h, w) in HOURS.iter().enumerate() {
        if x < *w {
            return h as u64;
        }
        x -= w;
    }
    23
}

/// 100,000 successful logins of 10,000 accounts over two weeks, with what comes around
/// them in real traffic:
/// - typos: a wrong password or two before 6% of logins, a forgotten password (3–6
///   failures, a reset, a login 10–20 minutes later) before 0.3%, a mistyped user name
///   (an unknown-account failure) before 1.5%;
/// - shared addresses: 60 offices behind one or two NAT addresses each, sized like real
///   companies (20 to 600 people), and mobile carriers' CGNAT pools (512 addresses per city
///   for everyone on that carrier);
/// - mobile address changes: every phone login on the carrier gets another address;
///   home addresses move to another /24 of the ISP now and then;
/// - devices: a laptop, sometimes a second computer, often a phone; a new device is first
///   used at home;
/// - travel: 2% of accounts fly to another city for three days and log in from a hotel;
/// - MFA after the login: TOTP (35% of accounts, 4% typo once), push (15%, 2% time out
///   once, 1% deny once by mistake, then approve);
/// - sessions: half refresh 1–3 times, 30% log out.
pub(crate) fn benign(seed: u64) -> Vec<Ev> {
    let mut rng = Rng::new(seed);
    // Offices: sizes from a Pareto distribution, 20 to 600 people.
    let offices: Vec<(usize, u8, f64)> = (0..60)
        .map(|o| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let size = (20.0 * (1.0 / (1.0 - u * 0.999)).powf(1.0 / 1.2)).min(600.0);
            (o % CITIES.len(), o as u8, size)
        })
        .collect();
    let office_weight: f64 = offices.iter().map(|o| o.2).sum();
    let users: Vec<User> = (0..BENIGN_USERS)
        .map(|n| {
            let office = rng.chance(0.6).then(|| {
                let mut x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * office_weight;
                let mut pick = offices[0];
                for o in &offices {
                    if x < o.2 {
                        pick = *o;
                        break;
                    }
                    x -= o.2;
                }
                (pick.0, pick.1)
            });
            let city = office.map_or_else(|| rng.range(0, CITIES.len() as u64) as usize, |o| o.0);
            let laptop: Arc<str> =
                format!("ua/{}/{}/{n}a", rng.pick(&BROWSERS), rng.pick(&DESKTOPS)).into();
            let second = rng
                .chance(0.2)
                .then(|| format!("ua/{}/{}/{n}b", rng.pick(&BROWSERS), rng.pick(&DESKTOPS)).into());
            let phone = rng
                .chance(0.7)
                .then(|| format!("ua/app/{}/{n}p", rng.pick(&PHONES)).into());
            let totp = rng.chance(0.35);
            let push = !totp && rng.chance(0.23);
            let trip = rng.chance(0.02).then(|| {
                let day = rng.range(2, BENIGN_DAYS - 4);
                let mut dest = rng.range(0, CITIES.len() as u64) as usize;
                if dest == city {
                    dest =
                        (dest + 1 + rng.range(0, CITIES.len() as u64 - 1) as usize) % CITIES.len();
                }
                (EPOCH + day * DAY + 7 * HOUR, dest)
            });
            User {
                id: format!("u{n:05}").into(),
                city,
                isp: if rng.chance(0.5) {
                    Net::IspA
                } else {
                    Net::IspB
                },
                home: (rng.range(0, 256) as u8, rng.range(1, 255) as u8),
                office,
                laptop,
                second,
                phone,
                totp,
                push,
                trip,
            }
        })
        .collect();
    // Login times: users are more or less active (1 to 4 weight), hours follow HOURS,
    // weekends are quieter.
    let weights: Vec<u64> = users.iter().map(|_| 1 + rng.range(0, 4)).collect();
    let total: u64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0;
    for w in &weights {
        acc += w;
        cumulative.push(acc);
    }
    let mut times: Vec<Vec<u64>> = vec![Vec::new(); users.len()];
    let mut placed = 0;
    while placed < BENIGN_LOGINS {
        let x = rng.range(0, total);
        let u = cumulative.partition_point(|&c| c <= x);
        let day = rng.range(0, BENIGN_DAYS);
        let weekend = day % 7 >= 5;
        if weekend && rng.chance(0.6) {
            continue;
        }
        let t = EPOCH + day * DAY + pick_hour(&mut rng) * HOUR + rng.range(0, HOUR);
        times[u].push(t);
        placed += 1;
    }
    let mut events = Vec::with_capacity(BENIGN_LOGINS * 3);
    for (user, times) in users.iter().zip(times.iter_mut()) {
        times.sort_unstable();
        generate_user(&mut rng, user, times, &mut events);
    }
    events.sort_by_key(|e| e.t);
    events
}

fn generate_user(rng: &mut Rng, user: &User, times: &[u64], out: &mut Vec<Ev>) {
    let mut home = user.home;
    let mut phone_seen = false;
    let mut last_t = 0;
    for (k, &t0) in times.iter().enumerate() {
        let mut t = t0.max(last_t + 5 * MINUTE);
        let day = (t - EPOCH) / DAY;
        let hour = (t - EPOCH) % DAY / HOUR;
        let workday = day % 7 < 5 && (8..18).contains(&hour);
        // Travel: no logins in the air; at the destination, from a hotel.
        let mut city = user.city;
        let mut hotel = false;
        if let Some((depart, dest)) = user.trip {
            let flight = ((distance_km(user.city, dest) / 800.0 + 2.0) * HOUR as f64) as u64;
            let arrive = depart + flight;
            let leave = arrive + 3 * DAY;
            let back = leave + flight;
            if (depart..arrive).contains(&t) {
                t = arrive + HOUR;
            } else if (leave..back).contains(&t) {
                t = back + HOUR;
            }
            if (arrive..leave).contains(&t) {
                city = dest;
                hotel = true;
            }
        }
        last_t = t;
        if rng.chance(0.01) {
            home.0 = rng.range(0, 256) as u8;
        }
        // Where and on what.
        let (ip, ua): (IpAddr, Arc<str>) = if hotel {
            let ua = match &user.phone {
                Some(p) if phone_seen && rng.chance(0.5) => p.clone(),
                _ => user.laptop.clone(),
            };
            (
                addr(
                    city,
                    Net::Hotel,
                    rng.range(0, 256) as u8,
                    rng.range(1, 255) as u8,
                ),
                ua,
            )
        } else if k < 2 {
            (addr(city, user.isp, home.0, home.1), user.laptop.clone())
        } else if let Some((ocity, o)) = user.office.filter(|_| workday && rng.chance(0.8)) {
            let nat = if u32::from(o) % 3 == 0 {
                rng.range(1, 3) as u8
            } else {
                1
            };
            (addr(ocity, Net::Office, o, nat), user.laptop.clone())
        } else {
            let mobile = user.phone.is_some() && rng.chance(0.4);
            match (&user.phone, mobile) {
                (Some(p), true) if phone_seen => {
                    // CGNAT: one of 512 public addresses of the city's carrier.
                    (
                        addr(
                            city,
                            Net::Mobile,
                            rng.range(0, 2) as u8,
                            rng.range(1, 255) as u8,
                        ),
                        p.clone(),
                    )
                }
                (Some(p), true) => {
                    // A phone's first login happens on the home network.
                    phone_seen = true;
                    (addr(city, user.isp, home.0, home.1), p.clone())
                }
                _ => {
                    let ua = match &user.second {
                        Some(s) if rng.chance(0.3) => s.clone(),
                        _ => user.laptop.clone(),
                    };
                    (addr(city, user.isp, home.0, home.1), ua)
                }
            }
        };
        let id = Some(&user.id);
        // Failures before the login.
        let mut success_at = t;
        if rng.chance(0.003) {
            // Forgot the password: several tries, a reset, then a login.
            let tries = rng.range(3, 7);
            let mut at = t;
            for _ in 0..tries {
                out.push(Ev::login(at, id, ip, &ua, false));
                at += rng.range(8, 21) * SECOND;
            }
            success_at = at + rng.range(10, 21) * MINUTE;
        } else if rng.chance(0.01) {
            out.push(Ev::login(
                t - rng.range(25, 41) * SECOND,
                id,
                ip,
                &ua,
                false,
            ));
            out.push(Ev::login(t - rng.range(6, 16) * SECOND, id, ip, &ua, false));
        } else if rng.chance(0.05) {
            out.push(Ev::login(t - rng.range(6, 31) * SECOND, id, ip, &ua, false));
        }
        if rng.chance(0.015) {
            out.push(Ev::login(
                t - rng.range(45, 90) * SECOND,
                None,
                ip,
                &ua,
                false,
            ));
        }
        out.push(Ev::login(success_at, id, ip, &ua, true));
        // MFA.
        let at = success_at + rng.range(5, 15) * SECOND;
        if user.totp {
            if rng.chance(0.04) {
                out.push(Ev::mfa(
                    at,
                    &user.id,
                    ip,
                    "totp",
                    Outcome::Failure,
                    Some("invalid_code"),
                ));
                out.push(Ev::mfa(
                    at + 12 * SECOND,
                    &user.id,
                    ip,
                    "totp",
                    Outcome::Success,
                    None,
                ));
            } else {
                out.push(Ev::mfa(at, &user.id, ip, "totp", Outcome::Success, None));
            }
        } else if user.push {
            if rng.chance(0.02) {
                out.push(Ev::mfa(
                    at,
                    &user.id,
                    ip,
                    "push",
                    Outcome::Failure,
                    Some("timeout"),
                ));
                out.push(Ev::mfa(
                    at + 40 * SECOND,
                    &user.id,
                    ip,
                    "push",
                    Outcome::Success,
                    None,
                ));
            } else if rng.chance(0.01) {
                out.push(Ev::mfa(
                    at,
                    &user.id,
                    ip,
                    "push",
                    Outcome::Denied,
                    Some("user_denied"),
                ));
                out.push(Ev::mfa(
                    at + 30 * SECOND,
                    &user.id,
                    ip,
                    "push",
                    Outcome::Success,
                    None,
                ));
            } else {
                out.push(Ev::mfa(at, &user.id, ip, "push", Outcome::Success, None));
            }
        }
        // The session.
        let session = format!("s{}-{k}", &user.id[1..]);
        let mut at = success_at + MINUTE;
        if rng.chance(0.5) {
            for _ in 0..rng.range(1, 4) {
                at += rng.range(10, 20) * MINUTE;
                out.push(Ev::session_event(
                    at,
                    Kind::Refresh,
                    &user.id,
                    ip,
                    &session,
                    Outcome::Success,
                    None,
                ));
            }
        }
        if rng.chance(0.3) {
            at += rng.range(1, 60) * MINUTE;
            out.push(Ev::session_event(
                at,
                Kind::Logout,
                &user.id,
                ip,
                &session,
                Outcome::Success,
                None,
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Attacks.

/// One scripted attack: its name and its events (a victim's ordinary history first).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) events: Vec<Ev>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid address")
}

/// A victim's ordinary history: `n` daily logins from home on one laptop.
fn history(out: &mut Vec<Ev>, user: &Arc<str>, city: usize, start: u64, n: u64) -> Arc<str> {
    let ua: Arc<str> = format!("ua/firefox/linux/{user}").into();
    for d in 0..n {
        out.push(Ev::login(
            start + d * DAY + 9 * HOUR,
            Some(user),
            addr(city, Net::IspA, 42, 7),
            &ua,
            true,
        ));
    }
    ua
}

/// The attack corpus. Each scenario starts at its own day so that no window spans two.
pub(crate) fn attacks(seed: u64) -> Vec<Scenario> {
    let mut rng = Rng::new(seed ^ 0x00A7_7AC4);
    let mut scenarios = Vec::new();
    let day = |n: u64| EPOCH + n * 10 * DAY;

    // Brute force on one account from one address: 40 passwords, one every 12 s.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_bf_victim".into();
        history(&mut ev, &victim, 0, day(0), 5);
        let t0 = day(0) + 6 * DAY;
        let ua: Arc<str> = "ua/python-requests/2.31".into();
        for i in 0..40 {
            ev.push(Ev::login(
                t0 + i * 12 * SECOND,
                Some(&victim),
                ip("198.51.100.23"),
                &ua,
                false,
            ));
        }
        scenarios.push(Scenario {
            name: "brute_force".into(),
            events: ev,
        });
    }

    // Spraying from one address across 500 accounts, one attempt each, every 6 s.
    {
        let mut ev = Vec::new();
        let t0 = day(1);
        let ua: Arc<str> = "ua/go-http-client/1.1".into();
        for i in 0..500 {
            let user: Arc<str> = format!("u_spray{i:03}").into();
            ev.push(Ev::login(
                t0 + i * 6 * SECOND,
                Some(&user),
                ip("203.0.113.66"),
                &ua,
                false,
            ));
        }
        scenarios.push(Scenario {
            name: "password_spraying".into(),
            events: ev,
        });
    }

    // Stuffing: 10,000 accounts from 2,000 botnet addresses (5 each, all in other /24s),
    // in 8 minutes inside one 10-minute window; 30% of the leaked accounts do not exist
    // here, 1% of the rest log in.
    {
        let mut ev = Vec::new();
        let t0 = day(2) + 30 * SECOND;
        let ips: Vec<IpAddr> = (0..2000u32)
            .map(|i| {
                IpAddr::V4(Ipv4Addr::new(
                    45,
                    (i / 200) as u8 + 1,
                    (i % 200) as u8,
                    rng.range(1, 255) as u8,
                ))
            })
            .collect();
        let ua: Arc<str> = "ua/chrome/windows/stuffer".into();
        for i in 0..10_000u64 {
            let t = t0 + i * 48;
            let from = ips[(i % 2000) as usize];
            if rng.chance(0.3) {
                ev.push(Ev::login(t, None, from, &ua, false));
            } else {
                let user: Arc<str> = format!("u_leak{i:05}").into();
                ev.push(Ev::login(t, Some(&user), from, &ua, rng.chance(0.01)));
            }
        }
        scenarios.push(Scenario {
            name: "credential_stuffing".into(),
            events: ev,
        });
    }

    // MFA push bombing: the attacker has the password; 12 pushes in 6 minutes, ten time out,
    // two are denied, then the worn-out user approves.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_mfa_victim".into();
        let t0 = day(3);
        let home = addr(1, Net::IspA, 42, 7);
        for i in 0..12u64 {
            let (outcome, reason) = match i {
                9 | 10 => (Outcome::Denied, Some("user_denied")),
                11 => (Outcome::Success, None),
                _ => (Outcome::Failure, Some("timeout")),
            };
            ev.push(Ev::mfa(
                t0 + i * 30 * SECOND,
                &victim,
                home,
                "push",
                outcome,
                reason,
            ));
        }
        scenarios.push(Scenario {
            name: "mfa_push_bombing".into(),
            events: ev,
        });
    }

    // TOTP guessing: eight wrong codes in four minutes.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_totp_victim".into();
        let t0 = day(4);
        for i in 0..8u64 {
            ev.push(Ev::mfa(
                t0 + i * 30 * SECOND,
                &victim,
                ip("198.51.100.80"),
                "totp",
                Outcome::Failure,
                Some("invalid_code"),
            ));
        }
        scenarios.push(Scenario {
            name: "totp_guessing".into(),
            events: ev,
        });
    }

    // A login from a new network on a new device, after five days of the usual.
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_newip_victim".into();
        history(&mut ev, &victim, 2, day(5), 5);
        let ua: Arc<str> = "ua/chrome/windows/attacker".into();
        ev.push(Ev::login(
            day(5) + 5 * DAY + 3 * HOUR,
            Some(&victim),
            ip("185.220.101.7"),
            &ua,
            true,
        ));
        scenarios.push(Scenario {
            name: "new_ip_login".into(),
            events: ev,
        });
    }

    // Impossible travel: Berlin, then Sydney an hour later, same browser (a stolen session
    // cookie replayed with the victim's user agent).
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_travel_victim".into();
        let ua = history(&mut ev, &victim, 0, day(6), 3);
        let t = day(6) + 3 * DAY + 9 * HOUR;
        ev.push(Ev::login(
            t,
            Some(&victim),
            addr(0, Net::IspA, 42, 7),
            &ua,
            true,
        ));
        ev.push(Ev::login(
            t + HOUR,
            Some(&victim),
            addr(10, Net::Hotel, 9, 9),
            &ua,
            true,
        ));
        scenarios.push(Scenario {
            name: "impossible_travel".into(),
            events: ev,
        });
    }

    // Refresh reuse: a session is logged out and its refresh token replayed two hours later;
    // another session's rotated token is presented again (the application refuses it).
    {
        let mut ev = Vec::new();
        let victim: Arc<str> = "u_refresh_victim".into();
        let t0 = day(7);
        let home = addr(3, Net::IspA, 42, 7);
        for i in 1..=2 {
            ev.push(Ev::session_event(
                t0 + i * 15 * MINUTE,
                Kind::Refresh,
                &victim,
                home,
                "s_ref_a",
                Outcome::Success,
                None,
            ));
        }
        ev.push(Ev::session_event(
            t0 + HOUR,
            Kind::Logout,
            &victim,
            home,
            "s_ref_a",
            Outcome::Success,
            None,
        ));
        ev.push(Ev::session_event(
            t0 + 3 * HOUR,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_a",
            Outcome::Failure,
            Some("revoked"),
        ));
        ev.push(Ev::session_event(
            t0 + 3 * HOUR + MINUTE,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_a",
            Outcome::Failure,
            Some("revoked"),
        ));
        ev.push(Ev::session_event(
            t0 + 4 * HOUR,
            Kind::Refresh,
            &victim,
            home,
            "s_ref_b",
            Outcome::Success,
            None,
        ));
        ev.push(Ev::session_event(
            t0 + 4 * HOUR + 5 * MINUTE,
            Kind::Refresh,
            &victim,
            ip("198.51.100.99"),
            "s_ref_b",
            Outcome::Failure,
            Some("reused"),
        ));
        scenarios.push(Scenario {
            name: "refresh_reuse".into(),
            events: ev,
        });
    }
    for s in &mut scenarios {
        s.events.sort_by_key(|e| e.t);
    }
    scenarios
}

/// The attack corpus as text: `# scenario <name>` lines, each followed by its events.
pub(crate) fn attacks_text(scenarios: &[Scenario]) -> String {
    let mut out = String::from(
        "# authtel-detect attack corpus, generated by tests/support/mod.rs from SEED; do not edit.\n\
         # Regenerate: AUTHTEL_BLESS=1 cargo test -p authtel-detect --test attack_corpus\n\
         # Fields: time_ms kind outcome user_id client_ip user_agent method reason session_id\n",
    );
    for s in scenarios {
        out.push_str(&format!("# scenario {}\n", s.name));
        for e in &s.events {
            out.push_str(&e.to_line());
            out.push('\n');
        }
    }
    out
}

pub(crate) fn parse_attacks(text: &str) -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# scenario ") {
            scenarios.push(Scenario {
                name: name.to_owned(),
                events: Vec::new(),
            });
        } else if !line.starts_with('#') && !line.is_empty() {
            scenarios
                .last_mut()
                .expect("a scenario line comes first")
                .events
                .push(Ev::from_line(line));
        }
    }
    scenarios
}

// ---------------------------------------------------------------------------------------
// Signals as comparable tuples.

/// A signal: event, rule (reason), key kind, key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Sig {
    pub(crate) event: String,
    pub(crate) rule: String,
    pub(crate) key_kind: String,
    pub(crate) key: String,
}

impl Sig {
    pub(crate) fn new(event: &str, rule: &str, key_kind: &str, key: &str) -> Sig {
        Sig {
            event: event.into(),
            rule: rule.into(),
            key_kind: key_kind.into(),
            key: key.into(),
        }
    }

    pub(crate) fn from_event(e: &CapturedEvent) -> Sig {
        let f = |k: &str| e.field(k).unwrap_or("-").to_owned();
        let kind = f("key_kind");
        let key = match kind.as_str() {
            "identifier" => f("user_id"),
            "ip" => f("client_ip"),
            "ip_identifier" => format!("{}|{}", f("client_ip"), f("user_id")),
            "ip_prefix" | "global" => f("rate_limit_key"),
            "session" => f("session_id"),
            other => panic!("unknown key kind {other:?} in {e:?}"),
        };
        Sig {
            event: e.name.to_owned(),
            rule: f("reason"),
            key_kind: kind,
            key,
        }
    }
}

/// The detector signals among `events`, sorted.
pub(crate) fn signals(events: &[CapturedEvent]) -> Vec<Sig> {
    let names: BTreeSet<&str> = authtel_detect::signal_events()
        .iter()
        .map(|e| e.name())
        .collect();
    let mut out: Vec<Sig> = events
        .iter()
        .filter(|e| names.contains(e.name) && e.field("detector").is_some())
        .map(Sig::from_event)
        .collect();
    out.sort();
    out
}

/// How many signals of each (event, rule, key kind).
pub(crate) fn tally(signals: &[Sig]) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for s in signals {
        *m.entry((s.event.clone(), s.rule.clone(), s.key_kind.clone()))
            .or_insert(0) += 1;
    }
    m
}
