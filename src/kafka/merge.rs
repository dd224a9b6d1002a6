//! The timestamp merge of the assigned partitions, without Kafka.
//!
//! One engine clock serves every assigned partition, so records must reach
//! the engine oldest first across partitions: a partition reading its backlog
//! must not run the clock ahead of the others. [`Merge`] buffers fetched
//! records per partition and releases the oldest head record only while the
//! merge is *ready*: every assigned partition has a record buffered or is at
//! its end (librdkafka's partition EOF), so no older record can still come.
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
}

impl Stamped for rdkafka::message::OwnedMessage {
    fn stamp(&self) -> i64 {
        use rdkafka::Message;
        self.timestamp().to_millis().unwrap_or(i64::MAX)
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
    starved: usize,
}

impl<M> Default for Merge<M> {
    fn default() -> Self {
        Merge {
            parts: Vec::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            buffered: 0,
            starved: 0,
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
        let p = &mut self.parts[i];
        if p.starved() {
            self.starved -= 1;
        }
        p.eof = false;
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
        }
        p.eof = true;
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
            p.buf.clear();
        }
        if dropped > 0 {
            self.buffered -= dropped;
            self.rebuild_heap();
        }
        self.recount();
    }

    pub fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        self.find(topic, partition)
            .is_some_and(|i| self.parts[i].assigned)
    }

    fn recount(&mut self) {
        self.starved = self.parts.iter().filter(|p| p.starved()).count();
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

    /// No assigned partition can still deliver a record older than the
    /// oldest buffered one.
    pub fn ready(&self) -> bool {
        self.starved == 0
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
        match p.buf.front() {
            Some(next) => self
                .heap
                .push(Reverse((next.stamp(), p.topic.clone(), p.partition, i))),
            None if p.starved() => self.starved += 1,
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
        // a0-10, a1-20; then partition 1 is empty and may still bring 25.
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
    fn clearing_eof_makes_silent_partitions_block_again() {
        let mut m = Merge::default();
        m.set_assigned(&keys(&[("a", 0), ("a", 1)]));
        m.mark_eof("a", 1);
        m.push("a", 0, R(1, "x"));
        assert!(m.ready());
        m.clear_eof();
        assert!(!m.ready());
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
