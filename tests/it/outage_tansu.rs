//! End to end on a real broker (Tansu), broker outage (issue 4): the daemon
//! binary runs, the broker goes away between the two halves of a known
//! stream and comes back. The daemon must stay alive, report not ready
//! (503) while the broker is gone, resume exactly where it stopped, and end
//! with what one uninterrupted `correlator replay` of the whole stream
//! computes (same checks as `crash_tansu`: final incident data, one payload
//! per event id, contiguous versions, DLQ, store offsets and outbox).
//!
//! Event times are far in the past, and the daemon's clock is event time
//! until it is caught up; once caught up it ticks to the wall clock (by
//! design: consumer.rs). A wall-clock tick between the halves would move
//! its clock past the second half, which it would then handle at "now"
//! instead of at the records' times, and no replay could agree. So the test
//! makes sure no tick can fall between the halves: it takes the broker down
//! before the daemon's first lag check (`tick_interval` = 4 s) and freezes
//! the daemon (SIGSTOP) while the broker is stopped and while the broker
//! restarts and the second half is produced; when it thaws, the second half
//! is there and it resumes with lag. Frozen or not, the daemon goes through
//! the outage itself: its connections die, it notices (503) and reconnects.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::brokers::tansu::Tansu;
use crate::brokers::{consume_blocking, produce_all_blocking, wait_until, Attach, Msg};
use crate::daemon_e2e::{
    assert_no_violations, check_against_replay, check_dlq, check_replay_rejections, check_store,
    config_toml, event_time_diagnostic, generate, group_events, one_partition, run_replay,
    write_artifacts, DaemonProc,
};

const SEED: u64 = 0x0B0B_0047_A6E5;
const RECORDS: usize = 3000;
const BATCH_MAX: usize = 50;

#[test]
fn outage_tansu_broker_down_mid_stream_then_resumes_where_it_stopped() {
    let t_test = Instant::now();
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic("alerts", 3);
    broker.create_topic("incidents", 3);
    broker.create_topic("alerts-dlq", 1);

    let mut dir = tempfile::Builder::new()
        .prefix("outage-tansu-")
        .tempdir()
        .expect("tempdir");
    let recs = generate(SEED, RECORDS);
    let poison = recs.iter().filter(|r| r.poison).count();
    let one = one_partition();
    let msgs: Vec<Msg> = recs
        .iter()
        .map(|r| if one { r.msg().partition(0) } else { r.msg() })
        .collect();
    let (first, second) = msgs.split_at(msgs.len() / 2);

    let config = dir.path().join("correlator.toml");
    let store = dir.path().join("store").join("correlator.redb");
    let group = crate::brokers::unique_name("correlator-outage");
    std::fs::write(
        &config,
        config_toml(&bootstrap, &group, &store, BATCH_MAX, "4s"),
    )
    .expect("write config");
    let replay = run_replay(dir.path(), &config, &recs);
    check_replay_rejections(&replay, &recs);

    // Daemon up, first half in, some incident events out.
    let mut d = DaemonProc::new(&config, &dir.path().join("daemon.log"));
    d.start();
    let t_run = Instant::now();
    let mut delivered = produce_all_blocking(&bootstrap, "alerts", first);
    let mut last = None;
    let published = wait_until(Duration::from_secs(10), || {
        last = d.readyz();
        last.as_ref().is_some_and(|r| r.u64("events_published") > 0)
    });
    assert!(
        published,
        "no incident event published within 10 s of the first half; last readyz: {last:?}"
    );
    let t_first_events = t_run.elapsed();
    let before = d.readyz().expect("readyz answers");
    assert!(
        before.status == 200 && !before.bool("caught_up"),
        "precondition: the daemon must not have caught up (and ticked the wall clock) before the \
         outage; it did {t_first_events:?} after start (tick_interval too short for this machine?): {before:?}"
    );

    // Broker down while the daemon is frozen, so that no lag check can
    // succeed in between; then the daemon lives through the outage.
    d.freeze();
    let t = Instant::now();
    let t_stop = broker.stop();
    d.thaw();
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.is_alive(), "the daemon died when the broker went away");
    let mut seen_down = None;
    let noticed = wait_until(Duration::from_secs(25), || {
        let r = d.readyz();
        let down = r.as_ref().is_some_and(|r| r.status == 503);
        if down {
            seen_down = r;
        }
        down
    });
    let t_notice = t.elapsed();
    assert!(d.is_alive(), "the daemon died during the broker outage");
    assert!(
        noticed,
        "/readyz never reported not ready (503) within 27 s of the broker stopping; last: {:?}",
        d.readyz()
    );
    let down = seen_down.expect("503 seen");
    assert!(
        !down.bool("broker") && !down.bool("ready"),
        "503 body names the broker: {down:?}"
    );

    // Broker back, second half in, then the daemon resumes.
    d.freeze();
    let t_restart = broker.restart();
    delivered.extend(produce_all_blocking(&bootstrap, "alerts", second));
    d.thaw();
    let t = Instant::now();
    let partitions: BTreeSet<i32> = delivered.iter().map(|d| d.0).collect();
    assert_eq!(
        partitions.len(),
        if one { 1 } else { 3 },
        "partitions used: {partitions:?}"
    );

    let mut stable_since: Option<Instant> = None;
    let mut last = None;
    let done = wait_until(Duration::from_secs(40), || {
        let r = d.readyz();
        let quiet = r.as_ref().is_some_and(|r| {
            r.status == 200 && r.bool("caught_up") && r.u64("outbox_backlog") == 0
        });
        last = r;
        if !quiet {
            stable_since = None;
            return false;
        }
        stable_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(2)
    });
    assert!(done, "after the outage the daemon never settled (ready, caught up, outbox empty) within 40 s; last readyz: {last:?}");
    let t_recover = t.elapsed();
    assert!(d.is_alive(), "daemon alive after the outage");
    let (status, t_term) = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM ended the daemon with {status}");

    let incidents = consume_blocking(
        &bootstrap,
        "incidents",
        1,
        Duration::from_secs(30),
        Attach::Assign,
    );
    let dlq = consume_blocking(
        &bootstrap,
        "alerts-dlq",
        poison,
        Duration::from_secs(30),
        Attach::Assign,
    );
    let events = group_events(&incidents.records);
    let mut violations = check_against_replay(&events, &replay);
    violations.extend(
        check_dlq(&dlq.records, &recs, &delivered)
            .into_iter()
            .map(|v| format!("(d) {v}")),
    );
    violations.extend(
        check_store(&store, &delivered)
            .into_iter()
            .map(|v| format!("(store) {v}")),
    );
    if let Some(diag) = event_time_diagnostic(&events, &recs) {
        violations.insert(0, diag);
    }

    eprintln!(
        "outage_tansu: {} records ({} poison) over partitions {partitions:?}; replay: {}; first events \
         {t_first_events:?} after start; before the outage: {}; broker stop took {t_stop:?}; 503 after \
         {t_notice:?}: {}; broker restart {t_restart:?}; settled {t_recover:?} after the thaw; SIGTERM \
         exit in {t_term:?}; incidents topic: {} records ({} copies), {} incidents, {} problems; DLQ: {} \
         records; total {:?}",
        recs.len(),
        poison,
        replay.summary,
        before.body,
        down.body,
        events.records,
        events.copies,
        events.incidents.len(),
        events.problems.len(),
        dlq.records.len(),
        t_test.elapsed()
    );
    if !violations.is_empty() {
        write_artifacts(dir.path(), &incidents.records, &dlq.records);
        dir.disable_cleanup(true);
        eprintln!(
            "outage_tansu: artifacts kept in {} (replay-out/, events.jsonl, daemon.log)",
            dir.path().display()
        );
    }
    assert_no_violations("daemon events vs. an uninterrupted replay", &violations);
}
