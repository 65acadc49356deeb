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
    /// How it is reached (TLS settings, `Authorization`); plain for the local node.
    pub(super) transport: Arc<Transport>,
    /// The node_id the target reported last: its identity, kept across restarts.
    pub(super) node_id: Option<String>,
    /// What pulling it built up. Boxed and absent until it is first pulled (or dropped
    /// when another member observes it): most members of a large federation are never
    /// pulled by this sidecar, and cost only the fields above (issue 19).
    pulls: Option<Box<Pulls>>,
}

/// A pulled target's counters, window and latest summary.
pub(super) struct Pulls {
    pub(super) summary_url: Url,
    pub(super) window: Window,
    pub(super) polls_total: u64,
    pub(super) failures_total: [u64; FailureReason::ALL.len()],
    pub(super) durations: Histogram,
    /// When the counters above started from zero (they are not checkpointed).
    pub(super) counters_created_at: SystemTime,
    pub(super) up: bool,
    pub(super) last_success: Option<(Instant, SystemTime)>,
    pub(super) last_error: Option<PullError>,
    pub(super) latest: Option<Latest>,
}

impl Pulls {
    fn new(url: &Url, settings: &Settings) -> Box<Self> {
        Box::new(Pulls {
            summary_url: summary_url(url),
            window: Window::new(settings.window, settings.interval),
            polls_total: 0,
            failures_total: [0; FailureReason::ALL.len()],
            durations: Histogram::default(),
            counters_created_at: SystemTime::now(),
            up: false,
            last_success: None,
            last_error: None,
            latest: None,
        })
    }
}

pub(super) struct Latest {
    pub(super) summary: Summary,
    pub(super) clock_skew_seconds: f64,
}

impl Target {
    pub(super) fn new(id: TargetId, label: String, url: Url) -> Self {
        Target {
            id,
            transport: Arc::default(),
            label,
            url,
            node_id: None,
            pulls: None,
        }
    }

    pub(super) fn pulls(&self) -> Option<&Pulls> {
        self.pulls.as_deref()
    }

    /// The pull state, made empty if there is none yet.
    pub(super) fn pulls_mut(&mut self, settings: &Settings) -> &mut Pulls {
        self.pulls
            .get_or_insert_with(|| Pulls::new(&self.url, settings))
    }

    pub(super) fn pulls_mut_if_any(&mut self) -> Option<&mut Pulls> {
        self.pulls.as_deref_mut()
    }

    /// Forgets what pulling built up (another member observes this one now).
    pub(super) fn drop_pulls(&mut self) {
        self.pulls = None;
    }

    pub(super) fn up(&self) -> bool {
        self.pulls().is_some_and(|p| p.up)
    }

    pub(super) fn latest(&self) -> Option<&Latest> {
        self.pulls()?.latest.as_ref()
    }

    pub(super) fn last_success(&self) -> Option<(Instant, SystemTime)> {
        self.pulls()?.last_success
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
            summary_url: self
                .pulls()
                .map_or_else(|| summary_url(&self.url), |p| p.summary_url.clone()),
            transport: Arc::clone(&self.transport),
        }
    }

    pub(super) fn record(&mut self, outcome: PullOutcome, settings: &Settings) {
        let label = &self.label;
        let pulls = self
            .pulls
            .get_or_insert_with(|| Pulls::new(&self.url, settings));
        pulls.polls_total += 1;
        pulls.durations.observe(outcome.duration.as_secs_f64());
        let received = outcome.started + outcome.duration;
        let failure = outcome.result.as_ref().err().map(|e| e.reason);
        pulls
            .window
            .push(Sample::new(outcome.started, outcome.duration, failure));
        match outcome.result {
            Ok(summary) => {
                if !pulls.up {
                    tracing::info!(target_label = %label, node_id = %summary.node_id, "pull succeeded");
                }
                let received_unix = unix_seconds(outcome.received_at);
                pulls.up = true;
                pulls.last_success = Some((received, outcome.received_at));
                pulls.last_error = None;
                if self.node_id.as_deref() != Some(summary.node_id.as_str()) {
                    self.node_id = Some(summary.node_id.clone());
                }
                pulls.latest = Some(Latest {
                    clock_skew_seconds: summary.timestamp - received_unix,
                    summary,
                });
            }
            Err(error) => {
                // One line when a target goes down or fails differently; repeats at debug.
                let changed =
                    pulls.up || pulls.last_error.as_ref().map(|e| e.reason) != Some(error.reason);
                if changed {
                    tracing::warn!(target_label = %label, reason = %error.reason, detail = %error.detail, "pull failed");
                } else {
                    tracing::debug!(target_label = %label, reason = %error.reason, detail = %error.detail, "pull failed again");
                }
                pulls.up = false;
                pulls.failures_total[error.reason.index()] += 1;
                pulls.last_error = Some(error);
            }
        }
    }

    pub(super) fn is_live(&self, now: Instant, live_max_age: Duration) -> bool {
        self.last_success()
            .is_some_and(|(at, _)| now.saturating_duration_since(at) <= live_max_age)
    }

    /// The latest state root, if it is known and was received within `live_max_age`.
    pub(super) fn fresh_root(&self, now: Instant, live_max_age: Duration) -> Option<&str> {
        if !self.is_live(now, live_max_age) {
            return None;
        }
        self.latest()?.summary.state_root.as_deref()
    }

    /// What the figures show of it. A target never pulled shows empty counters that
    /// started now.
    pub(super) fn view(&self, now: Instant, live_max_age: Duration) -> TargetView {
        let pulls = self.pulls();
        let latest = self.latest();
        TargetView {
            label: self.label.clone(),
            url: self.url.to_string(),
            up: self.up(),
            live: self.is_live(now, live_max_age),
            polls_total: pulls.map_or(0, |p| p.polls_total),
            counters_created_at: unix_seconds(
                pulls.map_or_else(SystemTime::now, |p| p.counters_created_at),
            ),
            failures_total: pulls.map_or([0; FailureReason::ALL.len()], |p| p.failures_total),
            durations: pulls.map(|p| p.durations.clone()).unwrap_or_default(),
            last_success_timestamp_seconds: self.last_success().map(|(_, wall)| unix_seconds(wall)),
            last_error: pulls.and_then(|p| p.last_error.clone()),
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
        let mut target = Target::new(TargetId(1), "a".into(), url);
        let start = Instant::now();
        target.record(answered("id-a", "root-1", start), &settings);
        assert!(target.up());
        assert_eq!(
            target.fresh_root(start, settings.live_max_age),
            Some("root-1")
        );

        target.record(failed(FailureReason::Timeout, start), &settings);
        assert!(!target.up());
        let pulls = target.pulls().unwrap();
        assert_eq!(pulls.polls_total, 2);
        assert_eq!(pulls.failures_total[FailureReason::Timeout.index()], 1);
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
