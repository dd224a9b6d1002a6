//! `correlator replay`: runs a recorded stream through the engine.
//!
//! Input: JSONL, one Kafka record per line,
//! `{"ts":"2026-01-05T10:00:00Z","key":"optional","value":<JSON body>}`.
//! `value` may also be a JSON string holding the raw body (so undecodable
//! bodies can be recorded too). The engine clock is `ts`; after the last
//! record the clock moves past every window and timeout.
//!
//! Output (the replay contract in DESIGN.md): incidents.jsonl, problems.jsonl,
//! rejected.jsonl, summary.json. Same input, byte-identical output.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::alert::Timestamp;
use crate::engine::{Engine, Stats};

/// One line of the input.
#[derive(Deserialize)]
struct RecordLine<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(default, borrow)]
    #[allow(
        dead_code,
        reason = "part of the record format; the engine does not need it"
    )]
    key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// A parsed input line: its clock and body bytes.
pub struct Record<'a> {
    pub ts: Timestamp,
    pub body: Cow<'a, [u8]>,
}

/// Parses one line of a replay file. Errors name the field.
pub fn parse_line(line: &str) -> Result<Record<'_>, String> {
    let r: RecordLine<'_> =
        serde_json::from_str(line).map_err(|e| format!("record line is not valid: {e}"))?;
    let ts = match Timestamp::parse_rfc3339(&r.ts) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(format!("ts: {:?} is not a usable time", r.ts)),
        Err(e) => return Err(format!("ts: {e}")),
    };
    let raw = r.value.get();
    let body: Cow<'_, [u8]> = if raw.starts_with('"') {
        let s: String =
            serde_json::from_str(raw).map_err(|e| format!("value: invalid string: {e}"))?;
        Cow::Owned(s.into_bytes())
    } else {
        Cow::Borrowed(raw.as_bytes())
    };
    Ok(Record { ts, body })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Non-blank input lines.
    pub records: u64,
    /// Alert notifications decoded.
    pub alerts: u64,
    /// Notifications that changed no alert's status (re-sends, duplicates, stale).
    pub deduplicated: u64,
    /// Incidents created (lines of incidents.jsonl).
    pub incidents: u64,
    pub problems: u64,
    /// Records with at least one rejected part (lines of rejected.jsonl).
    pub rejected: u64,
    pub noise_dropped: u64,
    pub reopened: u64,
    pub merged: u64,
    pub flapping: u64,
    pub acknowledgements_ignored: u64,
}

#[derive(Serialize)]
struct Rejected<'a> {
    line: u64,
    error: &'a str,
}

/// Feeds every record of `input` to `engine`, then flushes; writes rejections
/// as it goes to `rejected` and returns (records, rejected) counts.
pub fn feed(
    engine: &mut Engine,
    input: impl BufRead,
    mut rejected: impl Write,
) -> anyhow::Result<(u64, u64)> {
    let mut records = 0u64;
    let mut n_rejected = 0u64;
    let mut reader = input;
    let mut buf = String::new();
    let mut lineno = 0u64;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).context("reading input")?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        records += 1;
        let error = match parse_line(line) {
            Err(e) => Some(e),
            Ok(rec) => {
                let out = engine.handle(&rec.body, rec.ts);
                if out.decoded.errors.is_empty() {
                    None
                } else {
                    let msgs: Vec<String> =
                        out.decoded.errors.iter().map(|e| e.to_string()).collect();
                    Some(msgs.join("; "))
                }
            }
        };
        if let Some(error) = error {
            n_rejected += 1;
            serde_json::to_writer(
                &mut rejected,
                &Rejected {
                    line: lineno,
                    error: &error,
                },
            )?;
            rejected.write_all(b"\n")?;
        }
    }
    engine.flush();
    Ok((records, n_rejected))
}

/// Runs a whole replay and writes the four output files.
pub fn run(engine: &mut Engine, input: &Path, out_dir: &Path) -> anyhow::Result<Summary> {
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let p = out_dir.join(name);
        Ok(BufWriter::new(
            File::create(&p).with_context(|| format!("creating {}", p.display()))?,
        ))
    };
    let mut rejected = create("rejected.jsonl")?;
    let (records, n_rejected) = feed(
        engine,
        BufReader::with_capacity(1 << 20, file),
        &mut rejected,
    )?;
    rejected.flush()?;

    let mut out = create("incidents.jsonl")?;
    let incidents = engine.incidents_sorted();
    for inc in &incidents {
        serde_json::to_writer(&mut out, &inc.view(false))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let mut problems = create("problems.jsonl")?;
    let all_problems = engine.problems_sorted();
    for p in &all_problems {
        serde_json::to_writer(&mut problems, &p.view())?;
        problems.write_all(b"\n")?;
    }
    problems.flush()?;

    let s: &Stats = engine.stats();
    let summary = Summary {
        records,
        alerts: s.alerts,
        deduplicated: s.deduplicated,
        incidents: incidents.len() as u64,
        problems: all_problems.len() as u64,
        rejected: n_rejected,
        noise_dropped: s.noise_dropped,
        reopened: s.incidents_reopened,
        merged: s.incidents_merged,
        flapping: s.flapping_started,
        acknowledgements_ignored: s.acknowledgements_ignored,
    };
    let mut f = create("summary.json")?;
    serde_json::to_writer_pretty(&mut f, &summary)?;
    f.write_all(b"\n")?;
    f.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_forms() {
        let r =
            parse_line(r#"{"ts":"2026-01-05T10:00:00Z","value":{"labels":{"a":"b"}}}"#).unwrap();
        assert_eq!(&*r.body, br#"{"labels":{"a":"b"}}"#);
        let r =
            parse_line(r#"{"ts":"2026-01-05T10:00:00Z","key":"k","value":"{not json"}"#).unwrap();
        assert_eq!(&*r.body, b"{not json");
        let e = parse_line(r#"{"value":{}}"#).err().unwrap();
        assert!(e.contains("missing field `ts`"), "{e}");
        let e = parse_line(r#"{"ts":"noon","value":{}}"#).err().unwrap();
        assert!(e.starts_with("ts: invalid RFC 3339"), "{e}");
        assert!(parse_line("not json").is_err());
    }
}
