//! The daemon behind `correlator run`: wires the store, the pipeline thread, the outbox
//! publisher and the HTTP server together, and shuts them down in order on
//! SIGINT/SIGTERM: stop fetching → finish the batch in hand (committed) →
//! flush the outbox → exit, all under `--shutdown-timeout`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::engine::EngineConfig;
use crate::kafka::consumer::{Command, Pipeline};
use crate::kafka::publisher::Publisher;
use crate::kafka::Health;
use crate::store::Store;

/// How the pipeline thread ended: its result, or its panic.
type PipelineExit = std::thread::Result<Result<(), crate::kafka::KafkaError>>;

/// A running daemon (also what the integration tests drive in process).
pub struct Daemon {
    rt: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    pub_stop: Arc<AtomicBool>,
    http_stop: Arc<tokio::sync::Notify>,
    http: tokio::task::JoinHandle<()>,
    publisher: tokio::task::JoinHandle<()>,
    demo: Option<tokio::task::JoinHandle<Result<(), crate::kafka::KafkaError>>>,
    watcher: std::thread::JoinHandle<PipelineExit>,
    pipeline_done: Arc<tokio::sync::Notify>,
    shutdown_timeout: Duration,
    /// Where the HTTP server listens (resolved when `http.listen` has port 0).
    pub http_addr: std::net::SocketAddr,
    pub health: Arc<Health>,
    /// Operator commands into the pipeline (the API's write path).
    pub commands: std::sync::mpsc::Sender<Command>,
}

impl Daemon {
    pub fn start(
        cfg: Config,
        engine_cfg: EngineConfig,
        embedded_mode: bool,
        demo: bool,
        shutdown_timeout: Duration,
    ) -> anyhow::Result<Daemon> {
        // Before anything else: a blank token is a mistake, not "no token".
        let token = crate::http::token_from_env(&cfg.http.token_env)?;
        let mut store = Store::open_with_cache(&cfg.store.path, cfg.store.cache_bytes())?;
        if let Some((before, after)) = store.compact_if_worth_it()? {
            info!(
                store = %cfg.store.path.display(),
                bytes_before = before.file_bytes,
                bytes_after = after.file_bytes,
                "store compacted"
            );
        }
        let store = Arc::new(store);
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
        let http_addr = listener.local_addr()?;
        info!(listen = %http_addr, "http listening");
        let http_stop = Arc::new(tokio::sync::Notify::new());
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let metrics_pub = metrics.clone();
        let read_model = Arc::new(crate::read_model::ReadModel::default());
        if token.is_none() {
            warn!(env = %cfg.http.token_env, "no API token set: mutating API calls are refused");
        }
        let webhook = crate::http::webhook::Webhook {
            producer: crate::kafka::producer_config(&cfg.kafka, cfg.limits.max_record_bytes)
                .create()?,
            topic: cfg
                .kafka
                .alert_topics
                .first()
                .cloned()
                .unwrap_or_else(|| "alerts".into()),
            partition_key: cfg.kafka.partition_key.clone(),
            limits: cfg.limits.clone(),
            await_commit: embedded_mode,
        };
        let state = Arc::new(crate::http::AppState {
            health: health.clone(),
            metrics: metrics.clone(),
            read_model: read_model.clone(),
            store: store.clone(),
            commands: cmd_tx.clone(),
            token,
            webhook: Some(webhook),
        });
        let app = crate::http::router(
            state,
            crate::http::BodyLimits {
                max_bytes: cfg.http.max_body_bytes,
                timeout: cfg.http.body_timeout.0,
            },
        );
        let server_limits = crate::http::server::ServerLimits {
            header_timeout: cfg.http.header_timeout.0,
            max_connections: cfg.http.max_connections,
        };
        let hs = http_stop.clone();
        let http = rt.spawn(crate::http::server::serve(
            listener,
            app,
            server_limits,
            async move { hs.notified().await },
        ));

        // The pipeline thread owns the engine, the consumer and the batch loop.
        let pipe_stop = stop.clone();
        let (pcfg, pstore, phealth, pnotify) =
            (cfg.clone(), store.clone(), health.clone(), notify.clone());
        let pipeline = std::thread::Builder::new().name("correlator-pipeline".into()).spawn(
            move || {
                let mut p = Pipeline::new(
                    engine,
                    pstore,
                    pcfg,
                    phealth.clone(),
                    pnotify,
                    cmd_rx,
                    metrics,
                    read_model,
                    embedded_mode,
                )?;
                // The broker may be down at start: keep state, report not ready, retry.
                let mut backoff = Duration::from_millis(200);
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
            },
        )?;
        let pipeline_done = Arc::new(tokio::sync::Notify::new());
        let pd = pipeline_done.clone();
        let watcher = std::thread::spawn(move || {
            let r = pipeline.join();
            pd.notify_one();
            r
        });

        let publisher = Publisher::new(
            &cfg.kafka,
            cfg.limits.max_record_bytes,
            store.clone(),
            health.clone(),
            notify.clone(),
            metrics_pub,
        )?;
        let pub_stop = Arc::new(AtomicBool::new(false));
        let publisher = rt.spawn(publisher.run(pub_stop.clone(), shutdown_timeout / 2));
        let demo =
            demo.then(|| rt.spawn(crate::cmd::demo::traffic(cfg.kafka.clone(), stop.clone())));
        Ok(Daemon {
            rt,
            stop,
            pub_stop,
            http_stop,
            http,
            publisher,
            demo,
            watcher,
            pipeline_done,
            shutdown_timeout,
            http_addr,
            health,
            commands: cmd_tx,
        })
    }

    /// Blocks until SIGINT, SIGTERM, or the pipeline stopping by itself.
    pub fn wait_for_signal(&self) {
        self.rt.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        error!(error = %e, "cannot install the SIGTERM handler");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
                _ = term.recv() => info!("SIGTERM: shutting down"),
                _ = self.pipeline_done.notified() => warn!("pipeline stopped"),
            }
        });
    }

    /// Stops fetching, lets the batch in hand commit, flushes the outbox,
    /// stops HTTP; all within the shutdown timeout.
    pub fn shutdown(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = self.shutdown_timeout;
        let watcher = self.watcher;
        let (pub_stop, publisher, demo, http_stop, http) = (
            self.pub_stop,
            self.publisher,
            self.demo,
            self.http_stop,
            self.http,
        );
        let result = self.rt.block_on(async {
            let joined = tokio::time::timeout(
                deadline,
                tokio::task::spawn_blocking(move || watcher.join()),
            )
            .await;
            pub_stop.store(true, Ordering::Relaxed);
            let _ = tokio::time::timeout(deadline / 2, publisher).await;
            if let Some(d) = demo {
                d.abort();
            }
            http_stop.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
            joined
        });
        self.rt.shutdown_timeout(Duration::from_secs(1));
        match result {
            Ok(Ok(Ok(Ok(Ok(()))))) => {
                info!("stopped cleanly");
                Ok(())
            }
            Ok(Ok(Ok(Ok(Err(e))))) => Err(e).context("pipeline failed"),
            Err(_) => anyhow::bail!("shutdown deadline of {deadline:?} passed"),
            _ => anyhow::bail!("pipeline thread panicked"),
        }
    }
}
