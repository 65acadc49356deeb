//! State divergence (SPEC §4) as pure functions: how a peer's root relates to the local
//! node's, how its streak moves each cycle, and the federation's divergence ratio.

/// How a peer's state root relates to the local node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Agree,
    Diverge,
    /// Either root is unknown or stale.
    Unknown,
}

impl Relation {
    /// The value of the `relation` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Agree => "agree",
            Relation::Diverge => "diverge",
            Relation::Unknown => "unknown",
        }
    }
}

/// Compares two roots; pass `None` for a root that is unknown or not fresh.
pub(crate) fn relation(local_root: Option<&str>, peer_root: Option<&str>) -> Relation {
    match (local_root, peer_root) {
        (Some(local), Some(peer)) if local == peer => Relation::Agree,
        (Some(_), Some(_)) => Relation::Diverge,
        _ => Relation::Unknown,
    }
}

/// +1 when divergent, 0 when agreeing, unchanged when unknown (a failed pull is not agreement).
pub(crate) fn next_streak(streak: u64, relation: Relation) -> u64 {
    match relation {
        Relation::Diverge => streak + 1,
        Relation::Agree => 0,
        Relation::Unknown => streak,
    }
}

/// Divergent live peers / live peers with a known root; 0 when there are none.
pub(crate) fn divergence_ratio(divergent: usize, with_known_root: usize) -> f64 {
    if with_known_root == 0 {
        0.0
    } else {
        divergent as f64 / with_known_root as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_needs_both_roots() {
        assert_eq!(relation(Some("a"), Some("a")), Relation::Agree);
        assert_eq!(relation(Some("a"), Some("b")), Relation::Diverge);
        assert_eq!(relation(None, Some("b")), Relation::Unknown);
        assert_eq!(relation(Some("a"), None), Relation::Unknown);
    }

    #[test]
    fn streak_grows_resets_and_holds() {
        let mut streak = 0;
        for relation in [
            Relation::Diverge,
            Relation::Diverge,
            Relation::Unknown,
            Relation::Diverge,
        ] {
            streak = next_streak(streak, relation);
        }
        assert_eq!(streak, 3);
        assert_eq!(next_streak(streak, Relation::Agree), 0);
    }

    #[test]
    fn ratio_is_zero_without_known_roots() {
        assert_eq!(divergence_ratio(0, 0), 0.0);
        assert_eq!(divergence_ratio(1, 4), 0.25);
    }
}
