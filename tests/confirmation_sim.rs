//! The confirmation's bounds (SPEC §6) on a part of the simulated table, in a debug build:
//! the whole table (N up to 100,000, K = 8 and 16, every split, 2,000 trials per point) is
//! `peerscope bench confirmation`, which `.ci/test` runs in a release build.

use peerscope_lab::confirmation::{run_point, Bound, Point};

#[test]
fn a_majority_node_never_asks_and_a_minority_node_asks_in_time() {
    let mut checked = 0;
    for members in [1_000, 100_000] {
        for shares in [&[60, 40][..], &[70, 30][..]] {
            for local in 0..2 {
                let point = Point {
                    members,
                    observers: 8,
                    shares: Box::leak(shares.to_vec().into_boxed_slice()),
                    local,
                };
                let row = run_point(&point, 300, 42 + checked);
                match point.bound() {
                    Bound::NoRequest => {
                        assert_eq!(row.requests, 0, "{point:?}");
                        assert!(
                            row.exact_confirm <= 1e-6,
                            "{point:?}: {}",
                            row.exact_confirm
                        );
                    }
                    Bound::RequestWithin(limit) => {
                        let within = if limit <= 20 {
                            row.within_20
                        } else {
                            row.within_40
                        };
                        assert_eq!(within, row.trials, "{point:?}: {within} of {}", row.trials);
                    }
                    Bound::None => unreachable!("60/40 and 70/30 are all bounded"),
                }
                assert!(row.meets_bound());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn near_an_even_split_the_majority_side_stays_put() {
    // 55/45 is inside the indifference zone (40–60 %): no 10⁻⁶ bound, but one episode of
    // the 55 % side confirms the 45 % root with the exact probability 3.5·10⁻⁴, and the
    // 45 % side is moved most of the time.
    let majority = Point {
        members: 10_000,
        observers: 8,
        shares: &[55, 45],
        local: 0,
    };
    let row = run_point(&majority, 300, 7);
    assert!(row.exact_confirm < 1e-3, "{}", row.exact_confirm);
    assert!(
        row.requests <= 3,
        "{} of 300 majority nodes asked",
        row.requests
    );
    let minority = Point {
        local: 1,
        ..majority
    };
    let row = run_point(&minority, 300, 8);
    assert!(
        row.within_40 >= 240,
        "{} of 300 minority nodes asked",
        row.within_40
    );
}
