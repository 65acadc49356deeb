//! The `peerscope-lab` binary: the demo and the measured runs, built on the product crate.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use peerscope::config::duration::parse_duration;
use peerscope::config::keys;
use peerscope::config::{LogColor, LogFormat};
use peerscope::ops::{logging, shutdown};
use peerscope_lab::{bench, confirmation, demo, faults, split};

#[derive(Parser)]
#[command(
    name = "peerscope-lab",
    version,
    propagate_version = true,
    about = "peerscope's lab: a simulated federation on loopback, and the measured runs"
)]
enum Command {
    /// Run a simulated federation on loopback with a real sidecar, and show what it sees.
    Demo {
        /// Address of the demo sidecar's HTTP server.
        #[arg(long, default_value = keys::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Stop after this long (e.g. 30s); runs until Ctrl-C when absent.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Measure the real sidecar (the `peerscope` binary beside this one, or PEERSCOPE_BIN)
    /// against N simulated peers and print CPU, memory and scrape figures; `bench
    /// federation` runs a whole federation.
    Bench(BenchCommand),
    /// The bench's floor: a bare client pulling the summaries at the URLs of a file (one a
    /// line) every interval; prints the pulls done after each round. Run by `bench`.
    #[command(hide = true)]
    Floor {
        #[arg(long)]
        urls_file: std::path::PathBuf,
        #[arg(long, value_parser = parse_duration)]
        interval: Duration,
        #[arg(long, value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchCommand {
    #[command(subcommand)]
    scenario: Option<BenchScenario>,
    #[command(flatten)]
    sidecar: bench::BenchArgs,
}

#[derive(Subcommand)]
enum BenchScenario {
    /// N simulated nodes, N real sidecars (K observers per peer), Prometheus shards and a
    /// global, Alertmanager; injects faults and prints pulls, series, memory and verdicts.
    Federation(bench::FederationArgs),
    /// The fault campaign: the real sidecar through hostile files, clients, a hanging node
    /// API, a full or read-only checkpoint directory, SIGSTOP and kill -9; prints a table.
    Faults(faults::FaultArgs),
    /// The reconciliation confirmation's guarantees, by simulation of the real decision
    /// code: one node of a split federation per trial, N up to 100,000; prints the table.
    Confirmation(confirmation::ConfirmationArgs),
    /// A split federation with reconciliation on: N simulated nodes that keep their roots
    /// and N real sidecars; prints who asked to reconcile, when, and the pulls per second.
    Split(split::SplitArgs),
}

fn main() -> ExitCode {
    let command = Command::parse();
    // The floor runs on its own runtime, a current-thread one, as a bare client would.
    if let Command::Floor {
        urls_file,
        interval,
        timeout,
    } = &command
    {
        let urls = match std::fs::read_to_string(urls_file) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", urls_file.display());
                return ExitCode::FAILURE;
            }
        };
        return match peerscope_lab::floor::run(urls, *interval, *timeout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Demo { listen, duration } => {
            logging::init(LogFormat::Text, "error", LogColor::Auto);
            let token = CancellationToken::new();
            shutdown::cancel_on_signals(token.clone())
                .map_err(|error| format!("cannot watch for signals: {error}"))?;
            demo::run(demo::DemoOptions { listen, duration }, token).await?;
        }
        Command::Bench(command) => {
            logging::init(LogFormat::Text, "warn", LogColor::Auto);
            match command.scenario {
                None => bench::run(command.sidecar).await?,
                Some(BenchScenario::Federation(args)) => bench::run_federation(args).await?,
                Some(BenchScenario::Faults(args)) => faults::run(args).await?,
                Some(BenchScenario::Confirmation(args)) => confirmation::print(&args)?,
                Some(BenchScenario::Split(args)) => split::run(args).await?,
            }
        }
        Command::Floor { .. } => unreachable!("run before the runtime starts"),
    }
    Ok(())
}
