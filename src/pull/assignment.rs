//! Sampled observation: which peers this sidecar pulls when every peer should be observed
//! by only K members (`observers_per_peer`). Rendezvous (highest-random-weight) hashing
//! over the shared member list: the observers of peer `p` are the K members `m ≠ p` with
//! the highest `score``(m, p)`. Every sidecar computes its own share from the member list
//! alone — no coordination, no traffic — and a member joining or leaving moves only the
//! assignments it takes or gives up.
//!
//! The score, so that another implementation can reproduce it:
//! `score(observer, peer) = fmix64(fnv1a64(observer.as_bytes()) XOR fmix64(fnv1a64(peer.as_bytes())))` over the
//! names' UTF-8 bytes, with FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
//! 0x100000001b3) and MurmurHash3's 64-bit finaliser `fmix64` (FNV alone mixes similar
//! names poorly). Each name is hashed once, so a pair costs two multiplications. Ties
//! (astronomically rare) go to the smaller name.

/// FNV-1a 64 of a name's bytes (also the checkpoint's and the configuration's checksum).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The rendezvous score of `observer` for `peer`.
#[cfg(test)] // the formula as written; the tests hold the fast path (`Members`) to it
pub(crate) fn score(observer: &str, peer: &str) -> u64 {
    combine(
        fnv1a64(observer.as_bytes()),
        fmix64(fnv1a64(peer.as_bytes())),
    )
}

/// `observer_key` = fnv1a64(observer.as_bytes()), `peer_key` = fmix64(fnv1a64(peer.as_bytes())).
fn combine(observer_key: u64, peer_key: u64) -> u64 {
    fmix64(observer_key ^ peer_key)
}

/// The member list with each name hashed once.
pub struct Members<'a> {
    names: Vec<&'a str>,
    keys: Vec<u64>,
}

impl<'a> Members<'a> {
    pub fn new(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names: Vec<&'a str> = names.into_iter().collect();
        let keys = names.iter().map(|n| fnv1a64(n.as_bytes())).collect();
        Members { names, keys }
    }

    /// Where `me` ranks among the observers of `peer` (0 = highest), if within the first
    /// `k`; a member never observes itself. Stops as soon as `k` members outrank `me`: for
    /// a peer `me` does not observe that takes about k·ln(N) scores, so a sidecar's whole
    /// share costs O(N·k·log N).
    pub fn rank_among_observers(&self, me: &str, peer: &str, k: usize) -> Option<usize> {
        if me == peer || k == 0 {
            return None;
        }
        let peer_key = fmix64(fnv1a64(peer.as_bytes()));
        let mine = (combine(fnv1a64(me.as_bytes()), peer_key), me);
        let mut ahead = 0;
        for (member, key) in self.names.iter().zip(&self.keys) {
            if *member == peer || *member == me {
                continue;
            }
            if outranks((combine(*key, peer_key), member), mine) {
                ahead += 1;
                if ahead == k {
                    return None;
                }
            }
        }
        Some(ahead)
    }

    /// The `k` observers of `peer`, best first: the whole federation's view of one peer
    /// (a sidecar needs only [`Members::rank_among_observers`]).
    pub fn observers_of(&self, peer: &str, k: usize) -> Vec<&'a str> {
        let peer_key = fmix64(fnv1a64(peer.as_bytes()));
        let mut top: Vec<(u64, &'a str)> = Vec::with_capacity(k + 1);
        for (member, key) in self.names.iter().zip(&self.keys) {
            if *member == peer {
                continue;
            }
            let candidate = (combine(*key, peer_key), *member);
            if top.len() == k && !outranks(candidate, top[k - 1]) {
                continue;
            }
            let position = top
                .iter()
                .position(|held| outranks(candidate, *held))
                .unwrap_or(top.len());
            top.insert(position, candidate);
            top.truncate(k);
        }
        top.into_iter().map(|(_, name)| name).collect()
    }
}

/// MurmurHash3's 64-bit finaliser.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Whether `a` outranks `b` as an observer of `peer`: higher score, then smaller name.
fn outranks(a: (u64, &str), b: (u64, &str)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("nova-{i:06}")).collect()
    }

    #[test]
    fn the_score_is_the_documented_hash() {
        // FNV-1a 64 reference values (draft-eastlake-fnv), then the combination.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            score("a", "b"),
            fmix64(fnv1a64(b"a") ^ fmix64(fnv1a64(b"b")))
        );
        assert_ne!(score("a", "b"), score("b", "a"));
        assert_eq!(fmix64(0), 0);
    }

    #[test]
    fn each_sidecar_finds_exactly_the_observers_the_federation_computes() {
        let all = names(300);
        let members = Members::new(all.iter().map(String::as_str));
        for k in [1, 3, 8] {
            for peer in all.iter().step_by(7) {
                let observers = members.observers_of(peer, k);
                assert_eq!(observers.len(), k);
                let claimed: Vec<&str> = all
                    .iter()
                    .map(String::as_str)
                    .filter(|me| members.rank_among_observers(me, peer, k).is_some())
                    .collect();
                let mut expected = observers.clone();
                expected.sort_unstable();
                assert_eq!(claimed, expected, "peer {peer}, k {k}");
                for (rank, observer) in observers.iter().enumerate() {
                    assert_eq!(members.rank_among_observers(observer, peer, k), Some(rank));
                }
            }
        }
    }

    /// Every peer has exactly K observers; the busiest observer's share and the churn when
    /// one member leaves stay small. Printed figures are for the README (`--nocapture`).
    fn federation_figures(n: usize, k: usize, sampled_peers: usize) -> (usize, usize) {
        let all = names(n);
        let members = Members::new(all.iter().map(String::as_str));
        let step = (n / sampled_peers).max(1);
        let mut load = std::collections::HashMap::<&str, usize>::new();
        let leaving = all[n / 2].as_str();
        let rest = Members::new(all.iter().map(String::as_str).filter(|m| *m != leaving));
        // The peers the leaver observes are the ones whose observers must change: sample
        // them too (found the way the leaver's own sidecar finds them).
        let leavers_share: Vec<&String> = all
            .iter()
            .filter(|peer| members.rank_among_observers(leaving, peer, k).is_some())
            .collect();
        assert!(!leavers_share.is_empty(), "the leaver observes someone");
        let mut sample: Vec<&String> = all.iter().step_by(step).collect();
        sample.extend(leavers_share.iter().copied());
        sample.sort();
        sample.dedup();
        let mut moved = 0;
        for peer in sample {
            let observers = members.observers_of(peer, k);
            assert_eq!(observers.len(), k, "peer {peer}");
            for observer in &observers {
                *load.entry(observer).or_default() += 1;
            }
            if peer != leaving {
                let after = rest.observers_of(peer, k);
                moved += after.iter().filter(|o| !observers.contains(o)).count();
            }
        }
        let busiest = load.values().copied().max().unwrap_or(0);
        // Each peer the leaver observed gets exactly one new observer; no other peer changes.
        assert_eq!(moved, leavers_share.len(), "assignments that moved");
        (busiest, moved)
    }

    #[test]
    fn ten_thousand_members_every_peer_has_k_observers_and_one_leaving_moves_few() {
        let (n, k) = (10_000, 8);
        let (busiest, moved) = federation_figures(n, k, n);
        println!("N={n} K={k}: busiest observer observes {busiest} peers; one member leaving moved {moved} assignments");
        // Each observer observes K peers on average; the busiest a small multiple of it.
        assert!(
            busiest <= 4 * k,
            "busiest observer observes {busiest} peers"
        );
        // Only the K peers the leaver observed get a new observer each.
        assert!(
            moved <= 2 * k,
            "one member leaving moved {moved} assignments"
        );
    }

    #[test]
    fn a_hundred_thousand_members_every_sampled_peer_has_k_observers() {
        // The whole federation is 10^10 score computations; a sample of 500 peers (each
        // against all 100,000 members) checks exact K and stability at that size.
        let (n, k) = (100_000, 8);
        let (_, moved) = federation_figures(n, k, 500);
        println!(
            "N={n} K={k}, 500 sampled peers: one member leaving moved {moved} of their assignments"
        );
        assert!(
            moved <= 2 * k,
            "one member leaving moved {moved} assignments"
        );
    }
}
