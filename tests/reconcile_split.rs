//! Reconciliation at scale with the real binary (SPEC §6): 60 sidecars with sampled
//! observation (K = 8) and `reconcile.mode = "on"` beside 60 simulated nodes split 70/30,
//! nodes that keep their roots. No majority node may ever ask to reconcile; every minority
//! node must ask, towards the majority root.

use std::time::Duration;

use peerscope_lab::split::{run_split, SplitArgs, SplitOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_sidecars_split_seventy_thirty_only_the_minority_asks() {
    let options = SplitOptions {
        args: SplitArgs {
            nodes: 60,
            minority_percent: 30,
            observers_per_peer: 8,
            interval: Duration::from_secs(2),
            duration: Duration::from_secs(60),
        },
        program: env!("CARGO_BIN_EXE_peerscope").into(),
    };
    let report = run_split(&options).await.expect("the split runs");
    println!("{report:?}");
    assert_eq!(report.minority, 18);
    assert_eq!(
        report.majority_asked,
        Vec::<usize>::new(),
        "majority nodes asked to reconcile"
    );
    assert_eq!(report.minority_asked_elsewhere, Vec::<usize>::new());
    assert_eq!(
        report.minority_asked.len(),
        report.minority,
        "minority nodes that asked: {:?}",
        report.minority_asked
    );
    // Confirmation pulls are bounded: far below a full mesh (N² = 3,600 per interval).
    assert!(
        report.peak_pulls_per_second < 3.0 * report.quiet_pulls_per_second,
        "{report:?}"
    );
}
