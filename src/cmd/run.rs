//! `correlator run`: the daemon, from the command line. Loads and checks the
//! configuration, picks the store (a fresh temporary one for `--demo`),
//! starts the embedded broker when asked (reachable at a stable address),
//! prints the next step, and runs [`Daemon`] until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::daemon::Daemon;
use crate::engine::EngineConfig;
use crate::kafka::embedded::Embedded;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human lines (coloured only on a terminal).
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Arguments of `correlator run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[arg(long, default_value = "config/correlator.toml")]
    pub config: PathBuf,
    /// Start an in-process Kafka-protocol broker (librdkafka's mock
    /// cluster) with the configured topics, and use it.
    #[arg(long)]
    pub embedded_kafka: bool,
    /// Where other programs (`tail`, `send`) reach the embedded broker: a
    /// local forwarder to it. When the address is taken, the broker's own
    /// (random) address is printed instead.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub embedded_kafka_listen: String,
    /// Also produce a realistic stream of sample alerts.
    #[arg(long)]
    pub demo: bool,
    /// The store file, instead of `store.path`. With `--demo` and without
    /// this flag the store is a fresh temporary directory, removed at exit.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Log format: pretty (for a terminal) or json.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Longest a graceful shutdown may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let running = start(args)?;
    print_next_step(&running);
    running.daemon.wait_for_signal();
    running.stop()
}

/// A daemon started from the command line with what it owns beside.
pub struct Running {
    pub daemon: Daemon,
    /// The address printed for `tail` and `send`, with the embedded broker.
    pub broker_hint: Option<String>,
    pub incident_topic: String,
    /// Dropped after the daemon (the mock cluster is not `Send`: it stays
    /// on the thread that started it).
    embedded: Option<Embedded>,
    forwarder: Option<Forwarder>,
    store: StorePlace,
}

impl Running {
    /// Shuts the daemon down, then the broker, then removes a temporary store.
    pub fn stop(self) -> anyhow::Result<()> {
        let r = self.daemon.shutdown();
        drop(self.forwarder);
        drop(self.embedded);
        drop(self.store);
        r
    }
}

/// Loads the configuration and starts the daemon (and broker).
pub fn start(args: RunArgs) -> anyhow::Result<Running> {
    let mut cfg = Config::load(&args.config)?;
    // As Alertmanager logs matchers whose reading depends on its parser.
    for w in crate::engine::rules::mode_warnings(&cfg) {
        tracing::warn!(key = %w.key, "matcher reads differently per matchers.mode: {}", w.reason);
    }
    let engine_cfg = EngineConfig::compile(&cfg).map_err(|issues| ConfigError::Invalid {
        file: args.config.display().to_string(),
        issues,
    })?;
    let store = StorePlace::choose(args.store, args.demo, &cfg.store.path)?;
    if let StorePlace::Temporary(dir) = &store {
        info!(store = %dir.display(), "demo store in a temporary directory (--store keeps one)");
    }
    cfg.store.path = store.path(&cfg.store.path);
    let (embedded, forwarder, broker_hint) = if args.embedded_kafka {
        let e = Embedded::start(&cfg.kafka).context("starting the embedded Kafka broker")?;
        cfg.kafka.brokers = e.bootstrap();
        // One daemon owns the embedded broker: no group to join (a join
        // takes a session timeout, while producers may already send).
        cfg.kafka.assignment = crate::config::Assignment::Manual;
        // One daemon owns the embedded broker: no group to join (a join
        // takes a session timeout, while producers may already send).
        cfg.kafka.assignment = crate::config::Assignment::Manual;
        let forwarder = match Forwarder::start(&args.embedded_kafka_listen, &cfg.kafka.brokers) {
            Ok(f) => Some(f),
            Err(e) => {
                warn!(
                    listen = %args.embedded_kafka_listen,
                    error = %e,
                    "cannot listen for the embedded broker there; use its own address"
                );
                None
            }
        };
        let hint = forwarder
            .as_ref()
            .map_or_else(|| cfg.kafka.brokers.clone(), |f| f.addr.to_string());
        info!(brokers = %hint, "embedded Kafka broker started");
        (Some(e), forwarder, Some(hint))
    } else {
        (None, None, None)
    };
    let incident_topic = cfg.kafka.incident_topic.clone();
    let daemon = Daemon::start(
        cfg,
        engine_cfg,
        embedded.is_some(),
        args.demo,
        args.shutdown_timeout,
    )?;
    Ok(Running {
        daemon,
        broker_hint,
        incident_topic,
        embedded,
        forwarder,
        store,
    })
}

/// How to run this binary again: `cargo run --release --` for a binary in
/// a cargo profile directory (`…/release/`, `…/debug/`), else `correlator`.
pub fn self_command() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile = exe.parent().and_then(|d| d.file_name());
    match profile.and_then(|p| p.to_str()) {
        Some("release") => "cargo run --release --".into(),
        Some("debug") => "cargo run --".into(),
        _ => "correlator".into(),
    }
}

fn print_next_step(r: &Running) {
    let me = self_command();
    let url = format!("http://{}", r.daemon.http_addr);
    if let Some(brokers) = &r.broker_hint {
        let topic = if r.incident_topic == "incidents" {
            String::new()
        } else {
            format!(" --topic {}", r.incident_topic)
        };
        println!("embedded Kafka broker at {brokers}");
        println!("watch incidents (another terminal):");
        println!("  {me} tail --brokers {brokers}{topic} --from-beginning");
    }
    println!("list incidents: {me} incidents list --url {url}");
}

/// Where the store lives for this run.
#[derive(Debug)]
pub enum StorePlace {
    /// `store.path`, or `--store`.
    Given(PathBuf),
    /// A fresh directory (demo), removed when this is dropped.
    Temporary(PathBuf),
}

impl StorePlace {
    /// `--store` wins; else a demo gets a fresh temporary directory (so no
    /// demo starts with another's incidents and offsets); else `store.path`.
    pub fn choose(flag: Option<PathBuf>, demo: bool, configured: &Path) -> anyhow::Result<Self> {
        if let Some(p) = flag {
            return Ok(StorePlace::Given(p));
        }
        if !demo {
            return Ok(StorePlace::Given(configured.to_path_buf()));
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let base = std::env::temp_dir();
        for _ in 0..1000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("correlator-demo-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(StorePlace::Temporary(dir)),
                // Left by an earlier process with the same id: never reused.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        }
        anyhow::bail!("no free temporary directory name under {}", base.display())
    }

    /// The store file for this run (a temporary store keeps the configured
    /// file name).
    pub fn path(&self, configured: &Path) -> PathBuf {
        match self {
            StorePlace::Given(p) => p.clone(),
            StorePlace::Temporary(dir) => {
                dir.join(configured.file_name().unwrap_or("correlator.redb".as_ref()))
            }
        }
    }
}

impl Drop for StorePlace {
    fn drop(&mut self) {
        if let StorePlace::Temporary(dir) = self {
            if let Err(e) = std::fs::remove_dir_all(&*dir) {
                warn!(store = %dir.display(), error = %e, "could not remove the demo store");
            }
        }
    }
}

/// A TCP forwarder from a fixed local address to the embedded broker,
/// which listens on a random port (librdkafka's mock cluster cannot be
/// told which). Clients bootstrap through it; the broker's metadata then
/// sends them to its own address on the same host.
pub struct Forwarder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(listen: &str, target: &str) -> anyhow::Result<Forwarder> {
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("binding --embedded-kafka-listen {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let target = target.split(',').next().unwrap_or_default().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("correlator-broker-forward".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!(error = %e, "embedded broker forwarder not started");
                        return;
                    }
                };
                rt.block_on(forward(listener, target, st));
            })?;
        Ok(Forwarder {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn forward(listener: std::net::TcpListener, target: String, stop: Arc<AtomicBool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((mut inbound, _))) = accepted else {
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(&target).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => warn!(error = %e, %target, "embedded broker unreachable"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two demo runs in a row get two fresh, empty stores; `--store` (or no
    /// demo) shares the one given.
    #[test]
    fn demo_runs_do_not_share_a_store_unless_one_is_given() {
        let configured = Path::new("data/correlator.redb");
        let a = StorePlace::choose(None, true, configured).unwrap();
        let b = StorePlace::choose(None, true, configured).unwrap();
        let (pa, pb) = (a.path(configured), b.path(configured));
        assert_ne!(pa, pb);
        assert!(!pa.starts_with("data"), "{}", pa.display());
        assert_eq!(pa.file_name().unwrap(), "correlator.redb");
        let dir = pa.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        drop(a);
        assert!(!dir.exists(), "temporary store not removed");
        let given = Some(PathBuf::from("/tmp/x.redb"));
        for demo in [false, true] {
            let g = StorePlace::choose(given.clone(), demo, configured).unwrap();
            assert_eq!(g.path(configured), PathBuf::from("/tmp/x.redb"));
        }
        let plain = StorePlace::choose(None, false, configured).unwrap();
        assert_eq!(plain.path(configured), configured);
    }

    #[test]
    fn forwarder_passes_bytes_both_ways() {
        use std::io::{Read, Write};
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = upstream.local_addr().unwrap().to_string();
        let f = Forwarder::start("127.0.0.1:0", &target).unwrap();
        let mut c = std::net::TcpStream::connect(f.addr).unwrap();
        c.write_all(b"ping").unwrap();
        let (mut s, _) = upstream.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        s.write_all(b"pong").unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
    }
}
