//! The sidecar's own operations — configuration loads and reloads, checkpoint restores and
//! writes — counted for `/metrics` and described for `/status`.

use crate::config::web::WebConfig;
use crate::pull::assignment::fnv1a64;
use crate::sync;
use std::sync::{Arc, Mutex, MutexGuard};

/// Shared handle; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Operations {
    shared: Arc<Mutex<OperationsState>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OperationsState {
    pub(crate) config: ConfigStatus,
    pub(crate) checkpoint: CheckpointStatus,
    pub(crate) server: ServerStatus,
}

/// The HTTP server's own limits at work.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ServerStatus {
    /// Connections closed because the connection limit was reached (the oldest idle one,
    /// or the new one when every connection was inside a request).
    pub(crate) connections_shed_total: u64,
    /// bcrypt checks run for basic auth (remembered pairs need none).
    pub(crate) basic_auth_checks_total: u64,
    /// Requests of clients with too many failed logins, answered 429 without a check.
    pub(crate) basic_auth_throttled_total: u64,
    /// Requests answered, by handler and status code (`/metrics` only: JSON keys must be
    /// strings).
    #[serde(skip)]
    pub(crate) requests_total: std::collections::BTreeMap<(&'static str, u16), u64>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ConfigStatus {
    /// The file the configuration came from, if any.
    pub(crate) source: Option<String>,
    /// FNV-1a hash of the configuration in force (after all sources were merged).
    pub(crate) hash: String,
    /// Unix time the configuration in force was loaded.
    pub(crate) loaded_at: f64,
    pub(crate) reloads_total: u64,
    pub(crate) reload_failures_total: u64,
    pub(crate) last_reload_successful: bool,
    pub(crate) last_reload_success_at: f64,
    pub(crate) last_error: Option<String>,
    /// The web configuration in force: TLS settings and user names (never hashes).
    pub(crate) web: WebConfig,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct CheckpointStatus {
    pub(crate) path: Option<String>,
    /// What happened at start: restored, fresh, or moved aside.
    pub(crate) restore: Option<String>,
    pub(crate) restore_failures_total: u64,
    pub(crate) writes_total: u64,
    pub(crate) write_failures_total: u64,
    pub(crate) last_success_at: Option<f64>,
    pub(crate) last_error: Option<String>,
}

impl Operations {
    pub(crate) fn lock(&self) -> MutexGuard<'_, OperationsState> {
        // std Mutex: held only to copy or bump a few fields.
        sync::lock(&self.shared)
    }

    pub(crate) fn snapshot(&self) -> OperationsState {
        self.lock().clone()
    }
}

/// FNV-1a, 64 bits, as hex: a fast checksum against corruption (not against tampering).
pub(crate) fn fnv1a_hex(bytes: &[u8]) -> String {
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
