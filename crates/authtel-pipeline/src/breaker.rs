//! The circuit breaker: stop calling a destination that keeps failing, probe it later.

use std::sync::Mutex;
use std::time::Instant;

use crate::config::BreakerConfig;
use crate::metrics::BreakerState;

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Call (closed, or this caller is the half-open probe).
    Call,
    /// Don't call before this instant.
    Wait(Instant),
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

    pub(crate) fn permit(&self) -> Permit {
        let mut s = self.lock();
        match s.open_until {
            None => Permit::Call,
            Some(until) if Instant::now() < until => Permit::Wait(until),
            Some(until) => {
                if s.probing {
                    // Another caller is probing; look again after a short while.
                    Permit::Wait(until.max(Instant::now()) + self.cfg.open_for / 4)
                } else {
                    s.probing = true;
                    Permit::Call
                }
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

    pub(crate) fn on_success(&self) {
        let mut s = self.lock();
        s.consecutive = 0;
        s.open_until = None;
        s.probing = false;
    }

    /// Records a failure; true when this failure opened the breaker.
    pub(crate) fn on_failure(&self) -> bool {
        let mut s = self.lock();
        s.consecutive = s.consecutive.saturating_add(1);
        let reopen =
            s.probing || (s.open_until.is_none() && s.consecutive >= self.cfg.failure_threshold);
        s.probing = false;
        if reopen {
            s.open_until = Some(Instant::now() + self.cfg.open_for);
        }
        reopen
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
    use std::time::Duration;

    #[test]
    fn opens_after_threshold_and_probes_once() {
        let b = Breaker::new(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::ZERO,
        });
        assert!(!b.on_failure());
        assert!(b.on_failure());
        assert!(b.is_open());
        // open_for is zero: the first permit is the probe, the second must wait.
        assert_eq!(b.permit(), Permit::Call);
        assert!(matches!(b.permit(), Permit::Wait(_)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.on_failure(), "a failed probe re-opens");
        assert_eq!(b.permit(), Permit::Call);
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.permit(), Permit::Call);
    }

    #[test]
    fn stays_open_for_the_period() {
        let b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(3600),
        });
        b.on_failure();
        assert!(matches!(b.permit(), Permit::Wait(t) if t > Instant::now()));
        assert_eq!(b.state(), BreakerState::Open);
    }
}
