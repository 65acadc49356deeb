//! Drawing members uniformly at random without replacement: the confirmation's draws
//! (and the lab's simulation of them).

use std::collections::HashSet;

/// `count` positions in `0..others` not in `drawn`, uniformly at random without
/// replacement.
pub fn pick(
    rng: &mut fastrand::Rng,
    drawn: &HashSet<usize>,
    others: usize,
    count: usize,
) -> Vec<usize> {
    let left = others.saturating_sub(drawn.len());
    let count = count.min(left);
    if (drawn.len() + count) * 2 <= others {
        // Most positions are free: draw and redraw the few that are taken.
        let mut picked = Vec::with_capacity(count);
        let mut chosen = HashSet::with_capacity(count);
        while picked.len() < count {
            let position = rng.usize(..others);
            if !drawn.contains(&position) && chosen.insert(position) {
                picked.push(position);
            }
        }
        picked
    } else {
        let mut rest: Vec<usize> = (0..others).filter(|p| !drawn.contains(p)).collect();
        for i in 0..count {
            let j = rng.usize(i..rest.len());
            rest.swap(i, j);
        }
        rest.truncate(count);
        rest
    }
}
