//! One pulled target (the local node or a peer): its counters, window, latest summary
//! and identity, and how one pull's outcome changes them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio::time::Instant;

use super::Settings;
use crate::config::transport::Transport;
use crate::figures::histogram::Histogram;
use crate::figures::view::TargetView;
use crate::figures::window::{Sample, Window};
use crate::pull::contract::{summary_url, Summary};
use crate::pull::failure::{FailureReason, PullError};
use crate::pull::outcome::{PullOutcome, PullTarget, TargetId};
use crate::timeline::unix_seconds;

pub(super) struct Target {
    pub(super) id: TargetId,
    pub(super) label: String,
    pub(super) url: Url,
    pub(super) summary_url: Url,
    /// How it is reached (TLS settings, `Authorization`); plain for the local node.
    pub(super) transport: Arc<Transport>,
    pub(super) window: Window,
    pub(super) polls_total: u64,
    pub(super) failures_total: [u64; FailureReason::ALL.len()],
    pub(super) durations: Histogram,
    /// When the counters above started from zero (they are not checkpointed).
    pub(super) counters_created_at: SystemTime,
    pub(super) up: bool,
    pub(super) last_success: Option<(Instant, SystemTime)>,
    pub(super) last_error: Option<PullError>,
    /// Boxed: most members of a large federation are never pulled by this sidecar.
    pub(super) latest: Option<Box<Latest>>,
    /// The node_id the target reported last: its identity, kept across restarts.
    pub(super) node_id: Option<String>,
}

pub(super) struct Latest {
    pub(super) summary: Summary,
    pub(super) clock_skew_seconds: f64,
}

impl Target {
    pub(super) fn new(id: TargetId, label: String, url: Url, settings: &Settings) -> Self {
        Target {
            id,
            summary_url: summary_url(&url),
            transport: Arc::default(),
            label,
            url,
            window: Window::new(settings.window, settings.interval),
            polls_total: 0,
            failures_total: [0; FailureReason::ALL.len()],
            durations: Histogram::default(),
            counters_created_at: SystemTime::now(),
            up: false,
            last_success: None,
            last_error: None,
            latest: None,
            node_id: None,
        }
    }

    /// Takes `transport` for the pulls to come; switching verification off is said loudly.
    pub(super) fn set_transport(&mut self, transport: &Arc<Transport>) {
        if transport.access.insecure_skip_verify == Some(true) {
            tracing::warn!(peer = %self.label, "insecure_skip_verify: this peer's TLS certificate is NOT verified; anyone on the path can impersonate it");
        }
        self.transport = Arc::clone(transport);
    }

    pub(super) fn pull_target(&self) -> PullTarget {
        PullTarget {
            id: self.id,
            label: self.label.clone(),
            summary_url: self.summary_url.clone(),
            transport: Arc::clone(&self.transport),
        }
    }

    pub(super) fn record(&mut self, outcome: PullOutcome) {
        self.polls_total += 1;
        self.durations.observe(outcome.duration.as_secs_f64());
        let received = outcome.started + outcome.duration;
        let failure = outcome.result.as_ref().err().map(|e| e.reason);
        self.window
            .push(Sample::new(outcome.started, outcome.duration, failure));
        match outcome.result {
            Ok(summary) => {
                if !self.up {
                    tracing::info!(target_label = %self.label, node_id = %summary.node_id, "pull succeeded");
                }
                let received_unix = unix_seconds(outcome.received_at);
                self.up = true;
                self.last_success = Some((received, outcome.received_at));
                self.last_error = None;
                self.node_id = Some(summary.node_id.clone());
                self.latest = Some(Box::new(Latest {
                    clock_skew_seconds: summary.timestamp - received_unix,
                    summary,
                }));
            }
            Err(error) => {
                // One line when a target goes down or fails differently; repeats at debug.
                let changed =
                    self.up || self.last_error.as_ref().map(|e| e.reason) != Some(error.reason);
                if changed {
                    tracing::warn!(target_label = %self.label, reason = %error.reason, detail = %error.detail, "pull failed");
                } else {
                    tracing::debug!(target_label = %self.label, reason = %error.reason, detail = %error.detail, "pull failed again");
                }
                self.up = false;
                self.failures_total[error.reason.index()] += 1;
                self.last_error = Some(error);
            }
        }
    }

    pub(super) fn is_live(&self, now: Instant, live_max_age: Duration) -> bool {
        self.last_success
            .is_some_and(|(at, _)| now.saturating_duration_since(at) <= live_max_age)
    }

    /// The latest state root, if it is known and was received within `live_max_age`.
    pub(super) fn fresh_root(&self, now: Instant, live_max_age: Duration) -> Option<&str> {
        if !self.is_live(now, live_max_age) {
            return None;
        }
        self.latest.as_ref()?.summary.state_root.as_deref()
    }

    pub(super) fn view(&self, now: Instant, live_max_age: Duration) -> TargetView {
        let latest = self.latest.as_ref();
        TargetView {
            label: self.label.clone(),
            url: self.url.to_string(),
            up: self.up,
            live: self.is_live(now, live_max_age),
            polls_total: self.polls_total,
            counters_created_at: unix_seconds(self.counters_created_at),
            failures_total: self.failures_total,
            durations: self.durations.clone(),
            last_success_timestamp_seconds: self.last_success.map(|(_, wall)| unix_seconds(wall)),
            last_error: self.last_error.clone(),
            node_id: self.node_id.clone(),
            state_root: latest.and_then(|l| l.summary.state_root.clone()),
            state_height: latest.and_then(|l| l.summary.state_height),
            g_star: latest.map(|l| l.summary.metrics.g_star()),
            reported: latest
                .map(|l| l.summary.metrics.present().collect())
                .unwrap_or_default(),
            clock_skew_seconds: latest.map(|l| l.clock_skew_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{answered, config, failed};
    use super::*;
    use crate::config::url_without_scheme;

    #[test]
    fn the_node_label_is_the_url_without_scheme_or_trailing_slash() {
        let url = Url::parse("https://nova-a.example:8443/").unwrap();
        assert_eq!(url_without_scheme(&url), "nova-a.example:8443");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_after_a_success_counts_and_keeps_identity_until_the_root_goes_stale() {
        let settings = Settings::from(&config(&[], &[("live_max_age", "90s")]));
        let url = Url::parse("http://127.0.0.1:2").unwrap();
        let mut target = Target::new(TargetId(1), "a".into(), url, &settings);
        let start = Instant::now();
        target.record(answered("id-a", "root-1", start));
        assert!(target.up);
        assert_eq!(
            target.fresh_root(start, settings.live_max_age),
            Some("root-1")
        );

        target.record(failed(FailureReason::Timeout, start));
        assert!(!target.up);
        assert_eq!(target.polls_total, 2);
        assert_eq!(target.failures_total[FailureReason::Timeout.index()], 1);
        assert_eq!(target.node_id.as_deref(), Some("id-a"));
        // Still live within live_max_age of the last success; stale after it.
        assert!(target
            .fresh_root(start + Duration::from_secs(90), settings.live_max_age)
            .is_some());
        let later = start + Duration::from_secs(91);
        assert_eq!(target.fresh_root(later, settings.live_max_age), None);
        let view = target.view(later, settings.live_max_age);
        assert!(!view.live && !view.up);
        assert_eq!(view.state_root.as_deref(), Some("root-1"));
        assert_eq!(view.last_error.unwrap().reason, FailureReason::Timeout);
    }
}
