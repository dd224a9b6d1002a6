//! The fetch thread: polls librdkafka and decodes each record as it
//! arrives, beside the pipeline thread.
//!
//! Decoding is pure and per record (it needs only the limits and the
//! record's own clock), so it need not wait for the timestamp merge: done
//! here, it runs on a second core while the pipeline applies the previous
//! records, and a record's bytes are read once, straight from librdkafka's
//! buffer, instead of being copied out for later. Only a rejected record
//! keeps its bytes (the DLQ gets them as they were).
//!
//! What the thread sends keeps the client's order (records and partition
//! ends of one partition in offset order), in chunks so the hand-over costs
//! little per record. The channel is bounded: when the pipeline falls
//! behind, the thread stops polling and librdkafka's own prefetch limit
//! stops the fetching.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};

use crate::alert::Timestamp;
use crate::decode::{Decoded, Decoder, Limits};
use crate::kafka::consumer::{wall_clock, QuietEof};
use crate::kafka::merge::Stamped;

/// Records per chunk sent to the pipeline at most.
const CHUNK: usize = 256;

/// Chunks in flight at most (with [`CHUNK`]: 16,384 decoded records ahead
/// of the pipeline's merge buffer).
const CHUNKS_IN_FLIGHT: usize = 64;

/// How long the pipeline waits at most for records the fetch thread has
/// in hand (it decodes a chunk in well under a millisecond).
const BEHIND_WAIT: Duration = Duration::from_millis(100);

/// How long one poll waits for a record before the stop flag is checked.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// A record, decoded.
pub struct Fetched {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The broker's timestamp (ms), if the record has one.
    pub timestamp: Option<i64>,
    /// The record's engine clock: its timestamp, never later than the wall
    /// clock when it was fetched (the wall clock if it has none).
    pub now: Timestamp,
    pub decoded: Decoded,
    /// Key and value, kept only if the record failed to decode (the DLQ
    /// sends them as they were).
    pub rejected: Option<Box<Rejected>>,
    /// Bytes of key and value (bounds the merge buffer like the records
    /// themselves would).
    pub size: usize,
}

/// The original bytes of a record that failed to decode.
pub struct Rejected {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Stamped for Fetched {
    fn stamp(&self) -> i64 {
        self.timestamp.unwrap_or(i64::MAX)
    }

    fn size(&self) -> usize {
        self.size
    }
}

/// Items in client order, and whether the client had more ready when the
/// chunk was sent (the pipeline then waits for them rather than taking the
/// partition for silent).
struct Chunk {
    items: Vec<Fetch>,
    more: bool,
}

/// What one poll of the client gave.
pub enum Fetch {
    Record(Fetched),
    /// The partition (of every subscribed topic with that number: the
    /// client names only the number) is at its end.
    Eof(i32),
    /// The partition's last record sent was the broker's last when the
    /// fetch that brought it was answered (see [`ends_of`]): what `Eof`
    /// says, a fetch round trip earlier, and for one topic.
    End {
        topic: Arc<str>,
        partition: i32,
    },
    Error(rdkafka::error::KafkaError),
}

/// The pipeline's end of the fetch thread. Dropping it stops the thread.
pub struct Fetcher {
    rx: Receiver<Chunk>,
    /// The chunk being handed out, reversed (popped from the end).
    chunk: Vec<Fetch>,
    /// The last chunk was sent with more records ready behind it.
    more: bool,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fetcher {
    /// Starts polling `consumer` (which must already be subscribed or
    /// assigned). Only this thread polls it from now on.
    pub fn spawn(consumer: Arc<BaseConsumer<QuietEof>>, limits: Limits) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("correlator-fetch".into())
            .spawn(move || fetch_loop(&consumer, &limits, &tx, &flag))?;
        Ok(Fetcher {
            rx,
            chunk: Vec::new(),
            more: false,
            stop,
            thread: Some(thread),
        })
    }

    /// The last chunk came with more records ready behind it: a backlog
    /// is being read.
    pub fn behind(&self) -> bool {
        self.more
    }

    /// The thread still runs (it ends only when this handle is dropped,
    /// unless it panicked).
    pub fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The next item, waiting up to `wait` for one (`None`: nothing came,
    /// or the fetch thread is gone). Records the client already holds count
    /// as there: while the fetch thread is still decoding them, this waits
    /// for them whatever `wait` says, so a backlog is never taken for a
    /// silent partition.
    pub fn next(&mut self, wait: Duration) -> Option<Fetch> {
        if let Some(f) = self.chunk.pop() {
            return Some(f);
        }
        let wait = if self.more {
            wait.max(BEHIND_WAIT)
        } else {
            wait
        };
        let chunk = if wait.is_zero() {
            self.rx.try_recv().ok()?
        } else {
            match self.rx.recv_timeout(wait) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.more = false;
                    return None;
                }
            }
        };
        self.more = chunk.more;
        self.chunk = chunk.items;
        self.chunk.reverse();
        self.chunk.pop()
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiving end unblocks a thread waiting for room.
        let (_, rx) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fetch_loop(
    consumer: &BaseConsumer<QuietEof>,
    limits: &Limits,
    tx: &SyncSender<Chunk>,
    stop: &AtomicBool,
) {
    let mut topics = Topics::default();
    // Keeps the label sets of re-sent alerts (see `LabelCache`).
    let mut decoder = Decoder::new(limits.clone());
    // The last wall clock reading (see `fetched`).
    let mut wall = Timestamp(i64::MIN);
    let mut chunk: Vec<Fetch> = Vec::with_capacity(CHUNK);
    // The last chunk sent said more was ready: the pipeline waits for it.
    let mut promised = false;
    while !stop.load(Ordering::Relaxed) {
        // With records in hand (or promised), only what is already there
        // joins them.
        let wait = if chunk.is_empty() && !promised {
            IDLE_POLL
        } else {
            Duration::ZERO
        };
        // (flush, more ready behind the chunk)
        let (flush, more) = match consumer.poll(wait) {
            Some(Ok(m)) => {
                chunk.push(Fetch::Record(fetched(
                    &m,
                    &mut topics,
                    &mut decoder,
                    &mut wall,
                )));
                (chunk.len() >= CHUNK, true)
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                chunk.push(Fetch::Eof(p));
                (chunk.len() >= CHUNK, true)
            }
            Some(Err(e)) => {
                chunk.push(Fetch::Error(e));
                (true, false)
            }
            // An empty chunk takes a promise back.
            None => {
                // Read the clock afresh after a pause (it may have been
                // stepped back meanwhile).
                wall = Timestamp(i64::MIN);
                ends_of(consumer, &mut chunk, &topics);
                (!chunk.is_empty() || promised, false)
            }
        };
        if !flush {
            continue;
        }
        // The next chunk is sized like this one: full ones under a backlog,
        // small ones with live traffic (a record or two per poll).
        let next = Vec::with_capacity(chunk.len().clamp(16, CHUNK));
        let items = std::mem::replace(&mut chunk, next);
        // A full channel blocks here until the pipeline takes a chunk or
        // drops its end (stopping).
        if tx.send(Chunk { items, more }).is_err() {
            return;
        }
        promised = more;
    }
}

/// Decodes one record at its own clock.
fn fetched(
    m: &BorrowedMessage<'_>,
    topics: &mut Topics,
    decoder: &mut Decoder,
    wall: &mut Timestamp,
) -> Fetched {
    let topic = topics.intern(m.topic());
    let timestamp = m.timestamp().to_millis();
    // A timestamp at or before an earlier reading of the wall clock is
    // before the current one too: a backlog needs no clock reading per record.
    // (A clock stepped back within a burst of records lets their timestamps
    // through up to that step until the fetch thread next waits.)
    let now = match timestamp {
        Some(t) if Timestamp(t) <= *wall => Timestamp(t),
        _ => {
            *wall = wall_clock();
            timestamp.map_or(*wall, |t| Timestamp(t).min(*wall))
        }
    };
    let payload = m.payload().unwrap_or_default();
    let key = m.key().unwrap_or_default();
    let decoded = decoder.decode(payload, now);
    let rejected = (!decoded.errors.is_empty()).then(|| {
        Box::new(Rejected {
            key: key.to_vec(),
            payload: payload.to_vec(),
        })
    });
    Fetched {
        topic,
        partition: m.partition(),
        offset: m.offset(),
        timestamp,
        now,
        decoded,
        rejected,
        size: payload.len() + key.len(),
    }
}

/// Appends an [`Fetch::End`] for each partition whose last record in
/// `chunk` was the last the broker had.
///
/// Why: the client says a partition is at its end only when a *later*
/// fetch comes back empty, and the merge holds newer records of the other
/// partitions until then, which with live traffic is most of the
/// produce-to-event latency. The high watermark the client caches with
/// every fetch response (set before that response's records are queued)
/// tells the same a round trip earlier. Called only once the client's
/// queue is drained, so it costs nothing under a backlog. Conservative: a
/// stale or unknown watermark, or offsets the client skips (transaction
/// markers, compaction), leave the partition to the client's own end.
fn ends_of(consumer: &BaseConsumer<QuietEof>, chunk: &mut Vec<Fetch>, topics: &Topics) {
    // (topic, partition, last offset), in first-seen order.
    let mut last: Vec<(Arc<str>, i32, i64)> = Vec::new();
    for f in chunk.iter() {
        if let Fetch::Record(m) = f {
            match last
                .iter_mut()
                .find(|(t, p, _)| *p == m.partition && Arc::ptr_eq(t, &m.topic))
            {
                Some(e) => e.2 = m.offset,
                None => last.push((m.topic.clone(), m.partition, m.offset)),
            }
        }
    }
    for (topic, partition, offset) in last {
        let Some(name) = topics.c_name(&topic) else {
            continue;
        };
        if cached_high_watermark(consumer, name, partition).is_some_and(|hi| offset + 1 >= hi) {
            chunk.push(Fetch::End { topic, partition });
        }
    }
}

/// The client's cached high watermark of a partition (librdkafka's
/// `rd_kafka_get_watermark_offsets`: no broker round trip, unlike the
/// crate's `fetch_watermarks`); `None` if unknown.
#[allow(unsafe_code)]
fn cached_high_watermark(
    consumer: &BaseConsumer<QuietEof>,
    topic: &CStr,
    partition: i32,
) -> Option<i64> {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle is valid while `consumer` is borrowed;
    // `topic` is NUL-terminated and outlives the call; `low` and `high` are
    // valid for writes. The function reads two fields of the partition
    // under its lock and keeps no pointer.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// The names of the topics read (a daemon reads a handful): one shared
/// `Arc<str>` per topic for its records, and its C string for the client.
#[derive(Default)]
struct Topics(Vec<(Arc<str>, Option<CString>)>);

impl Topics {
    /// The shared name of a topic.
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some((t, _)) = self.0.iter().find(|(t, _)| **t == *name) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(name);
        // A topic name never holds a NUL (the client gave it as a C string).
        self.0.push((t.clone(), CString::new(name).ok()));
        t
    }

    /// The C string of a name [`Topics::intern`] gave.
    fn c_name(&self, topic: &Arc<str>) -> Option<&CStr> {
        self.0
            .iter()
            .find(|(t, _)| Arc::ptr_eq(t, topic))
            .and_then(|(_, c)| c.as_deref())
    }
}
