//! The `peerscope` binary: parses the command line and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use peerscope::config::duration::parse_duration;
use peerscope::config::{self, Config, LogFormat, ProcessEnvironment, Sources};
use peerscope::ops::{logging, shutdown};
use peerscope::serve::status_table;
use peerscope::sidecar;
use peerscope::sim::{bench, demo};

#[derive(Parser)]
#[command(
    name = "peerscope",
    version,
    about = "Observability sidecar and Prometheus exporter for a federation of nodes"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar (the default).
    Run(RunArgs),
    /// Run a simulated federation on loopback with a real sidecar, and show what it sees.
    Demo {
        /// Address of the demo sidecar's HTTP server.
        #[arg(long, default_value = config::defaults::LISTEN)]
        listen: std::net::SocketAddr,
        /// Stop after this long (e.g. 30s); runs until Ctrl-C when absent.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Check a configuration (and its peers file) without running anything.
    Check(RunArgs),
    /// Show a running sidecar's view as a table.
    Status {
        /// The sidecar's base URL.
        #[arg(long, default_value = "http://127.0.0.1:9478")]
        url: String,
    },
    /// Measure the real sidecar against N simulated peers and print CPU, memory and scrape figures.
    Bench(bench::BenchArgs),
}

/// The configuration flags; each overrides the environment and the file.
#[derive(Args, Clone, Default)]
struct RunArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The local node's base URL.
    #[arg(long)]
    node: Option<String>,
    /// A peer's base URL (repeatable).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Prometheus file_sd JSON file listing peers.
    #[arg(long)]
    peers_file: Option<String>,
    /// Address of the HTTP server (default 127.0.0.1:9478).
    #[arg(long)]
    listen: Option<String>,
    /// Time between cycles (default 30s).
    #[arg(long)]
    interval: Option<String>,
    /// Time limit of one pull (default 2.5s; must be shorter than the interval).
    #[arg(long)]
    timeout: Option<String>,
    /// Length of the rolling window (default 5m).
    #[arg(long)]
    window: Option<String>,
    /// A peer is live with a successful pull within this age (default 90s).
    #[arg(long)]
    live_max_age: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
    /// Log level or filter (RUST_LOG wins when set).
    #[arg(long)]
    log_level: Option<String>,
    /// Also write logs to rolling files in this directory.
    #[arg(long)]
    log_file: Option<String>,
}

impl RunArgs {
    fn load(&self) -> Result<Config, config::ConfigError> {
        let pairs = [
            ("node", &self.node, "--node"),
            ("peers_file", &self.peers_file, "--peers-file"),
            ("listen", &self.listen, "--listen"),
            ("interval", &self.interval, "--interval"),
            ("timeout", &self.timeout, "--timeout"),
            ("window", &self.window, "--window"),
            ("live_max_age", &self.live_max_age, "--live-max-age"),
            ("log_format", &self.log_format, "--log-format"),
            ("log_level", &self.log_level, "--log-level"),
            ("log_file", &self.log_file, "--log-file"),
        ];
        let flags = pairs
            .into_iter()
            .filter_map(|(key, value, flag)| value.clone().map(|v| (key, v, flag)))
            .collect();
        config::load(&Sources {
            file: self.config.as_deref(),
            flags,
            flag_peers: self.peers.clone(),
            env: &ProcessEnvironment,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => run(cli.run).await,
        Some(Command::Run(args)) => run(args).await,
        Some(Command::Check(args)) => Ok(check(&args)),
        Some(Command::Demo { listen, duration }) => {
            logging::init(LogFormat::Text, "error");
            let token = CancellationToken::new();
            shutdown::cancel_on_signals(token.clone()).context("cannot watch for signals")?;
            demo::run(demo::DemoOptions { listen, duration }, token).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Status { url }) => {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?;
            let status = status_table::fetch(&client, &url).await?;
            print!("{}", status_table::render(&status));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench(args)) => {
            logging::init(LogFormat::Text, "warn");
            bench::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match args.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    // Flushes buffered log lines when dropped, at the end of `run`.
    let _log_guard = match logging::init_with_file(&config) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let token = CancellationToken::new();
    shutdown::cancel_on_signals(token.clone()).context("cannot watch for signals")?;
    let config_file = args.config.clone();
    let loader_args = args.clone();
    let launch = sidecar::Launch {
        config,
        loader: std::sync::Arc::new(move || loader_args.load()),
        config_file,
    };
    sidecar::run(launch, listener, token).await?;
    tracing::info!("peerscope stopped");
    Ok(ExitCode::SUCCESS)
}

fn check(args: &RunArgs) -> ExitCode {
    match args.load() {
        Ok(config) => {
            println!(
                "configuration OK: node {}, {} peers, interval {:?}, timeout {:?}, window {:?}, listen {}",
                config.node,
                config.peers.len(),
                config.interval,
                config.timeout,
                config.window,
                config.listen
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
