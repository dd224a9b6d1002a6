//! The timestamp merge of the assigned partitions, without Kafka.
//!
//! One engine clock serves every assigned partition, so records must reach
//! the engine oldest first across partitions: a partition reading its backlog
//! must not run the clock ahead of the others. [`Merge`] buffers fetched
//! records per partition and releases the oldest head record only when no
//! older record can still come: every assigned partition has a record
//! buffered, or is at its end (librdkafka's partition EOF, or the fetch
//! thread's earlier [`crate::kafka::fetch::Fetch::End`]), or has already
//! delivered a record newer than the head (a *watermark*: timestamps within
//! a partition do not go back, which the head-of-partition merge assumes
//! anyway). The watermark matters for live traffic: a partition whose latest
//! record was just taken need not be waited for until the broker reports its
//! end, as long as the records released are older than that latest record.
//!
//! Every operation is O(log partitions) (a heap of head records, a count of
//! starved partitions), so large batches over hundreds of partitions cost
//! little; the pipeline decides when to fetch more and when to force a
//! release past a silent partition.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

/// A buffered record's event time (ms); records without one sort last.
pub trait Stamped {
    fn stamp(&self) -> i64;
    /// Bytes it holds (bounds the buffer's memory).
    fn size(&self) -> usize {
        0
    }
}

/// (topic, partition)
pub type PartitionKey = (String, i32);

struct Part<M> {
    topic: Arc<str>,
    partition: i32,
    buf: VecDeque<M>,
    eof: bool,
    assigned: bool,
    /// Stamp of the latest record fetched from it: nothing older comes.
    last: Option<i64>,
}

impl<M> Part<M> {
    /// Assigned, nothing buffered, and more may come: the merge waits for it.
    fn starved(&self) -> bool {
        self.assigned && self.buf.is_empty() && !self.eof
    }
}

/// A partition's head record in the heap: (stamp, topic, partition, slot);
/// the tuple order is the release order.
type Head = Reverse<(i64, Arc<str>, i32, usize)>;

/// Per-partition buffers merged by timestamp (ties: topic, then partition).
pub struct Merge<M> {
    parts: Vec<Part<M>>,
    index: HashMap<Arc<str>, HashMap<i32, usize>>,
    /// One entry per partition with a non-empty buffer: its head's stamp.
    heap: BinaryHeap<Head>,
    buffered: usize,
    /// Bytes of the buffered records.
    bytes: usize,
    starved: usize,
    /// The oldest watermark among starved partitions (None: one of them
    /// has delivered nothing yet); recomputed when `floor_stale`.
    floor: Option<i64>,
    floor_stale: bool,
    /// Bumped by every [`Merge::set_assigned`]: records popped before a
    /// change may belong to a partition given up since.
    generation: u64,
}

impl<M> Default for Merge<M> {
    fn default() -> Self {
        Merge {
            parts: Vec::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            buffered: 0,
            bytes: 0,
            starved: 0,
            floor: None,
            floor_stale: true,
            generation: 0,
        }
    }
}

impl<M: Stamped> Merge<M> {
    fn slot(&mut self, topic: &str, partition: i32) -> usize {
        if let Some(i) = self.index.get(topic).and_then(|p| p.get(&partition)) {
            return *i;
        }
        let topic: Arc<str> = Arc::from(topic);
        let i = self.parts.len();
        self.parts.push(Part {
            topic: topic.clone(),
            partition,
            buf: VecDeque::new(),
            eof: false,
            assigned: false,
            last: None,
        });
        self.index.entry(topic).or_default().insert(partition, i);
        i
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(topic)?.get(&partition).copied()
    }

    /// Buffers a fetched record; its partition is no longer at its end.
    pub fn push(&mut self, topic: &str, partition: i32, m: M) {
        let i = self.slot(topic, partition);
        let stamp = m.stamp();
        self.bytes += m.size();
        let p = &mut self.parts[i];
        if p.starved() {
            self.starved -= 1;
            self.floor_stale = true;
        }
        p.eof = false;
        p.last = Some(p.last.map_or(stamp, |l| l.max(stamp)));
        if p.buf.is_empty() {
            self.heap
                .push(Reverse((m.stamp(), p.topic.clone(), p.partition, i)));
        }
        p.buf.push_back(m);
        self.buffered += 1;
    }

    /// The partition is at its end until its next record.
    pub fn mark_eof(&mut self, topic: &str, partition: i32) {
        let i = self.slot(topic, partition);
        let p = &mut self.parts[i];
        if p.starved() {
            self.starved -= 1;
            self.floor_stale = true;
        }
        p.eof = true;
    }

    /// What the broker's watermarks say, as (topic, partition, `lag` of its
    /// records not yet applied). A partition with some is not at its end
    /// (until the client says so again, after reading them); one with none
    /// and nothing of it buffered is, whatever the client said last: the
    /// client tells a partition's end only once after new records, so a
    /// mark lost to a consumer error or an earlier lag would otherwise stay
    /// lost as long as the partition gets no new record.
    pub fn broker_lags(&mut self, lags: &[(String, i32, i64)]) {
        let mut changed = false;
        for (topic, partition, lag) in lags {
            let i = self.slot(topic, *partition);
            let p = &mut self.parts[i];
            let eof = if *lag > 0 {
                false
            } else {
                p.eof || p.buf.is_empty()
            };
            changed |= p.eof != eof;
            p.eof = eof;
        }
        if changed {
            self.recount();
        }
    }

    /// Forgets every end-of-partition mark (e.g. after a consumer error).
    pub fn clear_eof(&mut self) {
        for p in &mut self.parts {
            p.eof = false;
        }
        self.recount();
    }

    /// Sets the assigned partitions. Records buffered for a partition no
    /// longer assigned are dropped: its new owner consumes them.
    pub fn set_assigned(&mut self, assigned: &[PartitionKey]) {
        self.generation += 1;
        for p in &mut self.parts {
            p.assigned = false;
        }
        for (t, part) in assigned {
            let i = self.slot(t, *part);
            self.parts[i].assigned = true;
        }
        let mut dropped = 0;
        for p in self.parts.iter_mut().filter(|p| !p.assigned) {
            dropped += p.buf.len();
            self.bytes -= p.buf.iter().map(Stamped::size).sum::<usize>();
            p.buf.clear();
        }
        if dropped > 0 {
            self.buffered -= dropped;
            self.rebuild_heap();
        }
        self.recount();
    }

    /// Whether `assigned` leaves out a partition assigned now.
    pub fn revokes(&self, assigned: &[PartitionKey]) -> bool {
        self.parts.iter().filter(|p| p.assigned).any(|p| {
            !assigned
                .iter()
                .any(|(t, n)| **t == *p.topic && *n == p.partition)
        })
    }

    /// Changes whenever the assignment is set (see [`Merge::set_assigned`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        self.find(topic, partition)
            .is_some_and(|i| self.parts[i].assigned)
    }

    fn recount(&mut self) {
        self.starved = self.parts.iter().filter(|p| p.starved()).count();
        self.floor_stale = true;
    }

    fn rebuild_heap(&mut self) {
        self.heap = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let head = p.buf.front()?;
                Some(Reverse((head.stamp(), p.topic.clone(), p.partition, i)))
            })
            .collect();
    }

    /// Records buffered, in all partitions.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Bytes (payloads and keys) buffered, in all partitions.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// No assigned partition can still deliver a record older than the
    /// oldest buffered one (false with nothing buffered but a partition
    /// starved).
    pub fn ready(&mut self) -> bool {
        if self.starved == 0 {
            return true;
        }
        if self.floor_stale {
            self.floor = self
                .parts
                .iter()
                .filter(|p| p.starved())
                .map(|p| p.last)
                .min()
                .flatten();
            self.floor_stale = false;
        }
        match (self.floor, self.heap.peek()) {
            (Some(floor), Some(Reverse((head, ..)))) => *head < floor,
            _ => false,
        }
    }

    /// Every assigned partition is at its end with nothing buffered.
    pub fn caught_up(&self) -> bool {
        self.buffered == 0
            && self.parts.iter().filter(|p| p.assigned).count() > 0
            && self.parts.iter().all(|p| !p.assigned || p.eof)
    }

    /// Takes the oldest buffered record, ready or not (the caller decides).
    pub fn pop(&mut self) -> Option<M> {
        let Reverse((_, _, _, i)) = self.heap.pop()?;
        let p = &mut self.parts[i];
        let m = p.buf.pop_front()?;
        self.buffered -= 1;
        self.bytes -= m.size();
        match p.buf.front() {
            Some(next) => self
                .heap
                .push(Reverse((next.stamp(), p.topic.clone(), p.partition, i))),
            None if p.starved() => {
                self.starved += 1;
                // A fresh floor means partitions were starved already (a
                // change to none marks it stale): the new one joins them.
                if !self.floor_stale {
                    self.floor = self.floor.zip(p.last).map(|(f, l)| f.min(l));
                }
            }
            None => {}
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct R(i64, &'static str);
    impl Stamped for R {
        fn stamp(&self) -> i64 {
            self.0
        }
    }

    fn keys(v: &[(&str, i32)]) -> Vec<PartitionKey> {
        v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn drain_ready(m: &mut Merge<R>) -> Vec<&'static str> {
        let mut out = Vec::new();
        while m.ready() {
            match m.pop() {
                Some(r) => out.push(r.1),
                None => break,
            }
        }
        out
    }

    #[test]
    fn releases_oldest_first_only_while_every_partition_has_a_record() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.push("a", 0, R(10, "a0-10"));
        m.push("a", 0, R(30, "a0-30"));
        assert!(!m.ready(), "partition 1 has said nothing yet");
        m.push("a", 1, R(20, "a1-20"));
        // a0-10, a1-20; then partition 1 is empty and may still bring 25
        // (its watermark is 20, older than the head 30).
        assert_eq!(drain_ready(&mut m), vec!["a0-10", "a1-20"]);
        assert!(!m.ready());
        m.mark_eof("a", 1);
        assert_eq!(drain_ready(&mut m), vec!["a0-30"]);
        m.mark_eof("a", 0);
        assert!(m.caught_up());
        m.push("a", 1, R(40, "a1-40"));
        assert!(!m.caught_up());
        assert_eq!(m.pop(), Some(R(40, "a1-40")));
    }

    #[test]
    fn ties_go_by_topic_then_partition_whatever_the_arrival_order() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("b", 0), ("a", 1), ("a", 0)]));
        m.push("b", 0, R(5, "b0"));
        m.push("a", 1, R(5, "a1"));
        m.push("a", 0, R(5, "a0"));
        for k in [("b", 0), ("a", 1), ("a", 0)] {
            m.mark_eof(k.0, k.1);
        }
        assert_eq!(drain_ready(&mut m), vec!["a0", "a1", "b0"]);
    }

    #[test]
    fn revoked_partitions_drop_their_records_and_stop_blocking_the_merge() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.push("a", 0, R(1, "a0"));
        m.push("a", 1, R(2, "a1"));
        m.push("a", 1, R(3, "a1b"));
        m.set_assigned(&keys(&[("a", 0)]));
        assert_eq!(m.buffered(), 1);
        assert!(!m.is_assigned("a", 1));
        assert_eq!(drain_ready(&mut m), vec!["a0"]);
        assert_eq!(m.pop(), None);
    }

    #[test]
    fn buffered_bytes_follow_pushes_pops_and_revocations() {
        struct B(i64, usize);
        impl Stamped for B {
            fn stamp(&self) -> i64 {
                self.0
            }
            fn size(&self) -> usize {
                self.1
            }
        }
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.push("a", 0, B(1, 100));
        m.push("a", 1, B(2, 30));
        m.push("a", 1, B(3, 7));
        assert_eq!(m.buffered_bytes(), 137);
        assert_eq!(m.pop().map(|b| b.1), Some(100));
        assert_eq!(m.buffered_bytes(), 37);
        m.set_assigned(&keys(&[("a", 0)]));
        assert_eq!(m.buffered_bytes(), 0);
    }

    #[test]
    fn clearing_eof_makes_silent_partitions_block_again() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.mark_eof("a", 1);
        m.push("a", 0, R(1, "x"));
        assert!(m.ready());
        m.clear_eof();
        assert!(!m.ready());
    }

    fn lag(partition: i32, lag: i64) -> [(String, i32, i64); 1] {
        [("a".to_string(), partition, lag)]
    }

    #[test]
    fn watermarks_take_ends_back_and_restore_them_where_all_was_applied() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.mark_eof("a", 0);
        m.mark_eof("a", 1);
        assert!(m.caught_up());
        // A consumer error forgot both ends; the client will not repeat
        // them for partitions that get no new record.
        m.clear_eof();
        assert!(!m.caught_up());
        // Partition 1 has a record the broker holds and we have not read.
        m.broker_lags(&[("a".to_string(), 0, 0), ("a".to_string(), 1, 3)]);
        assert!(!m.caught_up(), "partition 1 has records to read");
        m.push("a", 0, R(7, "a0"));
        m.push("a", 1, R(5, "a1"));
        // Lag 0 with a record buffered: not at its end while it is.
        m.broker_lags(&lag(0, 0));
        // a1 goes; partition 1, starved at 5, holds back a0 (7)...
        assert_eq!(drain_ready(&mut m), vec!["a1"]);
        // ...until the watermarks say it has nothing more.
        m.broker_lags(&lag(1, 0));
        assert_eq!(drain_ready(&mut m), vec!["a0"]);
        assert!(
            !m.caught_up(),
            "partition 0's end was not set while a record was buffered"
        );
        m.broker_lags(&lag(0, 0));
        assert!(m.caught_up());
    }

    #[test]
    fn a_starved_partition_holds_back_only_records_newer_than_its_latest() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1), ("a", 2)]));
        m.push("a", 0, R(10, "a0-10"));
        m.push("a", 0, R(40, "a0-40"));
        m.push("a", 1, R(35, "a1-35"));
        m.push("a", 2, R(20, "a2-20"));
        // a0-10, a2-20 (partition 2 now starved at watermark 20): a1-35 waits.
        assert_eq!(drain_ready(&mut m), vec!["a0-10", "a2-20"]);
        // Partition 2 brings 50: its watermark passes both heads.
        m.push("a", 2, R(50, "a2-50"));
        // a1-35 goes; partition 1 starves at 35, which holds back a0-40.
        assert_eq!(drain_ready(&mut m), vec!["a1-35"]);
        m.push("a", 1, R(45, "a1-45"));
        // a0-40 goes; partition 0 starves at 40, which holds back a1-45.
        assert_eq!(drain_ready(&mut m), vec!["a0-40"]);
        m.mark_eof("a", 0);
        // Partition 1 starves at 45 after a1-45: a2-50 waits for it.
        assert_eq!(drain_ready(&mut m), vec!["a1-45"]);
        m.mark_eof("a", 1);
        assert_eq!(drain_ready(&mut m), vec!["a2-50"]);
    }

    proptest::proptest! {
        /// With timestamps that do not go back within a partition, the
        /// records come out in (stamp, partition) order, whatever the
        /// arrival interleaving and however early they are released.
        #[test]
        fn releases_in_global_order_under_any_interleaving(
            gaps in proptest::collection::vec((0usize..3, 0i64..5), 1..60),
            pulls in proptest::collection::vec(0usize..4, 1..60),
        ) {
            let mut per: Vec<Vec<i64>> = vec![Vec::new(); 3];
            let mut clock = [0i64; 3];
            for (p, gap) in &gaps {
                clock[*p] += gap;
                per[*p].push(clock[*p]);
            }
            let mut m: Merge<(i64, i32)> = Merge::default();
            m.set_assigned(&keys(&[("a", 0), ("a", 1), ("a", 2)]));
            let mut next = [0usize; 3];
            for (p, v) in per.iter().enumerate() {
                if v.is_empty() {
                    m.mark_eof("a", p as i32);
                }
            }
            let mut out = Vec::new();
            let mut pulls = pulls.into_iter().cycle();
            while (0..3).any(|p| next[p] < per[p].len()) || m.buffered() > 0 {
                let p = pulls.next().unwrap_or(0);
                if p < 3 && next[p] < per[p].len() {
                    m.push("a", p as i32, (per[p][next[p]], p as i32));
                    next[p] += 1;
                    if next[p] == per[p].len() {
                        m.mark_eof("a", p as i32);
                    }
                } else {
                    let before = out.len();
                    while m.ready() {
                        match m.pop() {
                            Some(r) => out.push(r),
                            None => break,
                        }
                    }
                    // Nothing released: feed the first partition with more.
                    if out.len() == before {
                        if let Some(q) = (0..3).find(|q| next[*q] < per[*q].len()) {
                            m.push("a", q as i32, (per[q][next[q]], q as i32));
                            next[q] += 1;
                            if next[q] == per[q].len() {
                                m.mark_eof("a", q as i32);
                            }
                        }
                    }
                }
            }
            let mut want: Vec<(i64, i32)> = per
                .iter()
                .enumerate()
                .flat_map(|(p, v)| v.iter().map(move |t| (*t, p as i32)))
                .collect();
            want.sort();
            // Equal stamps across partitions may come in either order.
            let stamps = |v: &[(i64, i32)]| v.iter().map(|r| r.0).collect::<Vec<_>>();
            proptest::prop_assert_eq!(stamps(&out), stamps(&want));
            for p in 0..3i32 {
                let mine: Vec<i64> = out.iter().filter(|r| r.1 == p).map(|r| r.0).collect();
                proptest::prop_assert_eq!(&mine, &per[p as usize]);
            }
        }
    }

    impl Stamped for (i64, i32) {
        fn stamp(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn records_without_timestamp_go_last() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.push("a", 0, R(i64::MAX, "none"));
        m.push("a", 1, R(7, "seven"));
        m.mark_eof("a", 0);
        m.mark_eof("a", 1);
        assert_eq!(drain_ready(&mut m), vec!["seven", "none"]);
    }
}
