//! Moving between the monotonic clock (windows, deadlines) and wall-clock Unix seconds
//! (exported timestamps, checkpoints).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix seconds of a wall-clock time (0 before the epoch).
pub(crate) fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The wall-clock time of Unix seconds; the epoch for values no clock can hold (negative,
/// NaN, or centuries away — a damaged checkpoint must not panic the restore).
pub(crate) fn from_unix(unix: f64) -> SystemTime {
    Duration::try_from_secs_f64(unix)
        .ok()
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .unwrap_or(UNIX_EPOCH)
}

/// `at + by` without the panic on overflow: durations are validated to at most a week,
/// and this keeps even an unvalidated one from taking the process down.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    at.checked_add(by)
        .or_else(|| at.checked_add(CENTURY))
        .unwrap_or(at)
}

/// One moment read on both clocks, to translate the one into the other.
#[derive(Clone, Copy, Debug)]
pub struct Anchor {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl Anchor {
    pub fn now() -> Self {
        Anchor {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The Unix time of a monotonic instant.
    pub(crate) fn to_unix(self, at: Instant) -> f64 {
        let base = unix_seconds(self.wall);
        if at <= self.instant {
            base - (self.instant - at).as_secs_f64()
        } else {
            base + (at - self.instant).as_secs_f64()
        }
    }

    /// The monotonic instant of a Unix time; times too far in the past clamp to the
    /// earliest instant this process can represent.
    pub(crate) fn to_instant(self, unix: f64) -> Instant {
        let base = unix_seconds(self.wall);
        if unix >= base {
            self.instant + Duration::from_secs_f64((unix - base).min(1e9))
        } else {
            let back = Duration::from_secs_f64((base - unix).min(1e9));
            self.instant
                .checked_sub(back)
                .unwrap_or(self.instant - self.instant.elapsed().min(back))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12): `now + cooldown` panicked for a 10¹⁹-second duration.
    #[test]
    fn extreme_values_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        for unix in [1e19, -5.0, f64::NAN, f64::INFINITY] {
            assert_eq!(from_unix(unix), UNIX_EPOCH, "{unix}");
        }
        assert_eq!(from_unix(1.5), UNIX_EPOCH + Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn round_trips_within_a_microsecond() {
        let anchor = Anchor::now();
        for offset in [-120.5, -0.25, 0.0, 42.0] {
            let unix = unix_seconds(anchor.wall) + offset;
            let back = anchor.to_unix(anchor.to_instant(unix));
            assert!((back - unix).abs() < 1e-6, "{offset}: {back} != {unix}");
        }
    }
}
