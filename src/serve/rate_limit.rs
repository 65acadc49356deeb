//! The web configuration's `rate_limit` (exporter-toolkit's): a token bucket over every
//! request the server answers, `burst` tokens, one more every `interval`; a request that
//! finds none is answered `429 Too Many Requests` before anything else is done for it.

use std::sync::Mutex;

use tokio::time::Instant;

use crate::config::web::RateLimit;

/// The bucket, made full for each limit in force (a reload that changes it starts over).
#[derive(Default)]
pub(crate) struct RequestBudget {
    bucket: Mutex<Option<Bucket>>,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled_at: Instant,
}

impl RequestBudget {
    /// Whether a request at `now` may be answered under `limit` (and takes its token).
    pub(crate) fn allow(&self, limit: RateLimit, now: Instant) -> bool {
        let mut bucket = crate::sync::lock(&self.bucket);
        let bucket = match bucket.as_mut() {
            Some(bucket) if bucket.limit == limit => bucket,
            _ => bucket.insert(Bucket {
                limit,
                tokens: f64::from(limit.burst),
                refilled_at: now,
            }),
        };
        let earned = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64()
            / limit.interval.as_secs_f64();
        bucket.tokens = (bucket.tokens + earned).min(f64::from(limit.burst));
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_request_per_interval() {
        let limit = RateLimit {
            burst: 3,
            interval: Duration::from_secs(1),
        };
        let budget = RequestBudget::default();
        let start = Instant::now();
        let allowed = (0..10).filter(|_| budget.allow(limit, start)).count();
        assert_eq!(allowed, 3);
        assert!(!budget.allow(limit, start + Duration::from_millis(900)));
        assert!(budget.allow(limit, start + Duration::from_millis(1000)));
        assert!(!budget.allow(limit, start + Duration::from_millis(1001)));
        // Idle for a minute: the bucket holds no more than the burst.
        let later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| budget.allow(limit, later)).count(), 3);
        // A changed limit starts full.
        let wider = RateLimit { burst: 5, ..limit };
        assert_eq!((0..10).filter(|_| budget.allow(wider, later)).count(), 5);
    }
}
