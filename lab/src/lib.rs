//! peerscope's lab: simulated nodes on loopback, and the programs built on them — the
//! `demo`, the `bench` load run, the federation scale run, the fault campaign, the
//! reconciliation confirmation's simulation and the split run. The product's tests use the
//! simulated nodes too. The lab depends on the product crate, never the reverse, so the
//! sidecar binary carries none of this.

pub mod bench;
pub mod confirmation;
pub mod demo;
pub mod faults;
pub mod federation;
pub mod floor;
pub mod node;
pub mod split;

/// Why a run (the bench, a simulated federation) could not be made or measured; each
/// variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    /// The sidecar or its figures were not as a measurement needs them.
    #[error("{0}")]
    Measurement(String),
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
}

/// The product's `peerscope` binary, which the runs start as real sidecars:
/// `PEERSCOPE_BIN` if set, else `peerscope` beside this program (cargo builds both into
/// the same target directory: `cargo build --release --workspace`).
pub fn sidecar_program() -> Result<std::path::PathBuf, RunError> {
    if let Some(path) = std::env::var_os("PEERSCOPE_BIN") {
        return Ok(path.into());
    }
    let this = std::env::current_exe().map_err(io("cannot find this program"))?;
    let beside = this.with_file_name("peerscope");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(RunError::Measurement(format!(
            "the peerscope binary is not at {} (build it first with `cargo build --release --workspace`, or name it in PEERSCOPE_BIN)",
            beside.display()
        )))
    }
}

/// `map_err(io("what was being done"))`.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// `map_err(http("what was being done"))`.
pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Http { what, source }
}

/// User + system CPU seconds of a process so far, from `/proc` (clock ticks of 1/100 s).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A free port on a random loopback address (bound, read, released).
///
/// Not 127.0.0.1: a port picked there and bound again by a child process a moment
/// later can meanwhile be taken as the local port of any outgoing loopback
/// connection (a CI run lost a test that way). Nothing else uses 127.x.y.z.
pub fn free_loopback_address() -> std::io::Result<std::net::SocketAddr> {
    let ip = std::net::Ipv4Addr::new(
        127,
        fastrand::u8(1..=254),
        fastrand::u8(..),
        fastrand::u8(1..=254),
    );
    std::net::TcpListener::bind((ip, 0))?.local_addr()
}

/// [`free_loopback_address`] for the simulations.
pub(crate) fn free_port() -> Result<std::net::SocketAddr, RunError> {
    free_loopback_address().map_err(io("free port"))
}

/// The process id of a sidecar just spawned; an error if it has already exited.
pub(crate) fn pid_of(child: &tokio::process::Child) -> Result<u32, RunError> {
    child
        .id()
        .ok_or_else(|| RunError::Measurement("the sidecar exited at once".into()))
}

/// Waits up to 60 s for the sidecar at `base` to answer `/readyz` with 200.
pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(RunError::Measurement(format!(
        "the sidecar at {base} was not ready within 60s"
    )))
}
