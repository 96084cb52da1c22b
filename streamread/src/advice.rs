//! When small runs get advice (`Smgr::prefetch`).
//!
//! Advice pays where the pages are not in memory yet; where they are (a
//! warm sparse scan) it only costs, a system call per run. The gate
//! watches small reads, which the stream tries inline first: one that
//! finishes on the spot found its pages cached. After a streak of such
//! reads it leaves one run unadvised, as a probe, since in a cold scan the
//! advice itself makes later reads find their pages cached. If the probe's
//! read finds its pages cached anyway, the scan is warm: advice stops for
//! small runs until a small read has to wait. If the probe had to wait,
//! advice goes on and the next probe needs a streak twice as long; a cold
//! scan so loses the advice of a handful of runs in all.

/// Cached small reads in a row before the first probe.
const FIRST_STREAK: u32 = 8;
/// The longest streak asked for.
const MAX_STREAK: u32 = 1 << 16;

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Advising; `streak` cached small reads in a row so far.
    Advising { streak: u32 },
    /// Advising all but run `probe`, whose read decides.
    Probing { probe: u64 },
    /// Not advising small runs.
    Off,
}

#[derive(Debug)]
pub(crate) struct AdviceGate {
    state: State,
    needed: u32,
}

impl AdviceGate {
    pub fn new() -> Self {
        AdviceGate {
            state: State::Advising { streak: 0 },
            needed: FIRST_STREAK,
        }
    }

    /// Whether small run `run` (its id) should be advised.
    pub fn advise(&mut self, run: u64) -> bool {
        match self.state {
            State::Advising { streak } if streak >= self.needed => {
                self.state = State::Probing { probe: run };
                false
            }
            State::Advising { .. } | State::Probing { .. } => true,
            State::Off => false,
        }
    }

    /// The read of small run `run` finished on its first poll (`cached`:
    /// its pages were in memory) or had to wait.
    pub fn read_started(&mut self, run: u64, cached: bool) {
        self.state = match (&self.state, cached) {
            (State::Probing { probe }, true) if *probe == run => State::Off,
            (State::Probing { probe }, false) if *probe == run => self.back_off(),
            (State::Probing { probe }, _) => State::Probing { probe: *probe },
            (State::Advising { streak }, true) => State::Advising {
                streak: streak.saturating_add(1),
            },
            (State::Advising { .. }, false) => State::Advising { streak: 0 },
            (State::Off, true) => State::Off,
            (State::Off, false) => self.back_off(),
        };
    }

    /// Advice back on; the next probe needs twice the streak.
    fn back_off(&mut self) -> State {
        self.needed = self.needed.saturating_mul(2).min(MAX_STREAK);
        State::Advising { streak: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_probe_turns_advice_off_a_waiting_one_backs_off() {
        let mut gate = AdviceGate::new();
        let mut run = 0u64;
        let mut next = |gate: &mut AdviceGate, cached: bool| {
            run += 1;
            let advised = gate.advise(run);
            gate.read_started(run, cached);
            advised
        };
        // Warm: a streak, one unadvised probe that finds its pages cached,
        // then no advice.
        let advised: Vec<bool> = (0..12).map(|_| next(&mut gate, true)).collect();
        assert_eq!(advised.iter().filter(|a| !**a).count(), 4);
        assert!(advised[..8].iter().all(|a| *a) && !advised[8]);
        // A read that waits: advice on, and the next probe comes after a
        // streak of 16.
        assert!(!next(&mut gate, false));
        let advised: Vec<bool> = (0..16).map(|_| next(&mut gate, true)).collect();
        assert!(advised.iter().all(|a| *a));
        // That probe has to wait (cold): advice stays on, streak now 32.
        assert!(!next(&mut gate, false));
        let advised: Vec<bool> = (0..32).map(|_| next(&mut gate, true)).collect();
        assert!(advised.iter().all(|a| *a));
        assert!(!next(&mut gate, true));
        assert_eq!(gate.state, State::Off);
    }
}
