//! A fixed-bucket histogram of pull durations, kept as plain counts.

/// Upper bounds of the buckets of `peer_poll_duration_seconds`, in seconds.
pub(crate) const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    pub(crate) fn observe(&mut self, seconds: f64) {
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
    }

    /// Cumulative counts per bucket, `+Inf` last (as exposition wants them).
    pub(crate) fn cumulative(&self) -> [u64; BUCKETS.len() + 1] {
        let mut running = 0;
        self.counts.map(|count| {
            running += count;
            running
        })
    }

    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let mut histogram = Histogram::default();
        for seconds in [0.005, 0.02, 0.3, 30.0] {
            histogram.observe(seconds);
        }
        let cumulative = histogram.cumulative();
        assert_eq!(cumulative[0], 1);
        assert_eq!(cumulative[2], 2);
        assert_eq!(cumulative[6], 3);
        assert_eq!(cumulative[10], 3);
        assert_eq!(cumulative[11], 4);
        assert_eq!(histogram.count(), 4);
        assert!((histogram.sum() - 30.325).abs() < 1e-12);
    }
}
