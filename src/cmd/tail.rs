//! `correlator tail`: print the events of the incidents topic as they are
//! published, one aligned line each (time, type, id, priority, severity,
//! title, root cause, members), or as JSON lines with `--json`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;

use crate::cmd::format::{ColorChoice, Format, Formatter, Style};

/// Arguments of `correlator tail`.
#[derive(clap::Args, Debug, Clone)]
pub struct TailArgs {
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value = "incidents")]
    pub topic: String,
    /// Start from the oldest event instead of new ones only.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Stop after this long without an event.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle: Option<Duration>,
    /// Print each event's JSON as published (the same as `--output json`).
    #[arg(long)]
    pub json: bool,
    /// Output format: simple (one line per event) or json.
    #[arg(long, short = 'o', value_enum, default_value = "simple")]
    pub output: Format,
    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

impl TailArgs {
    /// The settings of a plain `tail --brokers BROKERS --from-beginning`.
    pub fn new(brokers: String, topic: String) -> TailArgs {
        TailArgs {
            brokers,
            topic,
            from_beginning: true,
            limit: None,
            idle: None,
            json: false,
            output: Format::Simple,
            color: ColorChoice::Auto,
        }
    }
}

/// Tails to standard output.
pub fn run(a: &TailArgs) -> anyhow::Result<usize> {
    let mut out = std::io::stdout().lock();
    let style = Style {
        color: a.color.enabled(),
    };
    let format = if a.json { Format::Json } else { a.output };
    let mut f = crate::cmd::format::formatter(format, style, &mut out);
    tail(a, f.as_mut(), &AtomicBool::new(false))
}

/// Prints each event of the topic until `limit` events, `idle` without any,
/// or `stop`. A message that is not JSON is printed as a note, not fatal.
pub fn tail(a: &TailArgs, out: &mut dyn Formatter, stop: &AtomicBool) -> anyhow::Result<usize> {
    let group = format!("correlator-tail-{}", std::process::id());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if a.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        .set("fetch.wait.max.ms", "50")
        .create()?;
    consumer.subscribe(&[&a.topic])?;
    let mut n = 0;
    let mut last = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed)
            || a.limit.is_some_and(|l| n >= l)
            || a.idle.is_some_and(|d| last.elapsed() > d)
        {
            break;
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                print_event(payload, m.partition(), m.offset(), out)?;
                n += 1;
                last = Instant::now();
            }
            Some(Err(e)) => anyhow::bail!("consuming {}: {e}", a.topic),
            None => {}
        }
    }
    Ok(n)
}

/// One message through the formatter; a message that is not JSON is noted
/// on standard error with its position.
pub fn print_event(
    payload: &[u8],
    partition: i32,
    offset: i64,
    out: &mut dyn Formatter,
) -> anyhow::Result<()> {
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(v) => out.event(payload, &v)?,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            writeln!(
                err,
                "partition {partition} offset {offset}: not a JSON event ({e}); skipped"
            )?;
        }
    }
    Ok(())
}
