//! The pure part of the run-time loop: what to do with a module given its
//! state, and NEMEA's per-minute restart accounting.

use std::time::{Duration, Instant};

/// Length of the restart-limit window (NEMEA: 30 loop periods of ~2 s).
pub const WINDOW: Duration = Duration::from_secs(60);

/// Restart counter: −1 after (re-)enabling, +1 on each start, positive
/// values reset to 0 at the end of each one-minute window.
#[derive(Clone, Debug)]
pub struct Restarts {
    count: i64,
    window_start: Instant,
}

impl Restarts {
    pub fn new(now: Instant) -> Restarts {
        Restarts {
            count: -1,
            window_start: now,
        }
    }

    /// The module was (re-)enabled: the next start is a first start again.
    pub fn reset(&mut self) {
        self.count = -1;
    }

    /// Counts a start; returns true when it is a restart (not the first start).
    pub fn on_start(&mut self) -> bool {
        self.count += 1;
        self.count > 0
    }

    /// Ends the window when a minute has passed.
    pub fn tick(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= WINDOW {
            if self.count > 0 {
                self.count = 0;
            }
            self.window_start = now;
        }
    }

    /// Restarts counted in the current window.
    pub fn count(&self) -> i64 {
        self.count.max(0)
    }

    /// True when a stopped module may not be started again.
    pub fn exhausted(&self, limit: u32) -> bool {
        self.count >= i64::from(limit)
    }
}

/// What the loop does with one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Start it (`restart`: it has run before in this window).
    Start,
    /// Send SIGINT to its group (SIGKILL follows after the grace period).
    Stop,
    /// It died too often: disable it and leave it stopped.
    GiveUp,
}

/// Decides about one module. `should_run` = module and profile enabled;
/// `stopping` = a stop was already sent.
pub fn decide(
    should_run: bool,
    running: bool,
    stopping: bool,
    restarts: &Restarts,
    limit: u32,
) -> Action {
    match (should_run, running) {
        (false, true) if !stopping => Action::Stop,
        (true, false) if restarts.exhausted(limit) => Action::GiveUp,
        (true, false) => Action::Start,
        _ => Action::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_restarts_within_a_minute() {
        let t0 = Instant::now();
        let mut r = Restarts::new(t0);
        assert_eq!(decide(true, false, false, &r, 2), Action::Start);
        assert!(!r.on_start()); // first start
        assert_eq!(decide(true, false, false, &r, 2), Action::Start);
        assert!(r.on_start());
        assert!(r.on_start());
        assert_eq!(r.count(), 2);
        assert_eq!(decide(true, false, false, &r, 2), Action::GiveUp);
        // A minute later the window is fresh.
        r.tick(t0 + WINDOW);
        assert_eq!(decide(true, false, false, &r, 2), Action::Start);
    }

    #[test]
    fn limit_zero_never_restarts() {
        let mut r = Restarts::new(Instant::now());
        r.on_start();
        assert_eq!(decide(true, false, false, &r, 0), Action::GiveUp);
        r.reset();
        assert_eq!(decide(true, false, false, &r, 0), Action::Start);
    }

    #[test]
    fn stops_disabled_running_modules_once() {
        let r = Restarts::new(Instant::now());
        assert_eq!(decide(false, true, false, &r, 3), Action::Stop);
        assert_eq!(decide(false, true, true, &r, 3), Action::Nothing);
        assert_eq!(decide(false, false, false, &r, 3), Action::Nothing);
        assert_eq!(decide(true, true, false, &r, 3), Action::Nothing);
    }
}
