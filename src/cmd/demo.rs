//! `correlator demo` (the daemon, the embedded broker, sample alerts and
//! `tail`, in one terminal) and `correlator run --demo`'s sample alerts: a
//! realistic stream, so a newcomer sees incidents open, correlate and
//! resolve within a minute.
//!
//! A two-minute cycle, repeated: checkout errors caused by payments caused
//! by postgres (one topology incident, root cause postgres), an OOM-killed
//! pod that recurs every cycle (problem material), a flapping disk alert,
//! a node storm reaching the `node-storm` threshold, re-sends every 10 s,
//! and resolutions. Alertmanager webhook bodies, keyed by cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tracing::{info, warn};

use crate::cmd::format::{ColorChoice, Format, Style};
use crate::cmd::run::{LogFormat, RunArgs};
use crate::cmd::tail::TailArgs;
use crate::config::KafkaConfig;
use crate::kafka::{producer_config, KafkaError};

/// Arguments of `correlator demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    #[arg(long, default_value = "config/correlator.toml")]
    pub config: std::path::PathBuf,
    /// Where other programs reach the embedded broker (see `run`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub embedded_kafka_listen: String,
    /// Keep the store in this file instead of a temporary directory.
    #[arg(long)]
    pub store: Option<std::path::PathBuf>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

/// Runs the daemon on the embedded broker with sample alerts and prints
/// the incident events below, until Ctrl-C.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let running = crate::cmd::run::start(RunArgs {
        config: a.config,
        embedded_kafka: true,
        embedded_kafka_listen: a.embedded_kafka_listen,
        demo: true,
        store: a.store,
        log_format: LogFormat::Pretty,
        shutdown_timeout: Duration::from_secs(30),
    })?;
    let me = crate::cmd::run::self_command();
    let brokers = running.broker_hint.clone().unwrap_or_default();
    println!("demo: sample alerts on an embedded broker at {brokers}; Ctrl-C stops");
    println!(
        "in another terminal: {me} incidents list --url http://{}",
        running.daemon.http_addr
    );
    let mut tail = TailArgs::new(brokers, running.incident_topic.clone());
    tail.color = a.color;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let json = a.json;
    let printer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        let style = Style {
            color: tail.color.enabled(),
        };
        let format = if json { Format::Json } else { Format::Simple };
        let mut f = crate::cmd::format::formatter(format, style, &mut out);
        crate::cmd::tail::tail(&tail, f.as_mut(), &st)
    });
    running.daemon.wait_for_signal();
    stop.store(true, Ordering::Relaxed);
    let tailed = printer.join();
    let r = running.stop();
    match tailed {
        Ok(Ok(_)) => r,
        Ok(Err(e)) => r.and(Err(e.context("printing the incidents topic"))),
        Err(_) => r.and(Err(anyhow::anyhow!("the event printer panicked"))),
    }
}

struct Fault {
    name: &'static str,
    service: &'static str,
    severity: &'static str,
    summary: &'static str,
    /// Seconds into the cycle it fires and resolves.
    from: u64,
    to: u64,
    /// Varying label (pod/instance) so recurrences are new alerts.
    instance: &'static str,
}

const FAULTS: &[Fault] = &[
    Fault {
        name: "PostgresReplicationLag",
        service: "postgres",
        severity: "warning",
        summary: "replica lag is 42s on pg-1",
        from: 5,
        to: 70,
        instance: "pg-1",
    },
    Fault {
        name: "PaymentsLatencyHigh",
        service: "payments",
        severity: "warning",
        summary: "p99 latency 2.3s above 500ms",
        from: 15,
        to: 70,
        instance: "payments-7d9f8",
    },
    Fault {
        name: "CheckoutErrorRate",
        service: "checkout",
        severity: "critical",
        summary: "5.2% of checkouts fail",
        from: 25,
        to: 75,
        instance: "checkout-5c4b1",
    },
    Fault {
        name: "KubePodOOMKilled",
        service: "search",
        severity: "warning",
        summary: "container search in pod search-{cycle} was OOM killed",
        from: 40,
        to: 60,
        instance: "search-{cycle}",
    },
    Fault {
        name: "NodeDown",
        service: "nodes",
        severity: "critical",
        summary: "node unreachable for 2m",
        from: 80,
        to: 100,
        instance: "node-a",
    },
    Fault {
        name: "NodeDown",
        service: "nodes",
        severity: "critical",
        summary: "node unreachable for 2m",
        from: 82,
        to: 100,
        instance: "node-b",
    },
    Fault {
        name: "NodeDown",
        service: "nodes",
        severity: "critical",
        summary: "node unreachable for 2m",
        from: 84,
        to: 100,
        instance: "node-c",
    },
];

const CYCLE: u64 = 120;

/// Produces demo alerts to the first alert topic until `stop`.
pub async fn traffic(k: KafkaConfig, stop: Arc<AtomicBool>) -> Result<(), KafkaError> {
    let producer: FutureProducer =
        producer_config(&k, crate::decode::Limits::default().max_record_bytes).create()?;
    let topic = k
        .alert_topics
        .first()
        .cloned()
        .unwrap_or_else(|| "alerts".into());
    info!(
        topic,
        "demo traffic started: a 2-minute cycle of correlated faults"
    );
    let mut second: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let cycle = second / CYCLE;
        let t = second % CYCLE;
        for f in FAULTS {
            let instance = f
                .instance
                .replace("{cycle}", &format!("{:x}", 0x51a7 + cycle * 7919));
            let summary = f
                .summary
                .replace("{cycle}", &format!("{:x}", 0x51a7 + cycle * 7919));
            let firing = t >= f.from && t < f.to;
            let starts = t == f.from;
            let resend = firing && (t - f.from).is_multiple_of(10);
            let resolves = t == f.to;
            if !(starts || resend || resolves) {
                continue;
            }
            send(&producer, &topic, f, &instance, &summary, firing).await;
        }
        // A flapping disk alert during the second half of each cycle.
        if (60..100).contains(&t) && t.is_multiple_of(4) {
            let firing = (t / 4).is_multiple_of(2);
            let f = Fault {
                name: "DiskIOSaturated",
                service: "inventory",
                severity: "warning",
                summary: "disk io 98% on inv-2",
                from: 0,
                to: 0,
                instance: "inv-2",
            };
            send(&producer, &topic, &f, "inv-2", f.summary, firing).await;
        }
        second += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

async fn send(
    p: &FutureProducer,
    topic: &str,
    f: &Fault,
    instance: &str,
    summary: &str,
    firing: bool,
) {
    let status = if firing { "firing" } else { "resolved" };
    let cluster = "eu1";
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", f.name),
        "status": status,
        "receiver": "correlator",
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": status,
            "labels": {
                "alertname": f.name, "service": f.service, "severity": f.severity,
                "env": "prod", "cluster": cluster, "instance": instance,
            },
            "annotations": {"summary": summary},
            "startsAt": "0001-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph"
        }]
    });
    let payload = body.to_string();
    let rec = FutureRecord::to(topic).key(cluster).payload(&payload);
    if let Err((e, _)) = p.send(rec, Duration::from_secs(10)).await {
        warn!(error = %e, "demo alert not produced");
    }
}
