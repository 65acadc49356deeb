//! Logs through `tracing`: logfmt or JSON (`log_format.rs`: Prometheus' keys, every value
//! escaped) on stderr, and optionally to rolling files
//! (`log_file` directory, hourly or daily, at most `log_max_files` kept) through a
//! non-blocking writer that is flushed when its guard is dropped at shutdown.
//! `RUST_LOG` overrides the configured level. Colour only where a person reads a terminal
//! (`log_color`): journald and files get plain text.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use super::log_file::RollingLog;
use super::log_format::LineFormat;
use crate::config::{Config, LogColor, LogFormat};

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// What selects the log lines: `log_filter` when set, else `log_level`.
fn configured_filter(config: &Config) -> &str {
    config.log_filter.as_deref().unwrap_or(&config.log_level)
}

/// Installs a stderr-only subscriber. `level` (a `tracing` filter) is used when
/// `RUST_LOG` is unset or invalid.
pub fn init(format: LogFormat, level: &str, color: LogColor) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_ansi(color.on_stderr())
        .with_writer(std::io::stderr);
    // Ignore "already set": tests and the demo may initialise twice in one process.
    let _ = builder.event_format(line_format(format)).try_init();
}

/// The log directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("log_file {directory}: {source}")]
pub struct LogFileError {
    pub(crate) directory: String,
    pub(crate) source: std::io::Error,
}

/// Installs stderr logging plus, when `log_file` is set, rolling files. Keep the returned
/// guard alive until shutdown: dropping it flushes the file writer.
pub fn init_with_file(config: &Config) -> Result<Option<WorkerGuard>, LogFileError> {
    let Some(directory) = &config.log_file else {
        init(
            config.log_format,
            configured_filter(config),
            config.log_color,
        );
        return Ok(None);
    };
    let appender = RollingLog::open(directory, config.log_rotation, config.log_max_files).map_err(
        |source| LogFileError {
            directory: directory.display().to_string(),
            source,
        },
    )?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let format = line_format(config.log_format);
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(config.log_color.on_stderr())
        .with_writer(std::io::stderr)
        .event_format(format);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .event_format(format);
    let _ = tracing_subscriber::registry()
        .with(filter(configured_filter(config)))
        .with(stderr)
        .with(file)
        .try_init();
    Ok(Some(guard))
}

fn line_format(format: LogFormat) -> LineFormat {
    match format {
        LogFormat::Text => LineFormat::Logfmt,
        LogFormat::Json => LineFormat::Json,
    }
}
