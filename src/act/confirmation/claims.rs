//! One node, one vote in a confirmation episode: how a node_id drawn twice counts.

use super::Episode;

/// How a node_id drawn in an episode counts.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Claim {
    /// Counted once, with the root it answered (`None`: no root, counted as failed) and
    /// the key of `votes` the vote went into (a root, or `other`).
    Voted {
        root: Option<String>,
        counted_as: Option<String>,
    },
    /// Answered with two different roots: no vote.
    Contested,
}

impl Episode {
    /// Takes back the vote a contested node_id cast with `root` (counted under
    /// `counted_as`): it counts as discarded.
    pub(super) fn take_back(
        &mut self,
        node_id: &str,
        root: Option<String>,
        counted_as: Option<String>,
    ) {
        self.tally.drawn -= 1;
        self.discarded += 1;
        match root {
            Some(root) => {
                if root == self.target_root {
                    self.tally.for_target -= 1;
                    self.sources.retain(|s| s.node_id != node_id);
                }
                if let Some(key) = counted_as {
                    if let Some(count) = self.votes.get_mut(&key) {
                        *count -= 1;
                        if *count == 0 {
                            self.votes.remove(&key);
                        }
                    }
                }
            }
            None => self.failed -= 1,
        }
    }
}
