//! The summary decoder (`peer_sync_payload@1`): any body a peer sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    use peerscope::pull::contract::{decode_by_value, decode_summary, decode_typed};
    // The typed pass accepts nothing the value decoder refuses, and reads what both accept
    // the same way.
    if let Some(typed) = decode_typed(body) {
        assert_eq!(Ok(&typed), decode_by_value(body).as_ref(), "{body:?}");
    }
    if let Ok(summary) = decode_summary(body) {
        // What the decoder accepted holds the contract's promises.
        assert!(peerscope::pull::contract::valid_node_id(&summary.node_id));
        assert!(summary.timestamp.is_finite() && summary.timestamp > 0.0);
        let g_star = summary.metrics.g_star();
        assert!((0.0..=1.0).contains(&g_star), "g_star {g_star}");
        if let Some(root) = &summary.state_root {
            assert!(!root.is_empty() && root.len() <= 128);
            assert!(root.bytes().all(|b| b.is_ascii_graphic()), "{root:?}");
        }
    }
});
