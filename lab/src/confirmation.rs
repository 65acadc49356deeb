//! The confirmation's guarantees shown by simulation (SPEC §6): a deterministic, seeded,
//! in-process run of the real decision and confirmation code (`act::guards`,
//! `act::confirmation`, `figures::confirmation`) for one node of a split federation,
//! interval by interval, over many trials per point, with 1 % of the members failing every
//! pull. `peerscope bench confirmation` prints the table that `docs/reconciliation.md`
//! shows; `tests/confirmation_sim.rs` holds the bounds.
//!
//! What is simulated and what is modelled: the decision, the guards, the probe, the
//! episodes, the draws and the sequential test are the sidecar's own code. The pulls are
//! answered from the split (member → root, or a failure). The members this node observes
//! are modelled, not hashed: under rendezvous hashing each peer's K observers are a
//! uniformly random K-subset of the others, independently per peer, so a sidecar observes
//! Binomial(N − 1, K / (N − 1)) peers, a uniform subset of them.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use clap::Args;
use tokio::time::Instant;

use peerscope::act::confirmation::{pick, Sample};
use peerscope::act::guards::Guards;
use peerscope::config::{self, Mode, Policy, ReconcileConfig, Sources};
use peerscope::figures::confirmation::{Membership, SequentialTest, Verdict};
use peerscope::figures::decision::{Facts, PeerFacts};
use peerscope::timeline::Anchor;

use super::RunError;

/// `peerscope bench confirmation`.
#[derive(Args, Clone, Debug)]
pub struct ConfirmationArgs {
    /// Trials per point.
    #[arg(long, default_value_t = 2000)]
    pub trials: usize,
    /// Seed of the whole run (the table is the same for the same seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Federation sizes of the table.
pub const MEMBERS: [usize; 4] = [100, 1_000, 10_000, 100_000];
/// Observers per peer of the table.
pub const OBSERVERS: [usize; 2] = [8, 16];
/// Splits of the table: each root's share of the members, in percent.
pub const SPLITS: [&[u32]; 7] = [
    &[55, 45],
    &[60, 40],
    &[70, 30],
    &[80, 20],
    &[90, 10],
    &[50, 30, 20],
    // A strict majority with two minorities: a node on 15 % may see the 25 % root most.
    &[60, 25, 15],
];
/// Intervals each trial runs.
pub const HORIZON: u32 = 40;
/// Every 100th member fails every pull.
const FAILING_EVERY: usize = 100;
const THRESHOLD: u64 = 3;
const INTERVAL: Duration = Duration::from_secs(30);
/// The reconciler's cooldown (and the hold after a refutation): 10 intervals.
const COOLDOWN: Duration = Duration::from_secs(300);

/// One row of the table: one node's side of one split.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub members: usize,
    pub observers: usize,
    pub shares: &'static [u32],
    /// Which root (index into `shares`) the local node holds.
    pub local: usize,
}

impl Point {
    /// How many members hold each root (the local node included in its own).
    fn counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self
            .shares
            .iter()
            .map(|s| self.members * *s as usize / 100)
            .collect();
        let assigned: usize = counts.iter().sum();
        counts[0] += self.members - assigned;
        counts
    }

    fn local_share(&self) -> u32 {
        self.shares[self.local]
    }

    /// The largest share held by another root.
    fn other_share(&self) -> u32 {
        (0..self.shares.len())
            .filter(|&g| g != self.local)
            .map(|g| self.shares[g])
            .max()
            .unwrap_or(0)
    }

    /// The guarantee this row is held to, if any.
    pub fn bound(&self) -> Bound {
        if self.local_share() >= 60 {
            Bound::NoRequest
        } else if self.local_share() <= 30 && self.other_share() >= 70 {
            Bound::RequestWithin(20)
        } else if self.local_share() <= 40 && self.other_share() >= 60 {
            Bound::RequestWithin(40)
        } else {
            Bound::None
        }
    }
}

/// What SPEC §6 promises for a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// P(request) ≤ 10⁻⁶ per episode.
    NoRequest,
    /// P(request within this many intervals) ≥ 0.999.
    RequestWithin(u32),
    /// Inside the indifference zone: reported, not bounded.
    None,
}

/// The measured row.
#[derive(Clone, Debug)]
pub struct Row {
    pub point: Point,
    pub trials: usize,
    /// Trials in which the node sent a request within the horizon.
    pub requests: usize,
    /// Trials that requested within 20 and within 40 intervals.
    pub within_20: usize,
    pub within_40: usize,
    /// Confirmation episodes that ended, over all trials.
    pub episodes: u64,
    /// The exact probability that one episode confirms the largest other root (dynamic
    /// programming over the test, failures included).
    pub exact_confirm: f64,
    /// Confirmation and probe pulls per trial.
    pub pulls: Vec<u64>,
    /// Intervals to the request, for the trials that requested.
    pub intervals: Vec<u32>,
}

impl Row {
    /// Whether the row meets its bound: no request seen and the exact probability under
    /// 10⁻⁶, or the share of requests in time at least 0.999.
    pub fn meets_bound(&self) -> bool {
        match self.point.bound() {
            Bound::NoRequest => self.requests == 0 && self.exact_confirm <= 1e-6,
            Bound::RequestWithin(limit) => {
                let within = if limit <= 20 {
                    self.within_20
                } else {
                    self.within_40
                };
                within as f64 >= 0.999 * self.trials as f64
            }
            Bound::None => true,
        }
    }
}

/// Every point of the table.
pub fn points() -> Vec<Point> {
    let mut points = Vec::new();
    for members in MEMBERS {
        for observers in OBSERVERS {
            for shares in SPLITS {
                for local in 0..shares.len() {
                    points.push(Point {
                        members,
                        observers,
                        shares,
                        local,
                    });
                }
            }
        }
    }
    points
}

/// Runs `trials` trials of `point`, seeded.
pub fn run_point(point: &Point, trials: usize, seed: u64) -> Row {
    let counts = point.counts();
    let config = reconcile_config();
    let mut row = Row {
        point: point.clone(),
        trials,
        requests: 0,
        within_20: 0,
        within_40: 0,
        episodes: 0,
        exact_confirm: 0.0,
        pulls: Vec::with_capacity(trials),
        intervals: Vec::new(),
    };
    let federation = Split::new(point, &counts);
    let candidate = (0..counts.len())
        .filter(|&g| g != point.local)
        .max_by_key(|&g| (counts[g], std::cmp::Reverse(g)))
        .expect("two roots at least");
    let holders = (0..federation.others)
        .filter(|&m| federation.group(m) == candidate && !federation.fails(m))
        .count();
    row.exact_confirm = SequentialTest::DEFAULT
        .exact(point.members, holders)
        .confirmed;
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..trials {
        let outcome = federation.trial(&config, point.observers, &mut rng);
        row.pulls.push(outcome.pulls);
        row.episodes += outcome.episodes;
        if let Some(at) = outcome.requested_at {
            row.requests += 1;
            row.within_20 += usize::from(at <= 20);
            row.within_40 += usize::from(at <= 40);
            row.intervals.push(at);
        }
    }
    row
}

/// Every row of the table; each point has its own seed derived from `seed`.
pub fn run(trials: usize, seed: u64) -> Vec<Row> {
    points()
        .iter()
        .enumerate()
        .map(|(i, point)| run_point(point, trials, seed.wrapping_mul(1_000_003) + i as u64))
        .collect()
}

/// `peerscope bench confirmation`: prints the table; an error when a row misses its bound.
pub fn print(args: &ConfirmationArgs) -> Result<(), RunError> {
    let started = std::time::Instant::now();
    let rows = run(args.trials, args.seed);
    println!("{}", table(&rows));
    let even: Vec<String> = MEMBERS
        .iter()
        .map(|&m| {
            let exact = SequentialTest::DEFAULT.exact(m, m / 2);
            format!(
                "N = {m}: {:.3} confirmed, {:.3} undecided",
                exact.confirmed, exact.undecided
            )
        })
        .collect();
    println!(
        "exact, one episode, the target on exactly half of the voters (no strict majority): {}",
        even.join("; ")
    );
    let failed = rows.iter().filter(|r| !r.meets_bound()).count();
    println!(
        "{} points, {} trials each, seed {}, {:.1} s; rows that miss their bound: {failed}",
        rows.len(),
        args.trials,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        return Err(RunError::Measurement(format!(
            "{failed} points miss their bound"
        )));
    }
    Ok(())
}

/// The table in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| N | K | split | local holds | bound | requests | 95 % upper bound | exact P(confirm) per episode | within 20 / 40 intervals | episodes per trial | pulls per trial, mean / p99 | intervals to act, mean / p99 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let p = &row.point;
        let split: Vec<String> = p.shares.iter().map(u32::to_string).collect();
        let bound = match p.bound() {
            Bound::NoRequest => "≤ 1e-6".to_owned(),
            Bound::RequestWithin(n) => format!("≥ 0.999 in {n}"),
            Bound::None => "—".to_owned(),
        };
        let rate = row.requests as f64 / row.trials as f64;
        let upper = upper_bound_95(row.requests, row.trials);
        let mean_pulls = row.pulls.iter().sum::<u64>() as f64 / row.trials as f64;
        let intervals = if row.intervals.is_empty() {
            "—".to_owned()
        } else {
            let mean = row.intervals.iter().map(|&i| f64::from(i)).sum::<f64>()
                / row.intervals.len() as f64;
            format!("{mean:.1} / {}", percentile(&row.intervals, 0.99))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} % | {} | {} ({:.4}) | {:.1e} | {:.1e} | {:.4} / {:.4} | {:.2} | {:.0} / {} | {} |{}\n",
            p.members,
            p.observers,
            split.join("/"),
            p.local_share(),
            bound,
            row.requests,
            rate,
            upper,
            row.exact_confirm,
            row.within_20 as f64 / row.trials as f64,
            row.within_40 as f64 / row.trials as f64,
            row.episodes as f64 / row.trials as f64,
            mean_pulls,
            percentile(&row.pulls, 0.99),
            intervals,
            if row.meets_bound() { "" } else { " **misses its bound**" },
        ));
    }
    out
}

/// The one-sided 95 % upper confidence bound of a rate of `k` in `n` (Clopper–Pearson,
/// by bisection on the binomial tail).
pub fn upper_bound_95(k: usize, n: usize) -> f64 {
    if k >= n {
        return 1.0;
    }
    // P(X ≤ k | p) = 0.05, solved for p.
    let tail = |p: f64| {
        let mut term = (1.0 - p).powi(n as i32);
        let mut sum = term;
        for i in 0..k {
            term *= (n - i) as f64 / (i + 1) as f64 * p / (1.0 - p);
            sum += term;
        }
        sum
    };
    let (mut low, mut high) = (k as f64 / n as f64, 1.0);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if tail(mid) > 0.05 {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

fn percentile<T: Copy + Ord + Default>(values: &[T], q: f64) -> T {
    if values.is_empty() {
        return T::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn reconcile_config() -> ReconcileConfig {
    let mut config = config::load(&Sources::flags(&[("node", "http://127.0.0.1:1")]))
        .expect("the defaults load")
        .reconcile;
    config.mode = Mode::On;
    config.policy = Policy::Majority;
    config.threshold = THRESHOLD;
    config.cooldown = COOLDOWN;
    config
}

/// The federation as the local node's sidecar meets it: members `0..others` (this node
/// excluded) hold the roots in consecutive ranges.
struct Split {
    others: usize,
    /// Where each root's range ends among the members.
    ends: Vec<usize>,
    local_group: usize,
    roots: Vec<String>,
}

impl Split {
    fn new(point: &Point, counts: &[usize]) -> Self {
        let mut ends = Vec::new();
        let mut end = 0;
        for (g, count) in counts.iter().enumerate() {
            end += count - usize::from(g == point.local);
            ends.push(end);
        }
        Split {
            others: point.members - 1,
            ends,
            local_group: point.local,
            roots: (0..counts.len()).map(|g| format!("root-{g}")).collect(),
        }
    }

    fn group(&self, member: usize) -> usize {
        self.ends.iter().position(|&end| member < end).unwrap_or(0)
    }

    fn fails(&self, member: usize) -> bool {
        member % FAILING_EVERY == FAILING_EVERY / 2
    }

    fn answer(&self, member: usize) -> Sample {
        let ok = !self.fails(member);
        Sample {
            peer: String::new(),
            url: String::new(),
            node_id: ok.then(|| member.to_string()),
            root: ok.then(|| self.roots[self.group(member)].clone()),
        }
    }

    /// One node of the split, over [`HORIZON`] intervals from the moment it split.
    fn trial(&self, config: &ReconcileConfig, observers: usize, rng: &mut fastrand::Rng) -> Trial {
        let mut guards = Guards::new(
            fastrand::Rng::with_seed(rng.u64(..)),
            fastrand::Rng::with_seed(rng.u64(..)),
        );
        let observed_count = binomial(rng, self.others, observers as f64 / self.others as f64);
        let observed = pick(rng, &HashSet::new(), self.others, observed_count);
        let mut streaks = vec![0u64; observed.len()];
        let local_root = &self.roots[self.local_group];
        let membership = Membership {
            generation: 1,
            others: self.others,
            sampled: true,
            budget: 2 * observers,
        };
        let start = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut requested_at = None;
        for t in 1..=HORIZON {
            let at = Anchor {
                instant: start + INTERVAL * t,
                wall: wall + INTERVAL * t,
            };
            let mut peers = Vec::new();
            for (streak, &member) in streaks.iter_mut().zip(&observed) {
                if self.fails(member) {
                    continue; // never live: no root, no vote, its streak holds
                }
                let root = &self.roots[self.group(member)];
                *streak = if root == local_root { 0 } else { *streak + 1 };
                peers.push(PeerFacts {
                    peer: member.to_string(),
                    url: format!("http://m{member}"),
                    node_id: member.to_string(),
                    root: root.clone(),
                    height: None,
                    streak: *streak,
                    quality: 1.0,
                });
            }
            let facts = Facts {
                local_root: Some(local_root.clone()),
                live_peers: peers.len(),
                peers,
                local_node_id: Some("local".to_owned()),
                sampled: true,
                probe: None,
            };
            if guards.evaluate(config, &facts, &membership, at).is_some() {
                requested_at = Some(t);
                break;
            }
            let draws = guards.draws(config, &membership);
            if let Some(probe) = draws.probe {
                guards.record_probe(1, self.answer(probe), Some(local_root));
            }
            let samples = draws.confirmation.iter().map(|&m| self.answer(m)).collect();
            let verdict = guards.record_draws(config, 1, samples, Some("local"), at.instant);
            if verdict == Verdict::Confirmed
                && guards.evaluate(config, &facts, &membership, at).is_some()
            {
                requested_at = Some(t);
                break;
            }
        }
        let view = guards.view(config, start + INTERVAL * HORIZON).confirmation;
        Trial {
            requested_at,
            pulls: view.pulls_total + view.probe_pulls_total,
            episodes: view.outcomes_total.iter().sum(),
        }
    }
}

struct Trial {
    requested_at: Option<u32>,
    pulls: u64,
    episodes: u64,
}

/// A Binomial(n, p) draw by inversion (cheap for the small means used here).
fn binomial(rng: &mut fastrand::Rng, n: usize, p: f64) -> usize {
    if p >= 1.0 {
        return n;
    }
    let u = rng.f64();
    let mut term = (1.0 - p).powi(n as i32);
    let mut cumulative = term;
    let mut k = 0;
    while u > cumulative && k < n {
        term *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
        cumulative += term;
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confidence_bound_of_zero_in_n_is_the_rule_of_three() {
        let bound = upper_bound_95(0, 3000);
        assert!((bound - 3.0 / 3000.0).abs() < 5e-5, "{bound}");
        assert!(upper_bound_95(5, 100) > 0.05);
    }

    #[test]
    fn splits_assign_every_member_once() {
        let point = Point {
            members: 100,
            observers: 8,
            shares: &[50, 30, 20],
            local: 1,
        };
        let counts = point.counts();
        assert_eq!(counts, [50, 30, 20]);
        let split = Split::new(&point, &counts);
        let per_group: Vec<usize> = (0..3)
            .map(|g| (0..split.others).filter(|&m| split.group(m) == g).count())
            .collect();
        assert_eq!(
            per_group,
            [50, 29, 20],
            "the local node holds one of the 30"
        );
        assert_eq!((0..99).filter(|&m| split.fails(m)).count(), 1);
    }

    #[test]
    fn the_binomial_draw_has_the_right_mean() {
        let mut rng = fastrand::Rng::with_seed(9);
        let draws: Vec<usize> = (0..20_000)
            .map(|_| binomial(&mut rng, 999, 8.0 / 999.0))
            .collect();
        let mean = draws.iter().sum::<usize>() as f64 / draws.len() as f64;
        assert!((mean - 8.0).abs() < 0.1, "{mean}");
    }
}
