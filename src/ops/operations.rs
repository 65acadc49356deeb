//! The sidecar's own operations — configuration loads and reloads, checkpoint restores and
//! writes — counted for `/metrics` and described for `/status`.

use crate::config::web::WebConfig;
use crate::pull::assignment::fnv1a64;
use crate::sync;
use std::sync::{Arc, Mutex, MutexGuard};

/// Shared handle; cheap to clone.
#[derive(Clone, Default)]
pub struct Operations {
    shared: Arc<Mutex<OperationsState>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OperationsState {
    pub config: ConfigStatus,
    pub checkpoint: CheckpointStatus,
    pub server: ServerStatus,
}

/// The HTTP server's own limits at work.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ServerStatus {
    /// Connections closed because the connection limit was reached (the oldest idle one,
    /// or the new one when every connection was inside a request).
    pub connections_shed_total: u64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ConfigStatus {
    /// The file the configuration came from, if any.
    pub source: Option<String>,
    /// FNV-1a hash of the configuration in force (after all sources were merged).
    pub hash: String,
    /// Unix time the configuration in force was loaded.
    pub loaded_at: f64,
    pub reloads_total: u64,
    pub reload_failures_total: u64,
    pub last_reload_successful: bool,
    pub last_reload_success_at: f64,
    pub last_error: Option<String>,
    /// The web configuration in force: TLS settings and user names (never hashes).
    pub web: WebConfig,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CheckpointStatus {
    pub path: Option<String>,
    /// What happened at start: restored, fresh, or moved aside.
    pub restore: Option<String>,
    pub restore_failures_total: u64,
    pub writes_total: u64,
    pub write_failures_total: u64,
    pub last_success_at: Option<f64>,
    pub last_error: Option<String>,
}

impl Operations {
    pub fn lock(&self) -> MutexGuard<'_, OperationsState> {
        // std Mutex: held only to copy or bump a few fields.
        sync::lock(&self.shared)
    }

    pub fn snapshot(&self) -> OperationsState {
        self.lock().clone()
    }
}

/// FNV-1a, 64 bits, as hex: a fast checksum against corruption (not against tampering).
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a_hex(b""), "cbf29ce484222325");
        assert_eq!(fnv1a_hex(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a_hex(b"foobar"), "85944171f73967e8");
    }
}
