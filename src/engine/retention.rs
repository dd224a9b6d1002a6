//! Retention: what the engine forgets, decided on its own clock.
//!
//! A closed or merged incident never changes again; `closed_incidents`
//! after it ended it is deleted, members and all. A resolved alert that no
//! incident or group holds any more is deleted `closed_incidents` after it
//! resolved, and a resolved, rejected or merged problem `resolved_problems`
//! after its last change. The engine lists what it deleted in its changes
//! ([`crate::engine::persist::Changes`]) and the store deletes the rows in
//! the same batch transaction.
//!
//! Everything is decided on the engine clock, at fixed times: an incident
//! expires at its end plus the retention, and alerts and problems are swept
//! at each whole hour of the clock, with that hour as the cutoff. So what is
//! deleted does not depend on when the engine is called (a daemon ticking
//! every second and a replay agree) nor on restarts. Deletion never changes
//! what happens to live alerts and incidents: a deleted incident is final,
//! and a deleted alert, if it fires again, starts afresh as it would have
//! anyway (its last episode ended long before).
//!
//! What stays: a problem keeps the ids of its incidents (and their count)
//! after they are deleted; the API answers for such an id that it was
//! deleted by retention.

use std::time::Duration;

use crate::alert::{AlertStatus, Timestamp};
use crate::engine::state::IncidentId;
use crate::engine::Engine;

/// How long the engine keeps what no longer changes (config `[retention]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Closed and merged incidents (from their end), and resolved alerts no
    /// incident or group holds (from their resolution).
    pub closed_incidents: Duration,
    /// Resolved, rejected and merged problems (from their last change).
    pub resolved_problems: Duration,
    /// Lines fed to the template miner between two snapshots of its state.
    pub miner_snapshot_lines: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            closed_incidents: Duration::from_secs(30 * 86_400),
            resolved_problems: Duration::from_secs(180 * 86_400),
            miner_snapshot_lines: 10_000,
        }
    }
}

impl Retention {
    pub fn from_config(r: &crate::config::RetentionConfig) -> Retention {
        Retention {
            closed_incidents: r.closed_incidents.0,
            resolved_problems: r.resolved_problems.0,
            miner_snapshot_lines: r.miner_snapshot_lines,
        }
    }
}

/// Alerts and problems are swept at each whole hour of the engine clock.
pub const SWEEP_EVERY_MS: i64 = 3_600_000;

/// The first sweep time after `t`.
fn next_sweep_after(t: Timestamp) -> Timestamp {
    Timestamp((t.0.div_euclid(SWEEP_EVERY_MS) + 1) * SWEEP_EVERY_MS)
}

impl Engine {
    /// An incident became final (closed or merged) at `at`: it is deleted
    /// `closed_incidents` later.
    pub(crate) fn retire(&mut self, id: IncidentId, at: Timestamp) {
        if let Some(inc) = self.incidents.get_mut_untracked(&id) {
            inc.final_at = Some(at);
        }
        self.retiring.push((at, id));
    }

    /// Deletes what retention expired by `now` (after the timers due by
    /// `now` fired).
    pub(crate) fn expire(&mut self, now: Timestamp) {
        let keep = self.cfg.retention.closed_incidents;
        // Those that ended since the last pass wait for the next one.
        let ended = std::mem::take(&mut self.retiring);
        while let Some(&(at, id)) = self.retired.first() {
            if at.plus(keep) > now {
                break;
            }
            self.retired.pop_first();
            // Replay holds final incidents in memory; the daemon evicted
            // them once stored, and deletes their rows.
            self.incidents.evict(&id);
            if self.incidents.is_tracking() {
                self.expired.push(id);
            }
        }
        while self.next_sweep <= now {
            let at = self.next_sweep;
            self.sweep(at);
            self.next_sweep = next_sweep_after(at);
            if self.next_sweep <= now {
                // A jump of the clock over many hours: one sweep at the last
                // whole hour covers all of them.
                self.next_sweep = Timestamp(now.0.div_euclid(SWEEP_EVERY_MS) * SWEEP_EVERY_MS);
            }
        }
        self.retired.extend(ended);
    }

    /// Deletes the alerts and problems expired at `at`: O(alerts + problems),
    /// once an hour of engine time.
    fn sweep(&mut self, at: Timestamp) {
        let cutoff = at.minus(self.cfg.retention.closed_incidents);
        let expired: Vec<_> = self
            .alerts
            .iter()
            .filter(|(_, a)| {
                a.incident.is_none()
                    && !a.pending
                    && a.status == AlertStatus::Resolved
                    && a.resolved_at.unwrap_or(a.last_seen) <= cutoff
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in expired {
            self.alerts.remove(&fp);
        }
        let cutoff = at.minus(self.cfg.retention.resolved_problems);
        self.problems.expire(cutoff);
    }

    /// After a restore at clock `clock`: the next sweep is the first whole
    /// hour after it (the ones before it ran before the engine stopped).
    pub(crate) fn schedule_sweep_after(&mut self, clock: Timestamp) {
        self.next_sweep = next_sweep_after(clock);
    }

    /// Final incidents not yet deleted by retention, with when they ended.
    pub fn retired_count(&self) -> usize {
        self.retired.len() + self.retiring.len()
    }
}
