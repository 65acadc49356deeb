//! The figures of SPEC §4 as pure functions: no I/O, no clock; `now` comes in as ages.

use crate::config::QualityWeights;

/// 95th percentile by nearest rank: the value at rank ⌈0.95·n⌉ of `values` in ascending
/// order. Reorders `values` (a selection, not a full sort).
pub(crate) fn p95_nearest_rank(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (0.95 * values.len() as f64).ceil() as usize;
    let (_, value, _) =
        values.select_nth_unstable_by(rank.clamp(1, values.len()) - 1, f64::total_cmp);
    Some(*value)
}

/// 1 − min(p95 / timeout, 1); 0 when there is no successful pull to measure.
pub(crate) fn latency_score(p95_seconds: Option<f64>, timeout_seconds: f64) -> f64 {
    match p95_seconds {
        Some(p95) => 1.0 - (p95 / timeout_seconds).min(1.0),
        None => 0.0,
    }
}

/// exp(−age / (3 × interval)), age since the last successful pull; 0 if there was none.
pub(crate) fn freshness(age_seconds: Option<f64>, interval_seconds: f64) -> f64 {
    match age_seconds {
        Some(age) => (-age.max(0.0) / (3.0 * interval_seconds)).exp(),
        None => 0.0,
    }
}

/// Quality's three parts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QualityParts {
    pub success_ratio: f64,
    pub latency_score: f64,
    pub freshness: f64,
}

/// (w1·success_ratio + w2·latency_score + w3·freshness) / (w1 + w2 + w3).
pub(crate) fn quality(parts: QualityParts, weights: QualityWeights) -> f64 {
    let total = weights.success + weights.latency + weights.freshness;
    (weights.success * parts.success_ratio
        + weights.latency * parts.latency_score
        + weights.freshness * parts.freshness)
        / total
}

/// The spread of the live peers' `g_star`: (σ, novelty).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Novelty {
    /// Population standard deviation of the live peers' latest `g_star`.
    pub g_star_stddev: f64,
    /// clip(σ / 0.5, 0, 1); 0 with fewer than 2 live peers.
    pub novelty: f64,
}

pub(crate) fn novelty(live_g_stars: &[f64]) -> Novelty {
    if live_g_stars.len() < 2 {
        return Novelty {
            g_star_stddev: 0.0,
            novelty: 0.0,
        };
    }
    let n = live_g_stars.len() as f64;
    let mean = live_g_stars.iter().sum::<f64>() / n;
    let variance = live_g_stars.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let sigma = variance.sqrt();
    Novelty {
        g_star_stddev: sigma,
        novelty: (sigma / 0.5).clamp(0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_WEIGHTS: QualityWeights = QualityWeights {
        success: 0.5,
        latency: 0.3,
        freshness: 0.2,
    };

    #[test]
    fn p95_is_nearest_rank() {
        let mut twenty: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(p95_nearest_rank(&mut twenty), Some(19.0));
        let mut hundred: Vec<f64> = (1..=100).map(|i| f64::from((i * 37) % 100 + 1)).collect();
        assert_eq!(p95_nearest_rank(&mut hundred), Some(95.0));
        assert_eq!(p95_nearest_rank(&mut [0.3]), Some(0.3));
        assert_eq!(p95_nearest_rank(&mut [3.0, 1.0, 2.0]), Some(3.0));
        assert_eq!(p95_nearest_rank(&mut []), None);
    }

    #[test]
    fn latency_score_is_capped_at_the_timeout() {
        assert_eq!(latency_score(Some(0.5), 2.5), 0.8);
        assert_eq!(latency_score(Some(5.0), 2.5), 0.0);
        assert_eq!(latency_score(None, 2.5), 0.0);
    }

    #[test]
    fn freshness_decays_over_three_intervals() {
        assert_eq!(freshness(Some(0.0), 30.0), 1.0);
        assert_eq!(freshness(Some(90.0), 30.0), (-1.0f64).exp());
        assert_eq!(freshness(None, 30.0), 0.0);
    }

    #[test]
    fn quality_is_the_weighted_mean_of_its_parts() {
        let parts = QualityParts {
            success_ratio: 0.75,
            latency_score: 0.8,
            freshness: 1.0,
        };
        assert!((quality(parts, DEFAULT_WEIGHTS) - 0.815).abs() < 1e-12);
        let doubled = QualityWeights {
            success: 1.0,
            latency: 0.6,
            freshness: 0.4,
        };
        assert!((quality(parts, doubled) - 0.815).abs() < 1e-12);
    }

    #[test]
    fn novelty_is_the_clipped_population_stddev() {
        assert_eq!(novelty(&[0.4]).novelty, 0.0);
        let n = novelty(&[0.2, 0.4, 0.6]);
        let sigma = (0.08f64 / 3.0).sqrt();
        assert!((n.g_star_stddev - sigma).abs() < 1e-12);
        assert!((n.novelty - sigma / 0.5).abs() < 1e-12);
        assert_eq!(novelty(&[0.0, 1.0]).novelty, 1.0);
    }
}
