//! `correlator send`: produce alert JSON lines (alert bodies or replay
//! records) to a topic of any broker.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::replay::parse_line;

/// Default of `correlator send --max-message-bytes`: librdkafka's own
/// default `message.max.bytes`, and Kafka's default broker limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_000_000;

/// The range librdkafka accepts for `message.max.bytes`.
pub const MAX_MESSAGE_BYTES_RANGE: std::ops::RangeInclusive<u32> = 1_000..=1_000_000_000;

/// Arguments of `correlator send`.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value = "alerts")]
    pub topic: String,
    /// Label whose value keys each record (the correlation domain).
    #[arg(long, default_value = "cluster")]
    pub partition_key: String,
    /// Largest message (value, key and framing) the producer sends;
    /// a line over it is reported and skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES,
          value_parser = clap::value_parser!(u32).range(1_000..=1_000_000_000))]
    pub max_message_bytes: u32,
    /// A JSONL file, or - for standard input.
    pub file: PathBuf,
}

/// Sends the file; false when some records were not sent (each reported on
/// standard error with its line).
pub fn run(a: SendArgs) -> anyhow::Result<bool> {
    let stdin = a.file.as_os_str() == "-";
    let records = if stdin {
        read_records(std::io::stdin().lock(), &a.partition_key)?
    } else {
        let f = std::fs::File::open(&a.file)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", a.file.display()))?;
        read_records(std::io::BufReader::new(f), &a.partition_key)?
    };
    let rt = tokio::runtime::Runtime::new()?;
    let total = records.len();
    let report = rt.block_on(send(&a.brokers, &a.topic, records, a.max_message_bytes))?;
    let source = if stdin {
        "standard input".to_string()
    } else {
        a.file.display().to_string()
    };
    for n in &report.not_sent {
        eprintln!("{source}: {n}");
    }
    eprintln!(
        "sent {} of {} to {}",
        report.sent,
        crate::cmd::format::plural(total as u64, "record", "records"),
        a.topic
    );
    if report.not_sent.is_empty() {
        Ok(true)
    } else {
        eprintln!(
            "error: {} not sent",
            crate::cmd::format::plural(report.not_sent.len() as u64, "record", "records")
        );
        Ok(false)
    }
}

/// One record to produce.
pub struct Outgoing {
    /// 1-based line of the input it was read from.
    pub line: usize,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub timestamp: Option<i64>,
}

/// Reads lines: a replay record (`{"ts","key","value"}`) keeps its key and
/// timestamp; any other line is an alert body, keyed by the value of
/// `partition_key` found in its labels.
pub fn read_records(input: impl BufRead, partition_key: &str) -> anyhow::Result<Vec<Outgoing>> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        let is_record = v
            .as_ref()
            .is_some_and(|v| v.get("ts").is_some() && v.get("value").is_some());
        if is_record {
            let r = parse_line(&line).map_err(|e| anyhow::anyhow!("line {}: {e}", i + 1))?;
            let key = v
                .as_ref()
                .and_then(|v| v.get("key"))
                .and_then(|k| k.as_str())
                .map(str::to_string);
            out.push(Outgoing {
                line: i + 1,
                key,
                payload: r.body.into_owned(),
                timestamp: Some(r.ts.0),
            });
        } else {
            let key = v.as_ref().and_then(|v| find_label(v, partition_key));
            out.push(Outgoing {
                line: i + 1,
                key,
                payload: line.into_bytes(),
                timestamp: None,
            });
        }
    }
    Ok(out)
}

/// The partition key label in any of the supported formats.
fn find_label(v: &serde_json::Value, name: &str) -> Option<String> {
    let candidates = [
        v.pointer(&format!("/labels/{name}")),
        v.pointer(&format!("/alerts/0/labels/{name}")),
        v.pointer(&format!("/0/labels/{name}")),
        v.pointer(&format!("/payload/custom_details/{name}")),
        v.pointer(&format!("/commonLabels/{name}")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|x| x.as_str().map(str::to_string))
}

/// A record that was not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSent {
    /// 1-based line of the input.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What [`send`] did: records acknowledged by the broker, and the others in
/// input order.
#[derive(Debug, Default)]
pub struct SendReport {
    pub sent: usize,
    pub not_sent: Vec<NotSent>,
}

/// Produces every record and waits for each acknowledgement.
///
/// A full local queue is waited out (retryable); a record refused for good
/// (larger than `max_message_bytes` with its key and framing, or refused by
/// the broker) is recorded in the report and the next one is sent. Only an
/// unusable producer (a fatal error) stops the run, as an error.
pub async fn send(
    brokers: &str,
    topic: &str,
    records: Vec<Outgoing>,
    max_message_bytes: u32,
) -> anyhow::Result<SendReport> {
    if !MAX_MESSAGE_BYTES_RANGE.contains(&max_message_bytes) {
        anyhow::bail!(
            "max message bytes {max_message_bytes} is outside {}..={}",
            MAX_MESSAGE_BYTES_RANGE.start(),
            MAX_MESSAGE_BYTES_RANGE.end()
        );
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("message.max.bytes", max_message_bytes.to_string())
        .create()?;
    let mut report = SendReport::default();
    let mut futs = Vec::with_capacity(records.len());
    for r in &records {
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(&r.payload);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_str());
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        loop {
            match producer.send_result(rec) {
                Ok(f) => {
                    futs.push((r.line, f));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    let size = r.payload.len() + r.key.as_ref().map_or(0, String::len);
                    report.not_sent.push(NotSent {
                        line: r.line,
                        reason: format!(
                            "message of {size} bytes (value and key) is over the limit of \
                             {max_message_bytes} bytes (--max-message-bytes, framing \
                             included); not sent"
                        ),
                    });
                    break;
                }
                Err((e @ KafkaError::MessageProduction(RDKafkaErrorCode::Fatal), _)) => {
                    anyhow::bail!("line {}: producer failed, stopping: {e}", r.line)
                }
                Err((e, _)) => {
                    report.not_sent.push(NotSent {
                        line: r.line,
                        reason: format!("not sent: {e}"),
                    });
                    break;
                }
            }
        }
    }
    for (line, f) in futs {
        match f.await {
            Ok(Ok(_)) => report.sent += 1,
            Ok(Err((e, _))) => report.not_sent.push(NotSent {
                line,
                reason: format!("not delivered: {e}"),
            }),
            Err(_) => report.not_sent.push(NotSent {
                line,
                reason: "delivery cancelled".into(),
            }),
        }
    }
    report.not_sent.sort_by_key(|n| n.line);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_bodies_with_keys() {
        let input = concat!(
            r#"{"ts":"2026-01-05T10:00:00Z","key":"eu1","value":{"labels":{"a":"b"}}}"#,
            "\n",
            r#"{"labels":{"alertname":"X","cluster":"eu2"}}"#,
            "\n",
            "\n",
            r#"{"alerts":[{"labels":{"cluster":"eu3"}}]}"#,
            "\n",
        );
        let r = read_records(input.as_bytes(), "cluster").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(r[0].key.as_deref(), Some("eu1"));
        assert_eq!(r[0].timestamp, Some(1_767_607_200_000));
        assert_eq!(r[0].payload, br#"{"labels":{"a":"b"}}"#);
        assert_eq!(r[1].key.as_deref(), Some("eu2"));
        assert_eq!(r[2].key.as_deref(), Some("eu3"));
    }
}
