//! The `correlator` command line. Errors are reported with their whole
//! chain (`{:#}`); configuration errors exit with 78 (EX_CONFIG).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use correlator::config::{Config, ConfigError};
use correlator::engine::{Engine, EngineConfig};

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
    /// Validate a configuration file and print every problem found.
    CheckConfig {
        /// The TOML file.
        config: PathBuf,
    },
}

const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_engine(path: &PathBuf) -> anyhow::Result<Engine> {
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
