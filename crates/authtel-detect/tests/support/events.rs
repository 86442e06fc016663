//! What a corpus line is ([`Ev`], [`Kind`]) and the replay that emits each through the
//! registry on a manual clock.

use std::net::IpAddr;
use std::sync::Arc;

use authtel_core::catalogue::{AUTH_LOGIN, JWT_REFRESH, MFA_VERIFY, SESSION_DELETE};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry;
use authtel_detect::clock::ManualClock;

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Mfa => "mfa",
            Kind::Refresh => "refresh",
            Kind::Logout => "logout",
        }
    }

    pub(super) fn parse(s: &str) -> Kind {
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
    pub(super) fn new(t: u64, kind: Kind, outcome: Outcome) -> Ev {
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

    pub(super) fn login(
        t: u64,
        user: Option<&Arc<str>>,
        ip: IpAddr,
        ua: &Arc<str>,
        ok: bool,
    ) -> Ev {
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

    pub(super) fn mfa(
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

    pub(super) fn session_event(
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
