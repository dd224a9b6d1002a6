//! End to end on a real broker (Tansu), crash safety: the daemon
//! binary is SIGKILLed at random points while it works through a known
//! stream, restarted on the same store each time, and finally left to
//! finish. Its published incident events must then tell exactly what one
//! uninterrupted `correlator replay` of the same stream computes:
//!
//! (a) the same incident ids, and the last event of each carries the
//!     replay's final line for it (modulo `version`);
//! (b) no event id with two different payloads (copies are allowed: the
//!     publisher is at-least-once);
//! (c) versions of each incident contiguous from 1;
//! (d) the DLQ holds exactly the poison records, each at least once.
//!
//! The stream is produced before the daemon starts, with event times far in
//! the past: the daemon processes it by record time, and once caught up its
//! wall-clock tick runs every timer out, like the replay's final flush.
//! `kafka.assignment = "manual"`: on Tansu a SIGKILLed group member keeps
//! its partitions forever (../shared/TANSU.md).
//!
//! On failure the test directory is kept (config, replay input and output,
//! daemon log, store, `events.jsonl`) and its path printed.
//! `CORRELATOR_E2E_ONE_PARTITION=1` produces the whole stream to partition 0
//! (a diagnostic that takes the daemon's interleaving of partitions out of
//! the comparison).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::brokers::{produce_all_blocking, wait_until};
use crate::daemon_e2e::{
    assert_no_violations, check_against_replay, dlq_and_store_violations, event_time_diagnostic,
    group_events, read_outputs, tansu_panic, write_artifacts, DaemonProc, Rng, Scenario,
};

const SEED: u64 = 0x00C0_FFEE_2026;
const RECORDS: usize = 4000;
const KILLS: usize = 6;
const BATCH_MAX: usize = 50;

#[test]
fn crash_tansu_sigkill_at_random_points_loses_and_duplicates_nothing() {
    let t_test = Instant::now();
    let Scenario {
        broker,
        bootstrap,
        dir,
        recs,
        poison,
        one,
        msgs,
        config,
        store,
        replay,
    } = Scenario::new("crash-tansu", SEED, RECORDS, BATCH_MAX, "250ms");
    let t = Instant::now();
    let delivered = produce_all_blocking(&bootstrap, "alerts", &msgs);
    let t_produce = t.elapsed();
    let partitions: BTreeSet<i32> = delivered.iter().map(|d| d.0).collect();
    assert_eq!(
        partitions.len(),
        if one { 1 } else { 3 },
        "partitions used: {partitions:?}"
    );

    let mut d = DaemonProc::new(&config, &dir.path().join("daemon.log"));
    let mut rng = Rng::new(SEED ^ 0x5EED);
    let mut kills = Vec::new();
    let mut mid_stream = 0;
    for k in 0..KILLS {
        d.start();
        let spawned = Instant::now();
        // Where to strike: at a random time (startup, consuming, the
        // publisher's first batch, the wall-clock tick), once this run
        // applied a random number of records, or just after the publisher
        // got its first acknowledgements (before it deletes them). The
        // first kill always lands mid-stream.
        let mode = if k == 0 { 1 } else { rng.range(0, 3) };
        let how = match mode {
            0 => {
                let ms = rng.range(50, 800) as u64;
                std::thread::sleep(Duration::from_millis(ms).saturating_sub(spawned.elapsed()));
                format!("after {ms} ms")
            }
            1 => {
                let target = rng.range(1, 600) as u64;
                let reached = wait_until(Duration::from_secs(3), || {
                    d.readyz()
                        .is_some_and(|r| r.u64("records_consumed") >= target)
                });
                format!("once records_consumed >= {target} (reached: {reached})")
            }
            _ => {
                let reached = wait_until(Duration::from_secs(3), || {
                    d.readyz().is_some_and(|r| r.u64("events_published") > 0)
                });
                format!("once events_published > 0 (reached: {reached})")
            }
        };
        let seen = d.readyz();
        d.kill();
        if seen
            .as_ref()
            .is_some_and(|r| r.u64("records_consumed") > 0 && !r.bool("caught_up"))
        {
            mid_stream += 1;
        }
        kills.push(format!(
            "SIGKILL {how}, {:?} after start; last readyz: {}",
            spawned.elapsed(),
            seen.map_or("none".to_string(), |r| r.body.to_string())
        ));
    }

    assert!(
        mid_stream > 0,
        "no SIGKILL landed mid-stream:\n  {}",
        kills.join("\n  ")
    );

    // A last clean run: caught up with nothing left in the outbox for 2 s,
    // then SIGTERM, which must end it with status 0.
    d.start();
    let t_final = Instant::now();
    let (done, last) = d.settle(Duration::from_secs(40), Duration::from_secs(2));
    assert!(
        done,
        "the last run never settled (caught up, outbox empty) within 40 s; last readyz: {last:?}{}",
        tansu_panic(&broker.log())
    );
    let t_settle = t_final.elapsed();
    let (status, t_stop) = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM ended the daemon with {status}");

    let t = Instant::now();
    let (incidents, dlq) = read_outputs(&bootstrap, poison);
    let t_read = t.elapsed();
    let events = group_events(&incidents.records);
    let mut violations = check_against_replay(&events, &replay);
    violations.extend(dlq_and_store_violations(
        &dlq.records,
        &recs,
        &delivered,
        &store,
    ));
    if let Some(diag) = event_time_diagnostic(&events, &recs) {
        violations.insert(0, diag);
    }

    eprintln!(
        "crash_tansu: {} records ({} poison) over partitions {partitions:?}, produced in {t_produce:?}; \
         replay: {}; {} SIGKILLs ({mid_stream} mid-stream):\n  {}\nlast run settled in {t_settle:?}, SIGTERM exit in {t_stop:?}; \
         incidents topic: {} records ({} copies), {} incidents, {} problems; DLQ: {} records; \
         read back in {t_read:?}; total {:?}",
        recs.len(),
        poison,
        replay.summary,
        kills.len(),
        kills.join("\n  "),
        events.records,
        events.copies,
        events.incidents.len(),
        events.problems.len(),
        dlq.records.len(),
        t_test.elapsed()
    );
    if !violations.is_empty() {
        write_artifacts(dir.path(), &incidents.records, &dlq.records);
    }
    assert_no_violations("daemon events vs. an uninterrupted replay", &violations);
}
