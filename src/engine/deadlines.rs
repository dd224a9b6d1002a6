//! Timers on the engine clock: everything that happens because time passed
//! (an alert not re-sent, a pending alert aging out, a resolved incident
//! closing, flapping settling) is a deadline here, processed in time order
//! by `tick`. Each fires at its own time, not the caller's, so a daemon that
//! ticks every second and a replay that ticks per record agree.

use std::collections::BTreeSet;

use crate::alert::{Fingerprint, Timestamp};
use crate::engine::state::IncidentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deadline {
    /// A firing alert resolves unless re-sent. Scheduled lazily: when it fires
    /// and the alert was re-sent meanwhile, it is moved to the new expiry.
    AlertExpiry(Fingerprint),
    /// Re-evaluate whether a flapping alert has settled.
    FlapCheck(Fingerprint),
    /// A resolved alert held below its group's threshold is dropped as noise.
    PendingExpiry(Fingerprint),
    /// A resolved incident closes after its reopen window.
    IncidentClose(IncidentId),
}

#[derive(Debug, Default, Clone)]
pub struct Deadlines {
    set: BTreeSet<(Timestamp, Deadline)>,
}

impl Deadlines {
    pub fn schedule(&mut self, at: Timestamp, d: Deadline) {
        self.set.insert((at, d));
    }

    pub fn cancel(&mut self, at: Timestamp, d: Deadline) {
        self.set.remove(&(at, d));
    }

    /// Removes and returns the earliest deadline due at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, Deadline)> {
        let first = *self.set.first()?;
        if first.0 <= now {
            self.set.pop_first()
        } else {
            None
        }
    }

    /// When the next deadline is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.set.first().map(|(t, _)| *t)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn clear(&mut self) {
        self.set.clear();
    }
}
