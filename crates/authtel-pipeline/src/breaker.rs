//! The circuit breaker: stop calling a destination that keeps failing, probe it later.
//!
//! Every call is an [`Attempt`] the caller must settle: `succeeded` (the destination took
//! the batch), `answered` (it refused the records for good — a permanent error is an
//! answer, so the destination is reachable), or `failed` (transient, timeout, panic). An
//! attempt dropped without being settled (a cancelled call, a panic in between) releases
//! the half-open probe too, so no path can leave the breaker waiting for a probe that
//! never reports: the wedge of the first version, where a permanent error at the probe
//! kept `probing` set forever and the destination was never called again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;
use crate::metrics::BreakerState;

/// While another caller probes, look again after at most this long.
const PROBE_RECHECK: Duration = Duration::from_millis(10);

/// What a caller may do now.
#[derive(Debug)]
pub(crate) enum Permit<'a> {
    /// Call, then settle the attempt.
    Call(Attempt<'a>),
    /// Don't call before this instant.
    Wait(Instant),
}

/// How the breaker changed with a settled attempt, for the once-per-change log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// No change of state.
    None,
    /// The breaker opened (or re-opened after a failed probe).
    Opened,
    /// The breaker was open and closed again.
    Closed,
}

#[derive(Debug)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    probing: bool,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    cfg: BreakerConfig,
    state: Mutex<State>,
}

/// One permitted call. Settle it with one of its methods; dropping it unsettled releases
/// the probe (if it was one) without changing anything else.
#[derive(Debug)]
#[must_use = "settle the attempt, or the breaker learns nothing"]
pub(crate) struct Attempt<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Attempt<'_> {
    /// The destination took the batch.
    pub(crate) fn succeeded(self) -> Change {
        self.close()
    }

    /// The destination answered with a permanent refusal: it is reachable, so the breaker
    /// closes like after a success (the records go to the dead letters, not the breaker).
    pub(crate) fn answered(self) -> Change {
        self.close()
    }

    fn close(self) -> Change {
        let mut s = self.breaker.lock();
        let was_open = s.open_until.is_some();
        s.consecutive = 0;
        s.open_until = None;
        if self.probe {
            s.probing = false;
        }
        drop(s);
        std::mem::forget(self);
        if was_open {
            Change::Closed
        } else {
            Change::None
        }
    }

    /// A transient failure, a timeout or a panic.
    pub(crate) fn failed(self) -> Change {
        let mut s = self.breaker.lock();
        s.consecutive = s.consecutive.saturating_add(1);
        let reopen = self.probe
            || (s.open_until.is_none() && s.consecutive >= self.breaker.cfg.failure_threshold);
        if self.probe {
            s.probing = false;
        }
        if reopen {
            s.open_until = Some(Instant::now() + self.breaker.cfg.open_for);
        }
        drop(s);
        std::mem::forget(self);
        if reopen { Change::Opened } else { Change::None }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.lock().probing = false;
        }
    }
}

impl Breaker {
    pub(crate) fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            cfg,
            state: Mutex::new(State {
                consecutive: 0,
                open_until: None,
                probing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn permit(&self) -> Permit<'_> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.open_until {
            None => Permit::Call(Attempt {
                breaker: self,
                probe: false,
            }),
            Some(until) if now < until => Permit::Wait(until),
            Some(_) if s.probing => Permit::Wait(now + (self.cfg.open_for / 4).min(PROBE_RECHECK)),
            Some(_) => {
                s.probing = true;
                Permit::Call(Attempt {
                    breaker: self,
                    probe: true,
                })
            }
        }
    }

    /// Whether a call now would certainly be refused (open, probe time not reached).
    pub(crate) fn blocked(&self) -> bool {
        self.lock()
            .open_until
            .is_some_and(|until| Instant::now() < until)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.lock().open_until.is_some()
    }

    pub(crate) fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(_) if s.probing => BreakerState::HalfOpen,
            Some(until) if Instant::now() >= until => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_for: Duration) -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: threshold,
            open_for,
        })
    }

    fn call(b: &Breaker) -> Attempt<'_> {
        match b.permit() {
            Permit::Call(a) => a,
            Permit::Wait(t) => panic!("expected a call, told to wait until {t:?}"),
        }
    }

    /// How an attempt ends: the four error kinds the lane sees (a timeout and a panic are
    /// settled as failures by the lane), a success, and an attempt dropped unsettled.
    #[derive(Debug, Clone, Copy)]
    enum End {
        Success,
        Transient,
        Permanent,
        Timeout,
        Panic,
        Dropped,
    }

    const ENDS: [End; 6] = [
        End::Success,
        End::Transient,
        End::Permanent,
        End::Timeout,
        End::Panic,
        End::Dropped,
    ];

    fn settle(a: Attempt<'_>, end: End) -> Change {
        match end {
            End::Success => a.succeeded(),
            End::Permanent => a.answered(),
            End::Transient | End::Timeout => a.failed(),
            End::Panic => {
                // The lane catches the panic and settles the attempt as failed; an unwind
                // that skips the settlement drops the attempt instead (End::Dropped).
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    panic!("forwarder panicked")
                }));
                assert!(r.is_err());
                a.failed()
            }
            End::Dropped => {
                drop(a);
                Change::None
            }
        }
    }

    /// Puts a fresh breaker (threshold 2, open period zero so probes are due at once) into
    /// `state`: closed, closed with one failure counted, or half-open with the probe out.
    fn in_state(state: &str) -> Breaker {
        let b = breaker(2, Duration::ZERO);
        match state {
            "closed" => {}
            "closed-one-failure" => assert_eq!(call(&b).failed(), Change::None),
            "open" => {
                assert_eq!(call(&b).failed(), Change::None);
                assert_eq!(call(&b).failed(), Change::Opened);
            }
            _ => unreachable!(),
        }
        b
    }

    #[test]
    fn every_outcome_at_every_state_lets_delivery_resume() {
        for state in ["closed", "closed-one-failure", "open"] {
            for end in ENDS {
                let b = in_state(state);
                let first = call(&b); // in "open" this is the half-open probe
                let probe = first.probe;
                assert_eq!(probe, state == "open", "{state}");
                if probe {
                    assert!(
                        matches!(b.permit(), Permit::Wait(_)),
                        "{state}: one probe at a time"
                    );
                    assert_eq!(b.state(), BreakerState::HalfOpen);
                }
                let change = settle(first, end);
                match (state, end) {
                    ("open", End::Success | End::Permanent) => {
                        assert_eq!(change, Change::Closed, "{state} {end:?}");
                        assert_eq!(b.state(), BreakerState::Closed);
                    }
                    ("open", End::Transient | End::Timeout | End::Panic) => {
                        assert_eq!(change, Change::Opened, "{state} {end:?}: re-opens")
                    }
                    ("closed-one-failure", End::Transient | End::Timeout | End::Panic) => {
                        assert_eq!(change, Change::Opened, "{state} {end:?}: threshold")
                    }
                    _ => assert_eq!(change, Change::None, "{state} {end:?}"),
                }
                // Whatever happened, once the destination recovers the next call (the
                // next probe, as open_for is zero) goes through and closes the breaker.
                let next = call(&b);
                next.succeeded();
                assert_eq!(b.state(), BreakerState::Closed, "{state} {end:?}");
                assert!(matches!(b.permit(), Permit::Call(_)), "{state} {end:?}");
            }
        }
    }

    #[test]
    fn permanent_error_at_the_probe_releases_it() {
        // The first version's wedge: the probe got a permanent error and `probing` stayed
        // set; every later permit said "wait" forever.
        let b = breaker(1, Duration::ZERO);
        assert_eq!(call(&b).failed(), Change::Opened);
        let probe = call(&b);
        assert_eq!(probe.answered(), Change::Closed);
        for _ in 0..3 {
            call(&b).succeeded();
        }
    }

    #[test]
    fn stays_open_for_the_period() {
        let b = breaker(1, Duration::from_secs(3600));
        assert_eq!(call(&b).failed(), Change::Opened);
        assert!(matches!(b.permit(), Permit::Wait(t) if t > Instant::now()));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.blocked());
    }
}
