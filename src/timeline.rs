//! Moving between the monotonic clock (windows, deadlines) and wall-clock Unix seconds
//! (exported timestamps, checkpoints).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix seconds of a wall-clock time (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
    pub fn to_unix(&self, at: Instant) -> f64 {
        let base = unix_seconds(self.wall);
        if at <= self.instant {
            base - (self.instant - at).as_secs_f64()
        } else {
            base + (at - self.instant).as_secs_f64()
        }
    }

    /// The monotonic instant of a Unix time; times too far in the past clamp to the
    /// earliest instant this process can represent.
    pub fn to_instant(&self, unix: f64) -> Instant {
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
