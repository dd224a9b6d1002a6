//! The `correlator` command line. Errors are reported with their whole
//! chain (`{:#}`); configuration errors exit with 78 (EX_CONFIG).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use correlator::config::{Config, ConfigError};
use correlator::engine::{Engine, EngineConfig};

/// mimalloc: the daemon allocates and frees large batches (tens of
/// thousands of records and their state) many times a second, where it
/// measured faster than the system allocator and returns memory less eagerly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its option enum, v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS after 10 s unused instead of 1 s: a
/// backlog is read in batches a few hundred ms apart, and re-faulting the
/// memory of each measured ~10 % of the daemon's CPU. An idle daemon still
/// shrinks. `MIMALLOC_PURGE_DELAY` in the environment wins.
///
/// Transparent huge pages are switched off for the process (as Redis and
/// most databases advise): a fresh 2 MiB page is zeroed, and on a virtual
/// machine backed, on first touch, which measured ~20 % of the daemon's CPU
/// reading a 1M-record backlog (4 KiB pages: a third less CPU in all) and
/// stalls whoever allocates it, against a TLB gain this workload does not
/// show. `MIMALLOC_ALLOW_THP=1` in the environment keeps them.
///
/// The crate's `unsafe`: an FFI setter with no pointers and one `prctl`.
#[allow(unsafe_code)]
fn tune_memory() {
    // SAFETY: plain FFI setter, called first in `main`, before any thread
    // is started (mimalloc documents it as not thread safe).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with integer arguments only; it sets a flag of this
        // process (inherited by children), for every mapping, existing ones
        // included. Failure (an old kernel) leaves THP as it was.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            eprintln!(
                "correlator: could not switch off transparent huge pages: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[derive(Parser)]
#[command(
    name = "correlator",
    version,
    about = "Alerts in, correlated incidents and problems out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recorded JSONL alert stream through the engine and write the
    /// resulting incidents, problems, rejections and a summary.
    Replay {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// List, show, acknowledge or resolve incidents (through the HTTP API).
    Incidents {
        #[command(flatten)]
        api: correlator::cli::ApiArgs,
        #[command(subcommand)]
        cmd: correlator::cli::IncidentsCmd,
    },
    /// Review problem candidates and record known errors (through the HTTP API).
    Problems {
        #[command(flatten)]
        api: correlator::cli::ApiArgs,
        #[command(subcommand)]
        cmd: correlator::cli::ProblemsCmd,
    },
    /// Mine templates from a text file (one message per line) into a CSV
    /// `LineId,ClusterId,Template`.
    Mine(correlator::mine::MineArgs),
    /// Give a store's free space back to the file system (stop the daemon
    /// first: compaction needs the file to itself).
    Compact {
        /// The store file (`store.path`).
        #[arg(long)]
        store: PathBuf,
    },
    /// Validate a configuration file and print every problem found.
    CheckConfig {
        /// The TOML file.
        config: PathBuf,
    },
    /// Run the daemon: consume alerts, keep state in redb, publish incidents.
    Run {
        #[arg(long, default_value = "config/correlator.toml")]
        config: PathBuf,
        /// Start an in-process Kafka-protocol broker (librdkafka's mock
        /// cluster) with the configured topics, and use it.
        #[arg(long)]
        embedded_kafka: bool,
        /// Also produce a realistic stream of sample alerts.
        #[arg(long)]
        demo: bool,
        /// Log format: pretty (for a terminal) or json.
        #[arg(long, default_value = "pretty")]
        log_format: LogFormat,
        /// Longest a graceful shutdown may take.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        shutdown_timeout: std::time::Duration,
    },
    /// Produce alert JSON lines (alert bodies or replay records) to a topic.
    Send {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value = "alerts")]
        topic: String,
        /// Label whose value keys each record (the correlation domain).
        #[arg(long, default_value = "cluster")]
        partition_key: String,
        /// Largest message (value, key and framing) the producer sends;
        /// a line over it is reported and skipped.
        #[arg(long, default_value_t = correlator::kafka::tools::DEFAULT_MAX_MESSAGE_BYTES,
              value_parser = clap::value_parser!(u32).range(1_000..=1_000_000_000))]
        max_message_bytes: u32,
        /// A JSONL file, or - for standard input.
        file: PathBuf,
    },
    /// Print incident events from the incidents topic as they arrive.
    Tail {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value = "incidents")]
        topic: String,
        /// Start from the oldest event instead of new ones only.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<usize>,
        /// Stop after this long without an event.
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<std::time::Duration>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    tune_memory();
    let cli = Cli::parse();
    let json = matches!(
        &cli.command,
        Command::Run {
            log_format: LogFormat::Json,
            ..
        }
    );
    init_logging(json);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprintln!("invalid configuration:\n{ce}");
                return ExitCode::from(EX_CONFIG);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn load_engine(path: &std::path::Path) -> anyhow::Result<Engine> {
    let cfg = Config::load(path)?;
    // `load` validated everything `compile` checks.
    let ec = EngineConfig::compile(&cfg).map_err(|issues| ConfigError::Invalid {
        file: path.display().to_string(),
        issues,
    })?;
    Ok(Engine::new(ec))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            config,
            input,
            out_dir,
        } => {
            let mut engine = load_engine(&config)?;
            let summary = correlator::replay::run(&mut engine, &input, &out_dir)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            embedded_kafka,
            demo,
            shutdown_timeout,
            ..
        } => {
            correlator::daemon::run(correlator::daemon::RunOptions {
                config,
                embedded_kafka,
                demo,
                shutdown_timeout,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Send {
            brokers,
            topic,
            partition_key,
            max_message_bytes,
            file,
        } => {
            let records = if file.as_os_str() == "-" {
                correlator::kafka::tools::read_records(std::io::stdin().lock(), &partition_key)?
            } else {
                let f = std::fs::File::open(&file)
                    .map_err(|e| anyhow::anyhow!("opening {}: {e}", file.display()))?;
                correlator::kafka::tools::read_records(std::io::BufReader::new(f), &partition_key)?
            };
            let rt = tokio::runtime::Runtime::new()?;
            let total = records.len();
            let report = rt.block_on(correlator::kafka::tools::send(
                &brokers,
                &topic,
                records,
                max_message_bytes,
            ))?;
            let source = if file.as_os_str() == "-" {
                "standard input".to_string()
            } else {
                file.display().to_string()
            };
            for n in &report.not_sent {
                eprintln!("{source}: {n}");
            }
            eprintln!("sent {} of {total} records to {topic}", report.sent);
            if report.not_sent.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: {} records not sent", report.not_sent.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Tail {
            brokers,
            topic,
            from_beginning,
            limit,
            idle,
        } => {
            correlator::kafka::tools::tail(
                &brokers,
                &topic,
                from_beginning,
                limit,
                idle,
                std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Incidents { api, cmd } => {
            correlator::cli::incidents(&api, cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Problems { api, cmd } => {
            correlator::cli::problems(&api, cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mine(args) => {
            let report = correlator::mine::run(&args)?;
            eprintln!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact { store } => {
            if !store.is_file() {
                anyhow::bail!("store {}: no such file", store.display());
            }
            let mut s = correlator::store::Store::open(&store)?;
            let before = s.space()?;
            s.compact()?;
            let after = s.space()?;
            println!(
                "{}: {} bytes -> {} bytes ({} were free)",
                store.display(),
                before.file_bytes,
                after.file_bytes,
                before.free_bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
            println!(
                "{}: ok ({} rules, {} topology services, {} alert topics)",
                config.display(),
                cfg.rules.len(),
                cfg.topology.depends_on.len(),
                cfg.kafka.alert_topics.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
