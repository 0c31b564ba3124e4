//! Who may try a PIN now. A PIN is checked by deriving the key-file's key (deliberately slow and
//! memory-hungry), so attempts are *reserved before* deriving and settled after it:
//!
//! - one attempt in flight per person, so parallel guesses cannot all be evaluated before the
//!   first failure is counted;
//! - at most [`SIGN_IN_DERIVATIONS_MAX`] derivations at once on the node, so a burst of sign-ins
//!   cannot take its memory;
//! - failures count per client address *and* person: [`PIN_FAILURES_MAX`] wrong PINs lock that
//!   client out of that person for [`PIN_LOCK_MS`], so someone guessing from one machine cannot
//!   lock every expert out at their own machines on exam day.
//!
//! Plain data and [`Instant`]s in, decisions out: the sign-in handler holds it behind a mutex.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use giasync_shared::codes::PersonId;

/// Wrong PINs in a row, from one client for one person, before that pair is locked.
pub const PIN_FAILURES_MAX: u32 = 5;
/// How long a locked pair stays locked.
pub const PIN_LOCK_MS: u64 = 60_000;
/// Key derivations running at once on the node (each holds the key file's memory cost).
pub const SIGN_IN_DERIVATIONS_MAX: usize = 2;
/// Client–person pairs remembered; beyond it, pairs that are not locked are forgotten first.
pub const SIGN_IN_PAIRS_MAX: usize = 10_000;

/// Why an attempt is not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many wrong PINs from this client for this person: try again after this long.
    Locked(Duration),
    /// This person's previous attempt is still being checked.
    InFlight,
    /// The node is checking as many PINs as it may at once.
    Busy,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// The attempts state of one node's sign-in page.
#[derive(Debug, Default)]
pub struct PinGuard {
    failures: HashMap<(IpAddr, PersonId), Failures>,
    in_flight: HashSet<PersonId>,
    deriving: usize,
}

impl PinGuard {
    /// Reserves an attempt of `client` for `person` at `now`, or says why not.
    pub fn begin(&mut self, client: IpAddr, person: PersonId, now: Instant) -> Result<(), Refusal> {
        if let Some(until) = self
            .failures
            .get(&(client, person))
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now)
        {
            return Err(Refusal::Locked(until - now));
        }
        if self.in_flight.contains(&person) {
            return Err(Refusal::InFlight);
        }
        if self.deriving >= SIGN_IN_DERIVATIONS_MAX {
            return Err(Refusal::Busy);
        }
        self.in_flight.insert(person);
        self.deriving += 1;
        Ok(())
    }

    /// Settles a reserved attempt: a right PIN clears the pair's failures, a wrong one counts.
    pub fn finish(&mut self, client: IpAddr, person: PersonId, right: bool, now: Instant) {
        self.in_flight.remove(&person);
        self.deriving = self.deriving.saturating_sub(1);
        if right {
            self.failures.remove(&(client, person));
            return;
        }
        if self.failures.len() >= SIGN_IN_PAIRS_MAX {
            self.failures
                .retain(|_, f| f.locked_until.is_some_and(|until| until > now));
        }
        let f = self.failures.entry((client, person)).or_default();
        f.count += 1;
        if f.count >= PIN_FAILURES_MAX {
            f.count = 0;
            f.locked_until = Some(now + Duration::from_millis(PIN_LOCK_MS));
        }
    }
}

/// A reserved attempt; settled with [`Reservation::finish`] (if it is dropped unsettled, by a
/// panic, it is released as a wrong PIN).
#[derive(Debug)]
pub struct Reservation {
    guard: Arc<Mutex<PinGuard>>,
    client: IpAddr,
    person: PersonId,
    settled: bool,
}

impl Reservation {
    /// Reserves an attempt in `guard`.
    pub fn take(
        guard: &Arc<Mutex<PinGuard>>,
        client: IpAddr,
        person: PersonId,
    ) -> Result<Self, Refusal> {
        guard.lock().unwrap_or_else(PoisonError::into_inner).begin(
            client,
            person,
            Instant::now(),
        )?;
        Ok(Reservation {
            guard: guard.clone(),
            client,
            person,
            settled: false,
        })
    }

    /// Settles the attempt.
    pub fn finish(mut self, right: bool) {
        self.settle(right);
    }

    fn settle(&mut self, right: bool) {
        if !self.settled {
            self.settled = true;
            self.guard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .finish(self.client, self.person, right, Instant::now());
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle(false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;

    fn id(text: &str) -> PersonId {
        PersonId::new(text).unwrap()
    }

    #[test]
    fn a_second_attempt_for_a_person_waits_for_the_first() {
        let mut g = PinGuard::default();
        let (client, t0) = ("10.0.0.9".parse().unwrap(), Instant::now());
        g.begin(client, id("exp-1"), t0).unwrap();
        assert_eq!(g.begin(client, id("exp-1"), t0), Err(Refusal::InFlight));
        // Another person is another matter, until the node's derivations are all busy.
        g.begin(client, id("exp-2"), t0).unwrap();
        assert_eq!(g.begin(client, id("exp-3"), t0), Err(Refusal::Busy));
        g.finish(client, id("exp-1"), false, t0);
        g.begin(client, id("exp-1"), t0).unwrap();
    }

    #[test]
    fn five_wrong_pins_lock_that_client_out_of_that_person_only() {
        let mut g = PinGuard::default();
        let attacker: IpAddr = "10.0.0.66".parse().unwrap();
        let expert: IpAddr = "10.0.0.7".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            g.begin(attacker, id("exp-1"), t0).unwrap();
            g.finish(attacker, id("exp-1"), false, t0);
        }
        assert!(matches!(
            g.begin(attacker, id("exp-1"), t0),
            Err(Refusal::Locked(_))
        ));
        // The expert at their own machine still signs in.
        g.begin(expert, id("exp-1"), t0).unwrap();
        g.finish(expert, id("exp-1"), true, t0);
        // A minute later the attacker may try again.
        let later = t0 + Duration::from_millis(PIN_LOCK_MS);
        g.begin(attacker, id("exp-1"), later).unwrap();
    }
}
