//! Unit tests of `confirmation`.

use super::*;

const HOLD: Duration = Duration::from_secs(300);

fn membership(others: usize) -> Membership {
    Membership {
        generation: 1,
        others,
        sampled: true,
        budget: 16,
    }
}

fn confirmer() -> Confirmer {
    Confirmer::new(SequentialTest::DEFAULT, fastrand::Rng::with_seed(5))
}

/// Answers for draws: member `i` holds "new" when `holds(i)`, else "old".
fn answer(draws: &Draws, holds: impl Fn(usize) -> bool) -> Vec<Sample> {
    draws
        .confirmation
        .iter()
        .map(|&i| Sample {
            peer: format!("m{i}"),
            url: format!("http://m{i}"),
            node_id: Some(format!("node-{i}")),
            root: Some(if holds(i) { "new" } else { "old" }.to_owned()),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_large_majority_is_confirmed_within_the_budget_per_interval() {
    let (mut c, m) = (confirmer(), membership(10_000));
    let now = Instant::now();
    assert_eq!(
        c.standing("new", "old", &m, now, HOLD),
        Standing::Confirming
    );
    let mut intervals = 0;
    loop {
        assert_eq!(
            c.standing("new", "old", &m, now, HOLD),
            Standing::Confirming
        );
        let draws = c.draws(&m, false);
        assert!(draws.confirmation.len() <= 16);
        intervals += 1;
        let samples = answer(&draws, |i| i % 10 < 8); // 80 % hold "new"
        if c.record_draws(1, samples, Some("me"), now, HOLD) != Verdict::Pending {
            break;
        }
    }
    assert_eq!(c.standing("new", "old", &m, now, HOLD), Standing::Confirmed);
    let view = c.view(now);
    assert_eq!(view.state, "confirmed");
    assert!(view.statistic >= 35, "{view:?}");
    assert_eq!(view.intervals, intervals);
    assert_eq!(c.sampled_sources("new").len(), SOURCES_KEPT);
    assert_eq!(view.outcomes_total, [1, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_refuted_target_is_held_back_then_confirmed_afresh() {
    let (mut c, m) = (confirmer(), membership(1_000));
    let now = Instant::now();
    loop {
        c.standing("new", "old", &m, now, HOLD);
        let draws = c.draws(&m, false);
        let samples = answer(&draws, |i| i % 10 < 2); // 20 %
        if c.record_draws(1, samples, None, now, HOLD) != Verdict::Pending {
            break;
        }
    }
    assert_eq!(c.view(now).state, "refuted");
    tokio::time::advance(HOLD - Duration::from_millis(1)).await;
    let later = Instant::now();
    assert_eq!(
        c.standing("new", "old", &m, later, HOLD),
        Standing::Unconfirmed
    );
    assert!(
        c.draws(&m, false).confirmation.is_empty(),
        "no draws while held"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        c.standing("new", "old", &m, Instant::now(), HOLD),
        Standing::Confirming
    );
}

/// A whole-membership episode of 5 members towards "new" from "old", and its draws.
fn episode_of_five(now: Instant) -> Confirmer {
    let (mut c, m) = (confirmer(), membership(5));
    c.standing("new", "old", &m, now, HOLD);
    let draws = c.draws(&m, false);
    assert_eq!(draws.confirmation.len(), 5, "the whole membership");
    c
}

/// Member i's answer: `node` with `root`.
fn sample(i: usize, node: &str, root: &str) -> Sample {
    Sample {
        peer: format!("m{i}"),
        url: format!("http://m{i}"),
        node_id: Some(node.to_owned()),
        root: Some(root.to_owned()),
    }
}

#[tokio::test(start_paused = true)]
async fn one_node_one_vote_and_the_local_node_never_votes() {
    let now = Instant::now();
    let mut c = episode_of_five(now);
    // Three members answer "new" but are one node; one is the local node itself.
    let samples = vec![
        sample(0, "b", "new"),
        sample(1, "b", "new"),
        sample(2, "b", "new"),
        sample(3, "me", "old"),
        sample(4, "c", "old"),
    ];
    let verdict = c.record_draws(1, samples, Some("me"), now, HOLD);
    let view = c.view(now);
    assert_eq!((view.discarded, view.voters, view.for_target), (3, 3, 1));
    // Three voters (me, b, c): b alone is not a majority.
    assert_eq!(verdict, Verdict::Refuted);
}

#[tokio::test(start_paused = true)]
async fn a_node_id_answered_with_two_roots_is_contested_and_neither_answer_votes() {
    let now = Instant::now();
    let mut c = episode_of_five(now);
    // Impostors answer first, each with an honest member's node_id and the target root.
    let samples = vec![
        sample(0, "c", "new"),
        sample(1, "d", "new"),
        sample(2, "e", "new"),
        sample(3, "c", "old"),
        sample(4, "d", "old"),
    ];
    c.record_draws(1, samples, Some("me"), now, HOLD);
    let view = c.view(now);
    // c and d are contested (4 answers discarded); only e votes for "new".
    assert_eq!((view.discarded, view.for_target, view.sampled), (4, 1, 1));
    assert_eq!(view.votes.get("new"), Some(&1));
    assert_eq!(view.votes.get("old"), None);
    // Before: the first answer owned the node_id and "new" had 3 of 6 votes drawn.
    assert_ne!(view.state, "confirmed");
}

#[tokio::test(start_paused = true)]
async fn failed_pulls_count_against_and_a_new_member_list_starts_over() {
    let (mut c, m) = (confirmer(), membership(4));
    let now = Instant::now();
    c.standing("new", "old", &m, now, HOLD);
    let draws = c.draws(&m, false);
    let mut samples = answer(&draws, |_| true);
    samples[0].root = None;
    samples[0].node_id = None;
    samples[1].root = None;
    samples[1].node_id = None;
    // 2 of 5 voters for "new", 2 unreachable: not a majority of the whole membership.
    assert_eq!(
        c.record_draws(1, samples, None, now, HOLD),
        Verdict::Refuted
    );
    assert_eq!(c.view(now).failed, 2);

    let reloaded = Membership {
        generation: 2,
        ..membership(4)
    };
    assert_eq!(
        c.standing("newer", "old", &reloaded, now, HOLD),
        Standing::Confirming
    );
    let stale = c.record_draws(1, answer(&draws, |_| true), None, now, HOLD);
    assert_eq!(
        stale,
        Verdict::Pending,
        "draws of another member list are void"
    );
    assert_eq!(c.view(now).sampled, 0);
}

#[test]
fn draws_are_without_replacement_and_cover_the_membership() {
    let mut rng = fastrand::Rng::with_seed(3);
    for others in [1, 7, 40, 1_000] {
        let mut drawn = HashSet::new();
        while drawn.len() < others {
            let batch = pick(&mut rng, &drawn, others, 16);
            assert!(!batch.is_empty());
            for position in batch {
                assert!(position < others);
                assert!(drawn.insert(position), "{position} drawn twice");
            }
        }
        assert!(pick(&mut rng, &drawn, others, 16).is_empty());
    }
}

#[test]
fn the_probe_stays_on_a_diverging_member_and_moves_on_from_an_agreeing_one() {
    let mut c = confirmer();
    let m = membership(1_000);
    let first = c.draws(&m, true).probe.unwrap();
    let answer = |member: usize, root: &str| Sample {
        peer: format!("m{member}"),
        url: format!("http://m{member}"),
        node_id: Some(format!("n{member}")),
        root: Some(root.to_owned()),
    };
    c.record_probe(1, answer(first, "new"), Some("old"));
    assert_eq!(c.draws(&m, true).probe, Some(first));
    c.record_probe(1, answer(first, "new"), Some("old"));
    assert_eq!(c.probe_facts().map(|f| f.streak), Some(2));
    c.record_probe(1, answer(first, "old"), Some("old"));
    assert!(c.probe_facts().is_none());
    assert_eq!(c.view(Instant::now()).probe_pulls_total, 3);
    assert_eq!(c.draws(&m, false).probe, None, "no probe when not probing");
}

#[tokio::test(start_paused = true)]
async fn an_episode_of_discarded_draws_still_ends_after_the_budget() {
    // Regression: discarded draws used up the budget without counting towards it, and
    // the episode stayed "confirming" for ever with nothing left to draw.
    let (mut c, m) = (confirmer(), membership(100_000));
    let now = Instant::now();
    let mut verdict = Verdict::Pending;
    for _ in 0..100 {
        c.standing("new", "old", &m, now, HOLD);
        let draws = c.draws(&m, false);
        // Alternate votes keep the lead near 0; every twentieth member is the local node:
        // too few discards for the duplicates rule, enough to keep the votes under 600.
        let samples = draws
            .confirmation
            .iter()
            .enumerate()
            .map(|(n, &i)| Sample {
                peer: String::new(),
                url: String::new(),
                node_id: Some(if i % 20 == 0 {
                    "me".to_owned()
                } else {
                    format!("node-{i}")
                }),
                root: Some(if n % 2 == 0 { "new" } else { "old" }.to_owned()),
            })
            .collect();
        verdict = c.record_draws(1, samples, Some("me"), now, HOLD);
        if verdict != Verdict::Pending {
            break;
        }
    }
    assert_eq!(verdict, Verdict::Undecided, "{:?}", c.view(now));
    assert!(c.view(now).discarded > 0);
}

#[tokio::test(start_paused = true)]
async fn draws_happen_only_in_intervals_that_ask_for_them() {
    let (mut c, m) = (confirmer(), membership(1_000));
    let now = Instant::now();
    c.standing("new", "old", &m, now, HOLD);
    assert_eq!(c.draws(&m, false).confirmation.len(), 16);
    assert!(
        c.draws(&m, false).confirmation.is_empty(),
        "not asked again"
    );
    c.standing("new", "old", &m, now, HOLD);
    assert_eq!(
        c.draws(&m, false).confirmation.len(),
        16,
        "the same episode goes on"
    );
    assert_eq!(c.view(now).intervals, 2);
}

#[tokio::test(start_paused = true)]
async fn the_probe_leaves_a_member_whose_root_was_refuted_and_survives_a_failed_pull() {
    let (mut c, m) = (confirmer(), membership(1_000));
    let now = Instant::now();
    let first = c.draws(&m, true).probe.unwrap();
    let answer = |root: Option<&str>| Sample {
        peer: "p".into(),
        url: "http://p".into(),
        node_id: root.map(|_| "p".to_owned()),
        root: root.map(str::to_owned),
    };
    c.record_probe(1, answer(Some("stuck")), Some("old"));
    c.record_probe(1, answer(None), Some("old"));
    assert_eq!(
        c.probe_facts().map(|f| f.streak),
        Some(1),
        "a failure holds the streak"
    );
    assert_eq!(c.draws(&m, true).probe, Some(first));
    // The stuck root is confirmed and refuted (every member answers "old").
    loop {
        c.standing("stuck", "old", &m, now, HOLD);
        let draws = c.draws(&m, true);
        let samples = answer_all(&draws, "old");
        if c.record_draws(1, samples, None, now, HOLD) != Verdict::Pending {
            break;
        }
    }
    assert_eq!(c.view(now).state, "refuted");
    let next = c.draws(&m, true).probe;
    assert!(next.is_some());
    assert!(
        c.probe_facts().is_none(),
        "the probe moved on to a fresh member"
    );
}

fn answer_all(draws: &Draws, root: &str) -> Vec<Sample> {
    draws
        .confirmation
        .iter()
        .map(|&i| Sample {
            peer: String::new(),
            url: String::new(),
            node_id: Some(format!("node-{i}")),
            root: Some(root.to_owned()),
        })
        .collect()
}
