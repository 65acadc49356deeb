//! Whether a state root holds a strict majority of the whole membership, decided from
//! members drawn uniformly at random without replacement (SPEC §6, "confirmation before
//! acting"). Pure: the verdict is a function of three counts, so the sidecar, the
//! simulation and the exact computation below all apply the same rule.
//!
//! The rule, in order (the math is in `docs/reconciliation.md`):
//! 1. **Exact.** Once the votes for the target are a strict majority of the voters (the
//!    local node, which holds another root, included), confirmed; once the target could not
//!    reach one even if every member not yet drawn held it, refuted. Where the draws cover
//!    the whole membership this is exactly the majority rule.
//! 2. **Sequential.** Wald's SPRT of "the target holds 40 %" against "it holds 60 %". Its
//!    log-likelihood ratio is `(for − against) · ln(3/2)`, so the test is on the lead
//!    `L = for − against`: confirmed at `L ≥ 35`, refuted at `L ≤ −25`.
//! 3. **Undecided** after `max_draws` draws that did neither (near an even split).
//!
//! The bound: when the target is held by at most 40 % of the voters, the lead of draws
//! without replacement ever reaching `a` has probability at most `(2/3)^a` (reflection
//! principle; exact, not asymptotic), so a wrong confirmation has probability ≤ 6.9·10⁻⁷.
//! A failed pull counts against: a member that cannot be reached is not known to hold the
//! target, so "majority of the whole membership" can only be under-counted.

/// The membership a confirmation draws from, as the store sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Changes whenever the member list or this node's place in it changes; draws made
    /// under another generation are void.
    pub generation: u64,
    /// Members other than this node (the population drawn from).
    pub others: usize,
    /// Whether this sidecar observes only a sample of them (sampled observation).
    pub sampled: bool,
    /// Confirmation draws allowed per interval: 2·K.
    pub budget: usize,
}

/// The sequential test's thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SequentialTest {
    /// Confirmed when `for − against` reaches this.
    pub(crate) confirm_lead: usize,
    /// Refuted when `against − for` reaches this.
    pub(crate) refute_lead: usize,
    /// Undecided after this many draws without a verdict.
    pub(crate) max_draws: usize,
}

impl SequentialTest {
    /// The thresholds peerscope uses: a wrong confirmation below 40 % has probability
    /// ≤ (2/3)^35 = 6.9·10⁻⁷; a root held by 60 % is confirmed within 600 draws with
    /// probability 0.9996 even when 1 % of its holders fail their pulls.
    pub const DEFAULT: SequentialTest = SequentialTest {
        confirm_lead: 35,
        refute_lead: 25,
        max_draws: 600,
    };

    /// The verdict on `tally`.
    pub(crate) fn verdict(&self, tally: &Tally) -> Verdict {
        let majority = tally.voters / 2 + 1;
        let undrawn = tally.voters.saturating_sub(1 + tally.drawn);
        let against = tally.drawn - tally.for_target;
        if tally.for_target >= majority {
            Verdict::Confirmed
        } else if tally.for_target + undrawn < majority {
            Verdict::Refuted
        } else if tally.for_target >= against + self.confirm_lead {
            Verdict::Confirmed
        } else if against >= tally.for_target + self.refute_lead {
            Verdict::Refuted
        } else if tally.drawn >= self.max_draws {
            Verdict::Undecided
        } else {
            Verdict::Pending
        }
    }

    /// The proven bound on a wrong confirmation when the target holds at most 40 % of the
    /// voters: `(2/3)^confirm_lead`.
    pub(crate) fn wrong_confirmation_bound(&self) -> f64 {
        (2.0f64 / 3.0).powi(self.confirm_lead as i32)
    }

    /// The exact distribution of the outcome when `holders` of the `voters − 1` other
    /// members answer with the target root (the rest hold another root or fail): dynamic
    /// programming over (draws, votes for), no sampling error. O(max_draws²).
    pub fn exact(&self, voters: usize, holders: usize) -> Exact {
        let population = voters.saturating_sub(1);
        let holders = holders.min(population);
        // alive[x]: probability of having drawn `n` members, `x` of them holders, with no
        // verdict yet.
        let mut alive = vec![1.0f64];
        let mut exact = Exact::default();
        for n in 0..=population.min(self.max_draws) {
            let mut next = vec![0.0f64; alive.len() + 1];
            for (x, &p) in alive.iter().enumerate() {
                if p == 0.0 {
                    continue;
                }
                let tally = Tally {
                    voters,
                    drawn: n,
                    for_target: x,
                };
                match self.verdict(&tally) {
                    Verdict::Pending => {}
                    Verdict::Confirmed => {
                        exact.confirmed += p;
                        exact.mean_draws += p * n as f64;
                        continue;
                    }
                    Verdict::Refuted => {
                        exact.refuted += p;
                        exact.mean_draws += p * n as f64;
                        continue;
                    }
                    Verdict::Undecided => {
                        exact.undecided += p;
                        exact.mean_draws += p * n as f64;
                        continue;
                    }
                }
                let left = (population - n) as f64;
                let holders_left = (holders - x) as f64;
                next[x + 1] += p * holders_left / left;
                next[x] += p * (left - holders_left) / left;
            }
            alive = next;
        }
        exact
    }
}

/// The outcome distribution computed by [`SequentialTest::exact`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exact {
    pub confirmed: f64,
    pub(crate) refuted: f64,
    pub undecided: f64,
    /// Expected draws until the verdict.
    pub(crate) mean_draws: f64,
}

/// The counts a verdict is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Tally {
    /// Voters: the local node plus every distinct other member (one node, one vote).
    pub(crate) voters: usize,
    /// Distinct members drawn so far (failed pulls included).
    pub(crate) drawn: usize,
    /// Of those, the ones that answered with the target root.
    pub(crate) for_target: usize,
}

impl Tally {
    /// The test statistic: votes for the target minus the rest.
    pub(crate) fn lead(&self) -> i64 {
        2 * self.for_target as i64 - self.drawn as i64
    }
}

/// What the draws so far say about the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// More draws are needed.
    Pending,
    /// The target holds a strict majority.
    Confirmed,
    /// It does not.
    Refuted,
    /// `max_draws` draws did not tell (an even split, or close to one).
    Undecided,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: SequentialTest = SequentialTest::DEFAULT;

    fn verdict(voters: usize, drawn: usize, for_target: usize) -> Verdict {
        TEST.verdict(&Tally {
            voters,
            drawn,
            for_target,
        })
    }

    #[test]
    fn full_coverage_is_exactly_the_majority_rule() {
        // Five voters: the local node and four others; three for the target is a majority.
        assert_eq!(verdict(5, 4, 3), Verdict::Confirmed);
        assert_eq!(verdict(5, 4, 2), Verdict::Refuted);
        // Two nodes: the other one alone is never a majority.
        assert_eq!(verdict(2, 1, 1), Verdict::Refuted);
        // Three nodes: both others for the target.
        assert_eq!(verdict(3, 2, 2), Verdict::Confirmed);
        assert_eq!(verdict(3, 1, 1), Verdict::Pending);
        for voters in 2..60 {
            for for_target in 0..voters {
                let expected = if for_target > voters / 2 {
                    Verdict::Confirmed
                } else {
                    Verdict::Refuted
                };
                assert_eq!(verdict(voters, voters - 1, for_target), expected);
            }
        }
    }

    #[test]
    fn the_lead_decides_in_a_large_membership() {
        assert_eq!(verdict(100_000, 35, 35), Verdict::Confirmed);
        assert_eq!(verdict(100_000, 36, 35), Verdict::Pending);
        assert_eq!(verdict(100_000, 101, 68), Verdict::Confirmed); // 68 − 33
        assert_eq!(verdict(100_000, 25, 0), Verdict::Refuted);
        assert_eq!(verdict(100_000, 99, 37), Verdict::Refuted); // 62 − 37
        assert_eq!(verdict(100_000, 600, 300), Verdict::Undecided);
        assert_eq!(verdict(100_000, 599, 300), Verdict::Pending);
    }

    #[test]
    fn the_exact_wrong_confirmation_stays_under_the_proven_bound() {
        let bound = TEST.wrong_confirmation_bound();
        assert!(bound < 1e-6, "{bound}");
        for voters in [10, 60, 100, 1_000, 10_000] {
            let holders = voters * 2 / 5; // 40 % of the voters, all among the others
            let exact = TEST.exact(voters, holders);
            assert!(
                exact.confirmed <= bound,
                "{voters} voters: {} > {bound}",
                exact.confirmed
            );
            let total = exact.confirmed + exact.refuted + exact.undecided;
            assert!((total - 1.0).abs() < 1e-9, "{voters}: {total}");
        }
    }

    #[test]
    fn a_sixty_percent_root_is_confirmed_with_failures() {
        for voters in [100, 1_000, 100_000] {
            // 60 % hold the target, 1 % of them fail their pulls.
            let holders = voters * 6 / 10 * 99 / 100;
            let exact = TEST.exact(voters, holders);
            assert!(exact.confirmed > 0.999, "{voters}: {exact:?}");
        }
    }

    #[test]
    fn the_exact_computation_matches_drawing() {
        // 40 voters, 26 of the 39 others hold the target: compare with 20,000 draws.
        let (voters, holders) = (40, 26);
        let exact = TEST.exact(voters, holders);
        let mut rng = fastrand::Rng::with_seed(11);
        let trials = 20_000;
        let mut confirmed = 0;
        for _ in 0..trials {
            let mut members: Vec<bool> = (0..voters - 1).map(|i| i < holders).collect();
            rng.shuffle(&mut members);
            let mut tally = Tally {
                voters,
                ..Tally::default()
            };
            for holds in members {
                tally.drawn += 1;
                tally.for_target += usize::from(holds);
                match TEST.verdict(&tally) {
                    Verdict::Pending => continue,
                    Verdict::Confirmed => confirmed += 1,
                    _ => {}
                }
                break;
            }
        }
        let observed = confirmed as f64 / trials as f64;
        assert!(
            (observed - exact.confirmed).abs() < 0.01,
            "drawn {observed}, exact {}",
            exact.confirmed
        );
    }
}
