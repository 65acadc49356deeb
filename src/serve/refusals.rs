//! One log line for connections and requests the server refuses — a TLS handshake that
//! failed, a connection shed at the limit, a login refused or throttled — as
//! exporter-toolkit logs a failed handshake (issue 18). Rate-limited per kind: a flood of
//! refusals must not become a flood of log lines, so at most one line per kind every
//! [`EVERY`], saying how many were left out since the last.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The shortest time between two lines of one kind.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// What was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Refusal {
    Handshake,
    ConnectionShed,
    Login,
    LoginThrottled,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::Handshake => "refused a connection: TLS handshake failed",
            Refusal::ConnectionShed => "closed a connection: connection limit reached",
            Refusal::Login => "refused a request: no valid basic auth",
            Refusal::LoginThrottled => {
                "refused a request: too many failed logins from this client (429)"
            }
        }
    }
}

/// When each kind was last logged, and how many of it were left out since.
#[derive(Default)]
pub(crate) struct Refusals {
    logged: Mutex<HashMap<Refusal, (Instant, u64)>>,
}

impl Refusals {
    /// Logs `refusal` of `remote` (with `reason`) unless one of its kind was logged within
    /// [`EVERY`]; then it is counted into the next line.
    pub(crate) fn note(&self, refusal: Refusal, remote: SocketAddr, reason: &str) {
        if let Some(left_out) = self.admit(refusal, Instant::now()) {
            tracing::warn!(%remote, reason, left_out, "{}", refusal.message());
        }
    }

    /// Whether a line may be written at `now`: `Some(lines left out since the last)`.
    fn admit(&self, refusal: Refusal, now: Instant) -> Option<u64> {
        let mut logged = crate::sync::lock(&self.logged);
        match logged.get_mut(&refusal) {
            Some((at, left_out)) if now.saturating_duration_since(*at) < EVERY => {
                *left_out += 1;
                None
            }
            Some((at, left_out)) => {
                let said = *left_out;
                *at = now;
                *left_out = 0;
                Some(said)
            }
            None => {
                logged.insert(refusal, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_kind_every_ten_seconds_counting_the_rest() {
        let refusals = Refusals::default();
        let start = Instant::now();
        assert_eq!(refusals.admit(Refusal::Handshake, start), Some(0));
        for _ in 0..500 {
            assert_eq!(refusals.admit(Refusal::Handshake, start), None);
        }
        // Another kind has its own budget.
        assert_eq!(refusals.admit(Refusal::Login, start), Some(0));
        let later = start + EVERY;
        assert_eq!(refusals.admit(Refusal::Handshake, later), Some(500));
        assert_eq!(refusals.admit(Refusal::Handshake, later), None);
    }
}
