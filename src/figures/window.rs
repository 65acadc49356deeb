//! A peer's rolling window: the pull samples of the last `window`, bounded in memory.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::pull::failure::FailureReason;
use crate::timeline::Anchor;

/// One pull, as kept in the window (contract `peer_sample@1`). 24 bytes: a full 5-minute
/// window of 1,000 peers pulled every second holds 300,000 of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When the pull started.
    pub(crate) at: Instant,
    /// How long the pull took, in microseconds (saturating at about 71 minutes).
    duration_micros: u32,
    /// Why it failed; `None` for a successful pull.
    pub(crate) failure: Option<FailureReason>,
}

/// A sample in its serialised form (`contracts/peer_sample@1.yaml`), with wall-clock time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleRecord {
    /// When the pull started, Unix seconds.
    pub(crate) at: f64,
    pub(crate) duration_seconds: f64,
    pub(crate) failure: Option<FailureReason>,
}

impl Sample {
    pub fn new(at: Instant, duration: Duration, failure: Option<FailureReason>) -> Self {
        Sample {
            at,
            duration_micros: u32::try_from(duration.as_micros()).unwrap_or(u32::MAX),
            failure,
        }
    }

    /// How long the pull took.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_micros(u64::from(self.duration_micros))
    }

    /// The serialised form.
    pub fn to_record(&self, anchor: &Anchor) -> SampleRecord {
        SampleRecord {
            at: anchor.to_unix(self.at),
            duration_seconds: self.duration().as_secs_f64(),
            failure: self.failure,
        }
    }

    /// Back from the serialised form.
    pub(crate) fn from_record(record: &SampleRecord, anchor: &Anchor) -> Self {
        Sample::new(
            anchor.to_instant(record.at),
            Duration::try_from_secs_f64(record.duration_seconds).unwrap_or_default(),
            record.failure,
        )
    }
}

/// What a window holds at a moment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WindowStats {
    pub(crate) attempts: usize,
    pub(crate) successes: usize,
    /// Durations of the successful pulls, in seconds, oldest first.
    pub(crate) success_durations: Vec<f64>,
}

/// Samples of the last `span`, oldest first. Holds at most `capacity` samples, so memory
/// stays bounded by window / interval even if pulls come faster than planned.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    samples: VecDeque<Sample>,
    span: Duration,
    capacity: usize,
}

impl Window {
    /// A window over `span` for pulls every `interval`.
    pub(crate) fn new(span: Duration, interval: Duration) -> Self {
        let capacity = (span.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
        Window {
            // Allocated at the first sample: a member this sidecar never pulls (sampled
            // observation) costs no sample buffer (issue 19: 100,000 unobserved members).
            samples: VecDeque::new(),
            span,
            capacity,
        }
    }

    /// Adds a sample and forgets what has left the window.
    pub(crate) fn push(&mut self, sample: Sample) {
        self.forget_before(sample.at);
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Drops samples that are `span` or more older than `now`.
    pub(crate) fn forget_before(&mut self, now: Instant) {
        while let Some(oldest) = self.samples.front() {
            if self.in_window(oldest, now) {
                break;
            }
            self.samples.pop_front();
        }
    }

    fn in_window(&self, sample: &Sample, now: Instant) -> bool {
        now.saturating_duration_since(sample.at) < self.span
    }

    /// Replaces the samples (restoring a checkpoint); keeps the newest that fit.
    pub(crate) fn restore(&mut self, samples: impl IntoIterator<Item = Sample>, now: Instant) {
        self.samples.clear();
        for sample in samples {
            self.push(sample);
        }
        self.forget_before(now);
    }

    /// Changes the span (a reloaded `window` or `interval`), keeping the samples that fit.
    pub(crate) fn resize(&mut self, span: Duration, interval: Duration) {
        let samples: Vec<Sample> = self.samples.drain(..).collect();
        let now = samples.last().map(|s| s.at);
        *self = Window::new(span, interval);
        for sample in samples {
            self.push(sample);
        }
        if let Some(now) = now {
            self.forget_before(now);
        }
    }

    /// The samples, oldest first.
    pub(crate) fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// Counts and successful durations of the samples inside the window at `now`.
    pub(crate) fn stats(&self, now: Instant) -> WindowStats {
        let mut stats = WindowStats {
            attempts: 0,
            successes: 0,
            success_durations: Vec::new(),
        };
        for sample in self.samples.iter().filter(|s| self.in_window(s, now)) {
            stats.attempts += 1;
            if sample.failure.is_none() {
                stats.successes += 1;
                stats
                    .success_durations
                    .push(sample.duration().as_secs_f64());
            }
        }
        stats
    }

    /// The most samples this window ever holds.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, millis: u64, failure: Option<FailureReason>) -> Sample {
        Sample::new(at, Duration::from_millis(millis), failure)
    }

    #[test]
    fn a_sample_is_small() {
        assert_eq!(std::mem::size_of::<Sample>(), 24);
    }

    #[tokio::test(start_paused = true)]
    async fn forgets_samples_older_than_the_span() {
        let start = Instant::now();
        let mut window = Window::new(Duration::from_secs(10), Duration::from_secs(1));
        window.push(sample(start, 100, None));
        window.push(sample(
            start + Duration::from_secs(5),
            200,
            Some(FailureReason::Timeout),
        ));
        let stats = window.stats(start + Duration::from_secs(9));
        assert_eq!((stats.attempts, stats.successes), (2, 1));
        let stats = window.stats(start + Duration::from_secs(10));
        assert_eq!((stats.attempts, stats.successes), (1, 0));
        window.forget_before(start + Duration::from_secs(15));
        assert_eq!(window.samples().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn never_holds_more_than_its_capacity() {
        let start = Instant::now();
        let mut window = Window::new(Duration::from_secs(300), Duration::from_secs(30));
        assert_eq!(window.capacity(), 11);
        for i in 0..100 {
            window.push(sample(start + Duration::from_millis(i), 1, None));
        }
        assert_eq!(window.samples().count(), 11);
    }
}
