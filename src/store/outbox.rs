//! Outbox entries: a message waiting to be published.
//!
//! Binary layout (so DLQ records keep their original bytes exactly):
//! `u8 payload_kind, u32 topic_len, topic, u32 key_len, key, u32 header_count,
//! (u32 name_len, name, u32 value_len, value)*, payload` — lengths big-endian.
//! Snapshot payloads are stored LZ4-compressed (`u32 LE uncompressed_len,
//! LZ4 block`): members repeat label names and values, and compress several
//! times over. Compression happens as the committer thread encodes the
//! entry, not on the pipeline thread; [`OutboxEntry::decode`] returns the
//! payload as it was given.
//! Store format 1 had no kind byte ([`OutboxEntry::decode_v1`]).

/// What the payload bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The message value itself (DLQ records, problem events).
    Message = 0,
    /// An incident event's snapshot (`kafka::events::snapshot`), rendered to
    /// the event JSON by the publisher: the pipeline thread only copies
    /// state, and the store holds the compact binary form.
    IncidentSnapshot = 1,
    /// An incident event's snapshot in parts (`kafka::snapshot`): the
    /// incident, then each member on its own, so unchanged members are
    /// encoded and rendered once.
    IncidentParts = 2,
}

impl PayloadKind {
    /// Rendered to the event JSON by the publisher.
    pub fn is_snapshot(self) -> bool {
        matches!(
            self,
            PayloadKind::IncidentSnapshot | PayloadKind::IncidentParts
        )
    }
}

/// A message the publisher must deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub topic: String,
    pub key: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub kind: PayloadKind,
    pub payload: Vec<u8>,
}

impl OutboxEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// [`OutboxEntry::encode`] into `out` (cleared first).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(
            17 + self.topic.len() + self.key.len() + self.payload.len() + self.headers.len() * 32,
        );
        out.push(self.kind as u8);
        put(out, self.topic.as_bytes());
        put(out, &self.key);
        out.extend_from_slice(&(self.headers.len() as u32).to_be_bytes());
        for (k, v) in &self.headers {
            put(out, k.as_bytes());
            put(out, v);
        }
        if self.kind.is_snapshot() {
            compress_into(&self.payload, out);
        } else {
            out.extend_from_slice(&self.payload);
        }
    }

    pub fn decode(b: &[u8]) -> Result<OutboxEntry, String> {
        let (kind, rest) = b.split_first().ok_or("empty entry")?;
        let kind = match kind {
            0 => PayloadKind::Message,
            1 => PayloadKind::IncidentSnapshot,
            2 => PayloadKind::IncidentParts,
            k => return Err(format!("unknown payload kind {k}")),
        };
        let mut e = OutboxEntry::decode_v1(rest)?;
        e.kind = kind;
        if kind.is_snapshot() {
            e.payload = decompress(&e.payload)?;
        }
        Ok(e)
    }

    /// Store format 1: no kind byte, the payload is the message.
    pub fn decode_v1(mut b: &[u8]) -> Result<OutboxEntry, String> {
        let topic = String::from_utf8(take(&mut b)?.to_vec()).map_err(|e| format!("topic: {e}"))?;
        let key = take(&mut b)?.to_vec();
        let n = u32::from_be_bytes(take_n::<4>(&mut b)?) as usize;
        let mut headers = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let k =
                String::from_utf8(take(&mut b)?.to_vec()).map_err(|e| format!("header: {e}"))?;
            headers.push((k, take(&mut b)?.to_vec()));
        }
        Ok(OutboxEntry {
            topic,
            key,
            headers,
            kind: PayloadKind::Message,
            payload: b.to_vec(),
        })
    }
}

/// Snapshots larger than this are refused as corrupt (an event is a few
/// KiB per member).
const SNAPSHOT_MAX: usize = 256 << 20;

/// Appends `u32 LE len` and the LZ4 block of `raw` to `out`.
fn compress_into(raw: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    let start = out.len();
    out.resize(
        start + lz4_flex::block::get_maximum_output_size(raw.len()),
        0,
    );
    // The buffer has the maximum size LZ4 can need: this cannot fail.
    let n = lz4_flex::block::compress_into(raw, &mut out[start..]).unwrap_or(0);
    out.truncate(start + n);
}

fn decompress(b: &[u8]) -> Result<Vec<u8>, String> {
    let (len, body) = b.split_first_chunk::<4>().ok_or("truncated snapshot")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > SNAPSHOT_MAX {
        return Err(format!("snapshot claims {len} bytes"));
    }
    lz4_flex::block::decompress(body, len).map_err(|e| format!("snapshot: {e}"))
}

fn put(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
    out.extend_from_slice(part);
}

/// Takes `n` bytes off the front of `b`: the reader of the outbox's binary
/// layouts (entries here, snapshots in `kafka::snapshot`).
pub(crate) fn take_exact<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("truncated: {n} bytes expected, {} left", b.len()));
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

/// [`take_exact`] of a fixed size.
pub(crate) fn take_n<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], String> {
    let mut a = [0; N];
    a.copy_from_slice(take_exact(b, N)?);
    Ok(a)
}

/// A part behind its `u32` BE length.
fn take<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let n = u32::from_be_bytes(take_n::<4>(b)?) as usize;
    take_exact(b, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let e = OutboxEntry {
            topic: "alerts-dlq".into(),
            key: b"k".to_vec(),
            headers: vec![
                ("error".into(), b"bad".to_vec()),
                ("x".into(), vec![0xff, 0]),
            ],
            kind: PayloadKind::Message,
            payload: vec![0, 1, 2, 0xff],
        };
        let b = e.encode();
        assert_eq!(OutboxEntry::decode(&b).unwrap(), e);
        for cut in 0..b.len() - e.payload.len() {
            assert!(OutboxEntry::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut unknown = b.clone();
        unknown[0] = 9;
        assert!(OutboxEntry::decode(&unknown).is_err());
        // A format 1 entry is the same without the kind byte.
        let v1 = OutboxEntry::decode_v1(&b[1..]).unwrap();
        assert_eq!(v1.kind, PayloadKind::Message);
        assert_eq!(v1.payload, e.payload);
    }

    #[test]
    fn snapshots_are_stored_compressed_and_read_back_as_given() {
        let payload: Vec<u8> = b"member labels repeat; ".repeat(200);
        for kind in [PayloadKind::IncidentSnapshot, PayloadKind::IncidentParts] {
            let e = OutboxEntry {
                topic: "incidents".into(),
                key: b"inc-1".to_vec(),
                headers: Vec::new(),
                kind,
                payload: payload.clone(),
            };
            let b = e.encode();
            assert!(b.len() < payload.len() / 4, "{} bytes stored", b.len());
            assert_eq!(OutboxEntry::decode(&b).unwrap(), e);
            // A cut or inflated snapshot is an error, not a short payload.
            assert!(OutboxEntry::decode(&b[..b.len() - 2]).is_err());
            let mut huge = b.clone();
            let at = 1 + 4 + e.topic.len() + 4 + e.key.len() + 4;
            huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(OutboxEntry::decode(&huge).is_err());
        }
    }
}
