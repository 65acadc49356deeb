//! The `peerscope` binary: parses the command line and calls the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use peerscope::config::keys::{self, DefaultValue, Value};
use peerscope::config::{self, Config, ProcessEnvironment, Sources};
use peerscope::ops::{logging, shutdown};
use peerscope::serve::status_table;
use peerscope::sidecar;

#[derive(Parser)]
#[command(
    name = "peerscope",
    version,
    long_version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (revision ", env!("PEERSCOPE_REVISION"),
        ", rustc ", env!("PEERSCOPE_RUSTC_VERSION"),
        ", ", env!("PEERSCOPE_TARGET"),
        ", built ", env!("PEERSCOPE_BUILD_DATE"), ")"
    ),
    propagate_version = true,
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
    /// The demo lives in the lab: `cargo run --release -p peerscope-lab -- demo`.
    #[command(hide = true)]
    Demo,
    /// Check a configuration (and its peers file) without running anything.
    Check(RunArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell), made from
    /// these flags: `peerscope completions bash > /etc/bash_completion.d/peerscope`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), made from these flags: `peerscope man | man -l -`.
    Man,
    /// Show a running sidecar's view as a table.
    Status {
        /// The sidecar's base URL.
        #[arg(long, default_value = "http://127.0.0.1:9478")]
        url: String,
    },
}

/// `--config` and the configuration flags: one per key of the table that has a flag
/// (`peerscope::config::keys`), so a new key's flag needs no code here. Each overrides the
/// environment and the file.
#[derive(Clone, Default)]
struct RunArgs {
    config: Option<PathBuf>,
    /// (key name, text), in the order given.
    flags: Vec<(&'static str, String)>,
}

impl clap::Args for RunArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let config = Arg::new("config")
            .long("config")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML configuration file");
        keys::KEYS.iter().fold(command.arg(config), |command, key| {
            let Some(flag) = key.flag else {
                return command;
            };
            let default = match key.default {
                DefaultValue::Text(text) => format!(" (default {text})"),
                DefaultValue::Required | DefaultValue::Absent => String::new(),
            };
            let action = match key.value {
                Value::PeerList | Value::List(_) => ArgAction::Append,
                Value::Scalar(_) | Value::Path(_) => ArgAction::Set,
            };
            let earlier = keys::EARLIER_FLAGS
                .iter()
                .filter(|(name, _)| *name == key.name)
                .map(|(_, flag)| *flag);
            let mut arg = Arg::new(key.name)
                .long(flag)
                .aliases(earlier)
                .action(action)
                .help(format!("{}{default}", key.doc));
            // A key that is false unless said is a switch: the flag alone means true, as
            // node_exporter's `--web.disable-exporter-metrics`.
            if key.default == DefaultValue::Text("false") {
                arg = arg.num_args(0..=1).default_missing_value("true");
            }
            command.arg(arg)
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for RunArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = RunArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        for key in keys::KEYS.iter().filter(|k| k.flag.is_some()) {
            if let Some(values) = matches.get_many::<String>(key.name) {
                self.flags
                    .extend(values.map(|text| (key.name, text.clone())));
            }
        }
        Ok(())
    }
}

impl RunArgs {
    fn sources(&self) -> Sources<'_> {
        Sources {
            file: self.config.as_deref(),
            flags: self.flags.clone(),
            env: &ProcessEnvironment,
        }
    }

    fn load(&self) -> Result<Config, config::ConfigError> {
        config::load(&self.sources())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread for everything async: a sidecar's work is a burst of small pulls each
    // interval, and a multi-thread runtime spent ~12 µs a pull more on waking and parking
    // workers and moving tasks between them (issue 20). What is heavy runs on the blocking
    // pool beside it: /metrics rendering, password checks, configuration loads and
    // checkpoint writes — so a 20 MB scrape never delays a pull.
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
    // Work still on blocking threads (a password check, a stalled file read) is not
    // waited for beyond a moment: shutdown never hangs on it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
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
        Some(Command::Demo) => {
            // The sidecar binary carries no simulated nodes; say where the demo is.
            eprintln!(
                "error: the demo is not part of the sidecar binary; from the source tree run\n  cargo run --release -p peerscope-lab -- demo"
            );
            Ok(ExitCode::from(2))
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
        Some(Command::Completions { shell }) => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "peerscope", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
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
    let listener = if config.systemd_socket() {
        systemd_listener()?
    } else {
        tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?
    };
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

/// The listening socket systemd passed (socket activation: `LISTEN_FDS`, `LISTEN_PID`).
fn systemd_listener() -> anyhow::Result<tokio::net::TcpListener> {
    let listener = listenfd::ListenFd::from_env()
        .take_tcp_listener(0)
        .context("systemd_socket: the socket systemd passed is not a TCP listener")?
        .context(
            "systemd_socket: systemd passed no socket (LISTEN_FDS unset, or meant for another process); start peerscope through its .socket unit",
        )?;
    listener
        .set_nonblocking(true)
        .context("systemd_socket: cannot make the socket non-blocking")?;
    tokio::net::TcpListener::from_std(listener)
        .context("systemd_socket: cannot serve on the socket systemd passed")
}

/// Validates the configuration and prints every key's value and where it came from.
fn check(args: &RunArgs) -> ExitCode {
    match config::load_explained(&args.sources()) {
        Ok(explained) => {
            let config = &explained.config;
            // A closed pipe (`peerscope check | head`) is no error of the configuration.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "configuration OK: node {}, {} peers{}, interval {:?}, timeout {:?}, window {:?}, listen {}",
                config.node,
                config.peers.len(),
                match config.discovery_sources() {
                    0 => String::new(),
                    sources => format!(" and {sources} discovery sources"),
                },
                config.interval,
                config.timeout,
                config.window,
                config.listen
            );
            for key in keys::KEYS {
                let (text, source) = explained
                    .origins
                    .get(key.name)
                    .map_or(("(not set)", "-"), |o| (o.text.as_str(), o.source.as_str()));
                let _ = writeln!(out, "  {:<26} {text:<28} {source}", key.name);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
