//! Benign traffic: people logging in from home, the office and their phones, with typos,
//! shared office addresses and mobile address changes.

use std::net::IpAddr;
use std::sync::Arc;

use authtel_core::outcome::Outcome;

use super::events::{Ev, Kind};
use super::world::{CITIES, Net, addr, distance_km};
use super::{DAY, EPOCH, HOUR, MINUTE, Rng, SECOND};

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
