//! `correlator run`: wires the store, the pipeline thread, the outbox
//! publisher and the HTTP server together, and shuts them down in order on
//! SIGINT/SIGTERM: stop fetching → finish the batch in hand (committed) →
//! flush the outbox → exit, all under `--shutdown-timeout`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::engine::EngineConfig;
use crate::kafka::consumer::{Command, Pipeline};
use crate::kafka::embedded::Embedded;
use crate::kafka::publisher::Publisher;
use crate::kafka::Health;
use crate::store::Store;

pub struct RunOptions {
    pub config: std::path::PathBuf,
    pub embedded_kafka: bool,
    pub demo: bool,
    pub shutdown_timeout: Duration,
}

pub fn run(opts: RunOptions) -> anyhow::Result<()> {
    let mut cfg = Config::load(&opts.config)?;
    let engine_cfg = EngineConfig::compile(&cfg).map_err(|issues| ConfigError::Invalid {
        file: opts.config.display().to_string(),
        issues,
    })?;
    // The mock cluster is not Send: it stays on this thread for the whole run.
    let embedded = if opts.embedded_kafka {
        let e = Embedded::start(&cfg.kafka).context("starting the embedded Kafka broker")?;
        cfg.kafka.brokers = e.bootstrap();
        println!("embedded Kafka broker at {}", cfg.kafka.brokers);
        println!(
            "watch incidents: correlator tail --brokers {} --topic {}",
            cfg.kafka.brokers, cfg.kafka.incident_topic
        );
        Some(e)
    } else {
        None
    };
    let store = Arc::new(Store::open(&cfg.store.path)?);
    let engine = store.load_engine(engine_cfg)?;
    info!(
        store = %cfg.store.path.display(),
        alerts = engine.alert_count(),
        incidents = engine.incident_count(),
        "state loaded"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("correlator-io")
        .build()?;
    let health = Arc::new(Health::default());
    health.store_ok.store(true, Ordering::Relaxed);
    let notify = Arc::new(tokio::sync::Notify::new());
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<Command>();
    let stop = Arc::new(AtomicBool::new(false));

    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&cfg.http.listen))
        .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
    info!(listen = %cfg.http.listen, "http listening");
    let http_stop = Arc::new(tokio::sync::Notify::new());
    let app = crate::http::router(health.clone());
    let hs = http_stop.clone();
    let http = rt.spawn(async move {
        let r = axum::serve(listener, app).with_graceful_shutdown(async move { hs.notified().await }).await;
        if let Err(e) = r {
            error!(error = %e, "http server failed");
        }
    });

    // The pipeline thread owns the engine, the consumer and the batch loop.
    let pipe_stop = stop.clone();
    let (pcfg, pstore, phealth, pnotify) = (cfg.clone(), store.clone(), health.clone(), notify.clone());
    let embedded_mode = embedded.is_some();
    let pipeline = std::thread::Builder::new().name("correlator-pipeline".into()).spawn(move || {
        let mut backoff = Duration::from_millis(200);
        let mut p = match Pipeline::new(engine, pstore, pcfg, phealth.clone(), pnotify, cmd_rx, embedded_mode) {
            Ok(p) => p,
            Err(e) => return Err(e),
        };
        // The broker may be down at start: keep state, report not ready, retry.
        loop {
            match p.start() {
                Ok(()) => break,
                Err(e @ crate::kafka::KafkaError::OffsetBeyondEnd { .. }) => return Err(e),
                Err(e) => {
                    phealth.broker_ok.store(false, Ordering::Relaxed);
                    warn!(error = %e, retry_in = ?backoff, "cannot start consuming; retrying");
                    if pipe_stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        phealth.broker_ok.store(true, Ordering::Relaxed);
        p.run(pipe_stop)
    })?;

    let publisher = Publisher::new(&cfg.kafka, store.clone(), health.clone(), notify.clone())?;
    let pub_stop = Arc::new(AtomicBool::new(false));
    let publisher = rt.spawn(publisher.run(pub_stop.clone(), opts.shutdown_timeout / 2));
    let demo = opts.demo.then(|| rt.spawn(crate::kafka::demo::run(cfg.kafka.clone(), stop.clone())));
    drop(cmd_tx);

    // Wait for a signal, or for the pipeline to stop by itself (fatal error).
    let pipeline_done = Arc::new(tokio::sync::Notify::new());
    let pd = pipeline_done.clone();
    let watcher = std::thread::spawn(move || {
        let r = pipeline.join();
        pd.notify_one();
        r
    });
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = pipeline_done.notified() => warn!("pipeline stopped"),
        }
    });
    stop.store(true, Ordering::Relaxed);
    let deadline = opts.shutdown_timeout;
    let result = rt.block_on(async {
        let joined = tokio::time::timeout(deadline, tokio::task::spawn_blocking(move || watcher.join())).await;
        pub_stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(deadline / 2, publisher).await;
        if let Some(d) = demo {
            d.abort();
        }
        http_stop.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
        joined
    });
    drop(embedded);
    match result {
        Ok(Ok(Ok(Ok(Ok(()))))) => {
            info!("stopped cleanly");
            Ok(())
        }
        Ok(Ok(Ok(Ok(Err(e))))) => Err(e).context("pipeline failed"),
        Err(_) => {
            error!(timeout = ?deadline, "shutdown deadline passed; exiting");
            std::process::exit(1);
        }
        _ => anyhow::bail!("pipeline thread panicked"),
    }
}
