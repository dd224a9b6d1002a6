//! The `correlator` command line: parses the arguments and calls the
//! subcommand in `correlator::cmd`. Errors are reported with their whole
//! chain (`{:#}`); configuration errors exit with 78 (EX_CONFIG).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use correlator::cmd;
use correlator::config::ConfigError;

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
    /// Run the daemon: consume alerts, keep state in redb, publish incidents.
    Run(cmd::run::RunArgs),
    /// Try it out: the daemon on an embedded broker with sample alerts, and
    /// its incident events printed as they happen, in one terminal.
    Demo(cmd::demo::DemoArgs),
    /// Run a recorded JSONL alert stream through the engine and write the
    /// resulting incidents, problems, rejections and a summary.
    Replay(cmd::replay::ReplayArgs),
    /// List, show, acknowledge or resolve incidents (through the HTTP API).
    Incidents {
        #[command(flatten)]
        api: cmd::client::ApiArgs,
        #[command(subcommand)]
        cmd: cmd::incidents::IncidentsCmd,
    },
    /// Review problem candidates and record known errors (through the HTTP API).
    Problems {
        #[command(flatten)]
        api: cmd::client::ApiArgs,
        #[command(subcommand)]
        cmd: cmd::problems::ProblemsCmd,
    },
    /// Produce alert JSON lines (alert bodies or replay records) to a topic.
    Send(cmd::send::SendArgs),
    /// Print incident events from the incidents topic as they arrive.
    Tail(cmd::tail::TailArgs),
    /// Mine templates from a text file (one message per line) into a CSV
    /// `LineId,ClusterId,Template`.
    Mine(cmd::mine::MineArgs),
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
    /// Print the shell completion script (e.g. `correlator completions bash
    /// > /etc/bash_completion.d/correlator`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `correlator man > correlator.1`.
    Man,
}

const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    tune_memory();
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => cmd::logging::init(
            a.log_format == cmd::run::LogFormat::Json,
            "info,rdkafka=warn",
        ),
        // The events are the output: the daemon's own lines only when wrong.
        Command::Demo(_) => cmd::logging::init(false, "warn,rdkafka=error"),
        _ => cmd::logging::init(false, "info,rdkafka=warn"),
    }
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ok = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Run(a) => cmd::run::run(a).map(ok),
        Command::Demo(a) => cmd::demo::run(a).map(ok),
        Command::Replay(a) => cmd::replay::run(&a).map(ok),
        Command::Incidents { api, cmd } => cmd::incidents::run(&api, cmd).map(ok),
        Command::Problems { api, cmd } => cmd::problems::run(&api, cmd).map(ok),
        Command::Send(a) => Ok(if cmd::send::run(a)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Tail(a) => cmd::tail::run(&a).map(|_| ExitCode::SUCCESS),
        Command::Mine(a) => {
            let report = cmd::mine::run(&a)?;
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
            println!("{}", cmd::check_config::run(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            cmd::completions::completions(shell, &mut Cli::command(), &mut out).map(ok)
        }
        Command::Man => {
            cmd::completions::man(Cli::command(), &mut std::io::stdout().lock()).map(ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (duplicate flags, bad defaults).
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
