//! Unit tests of `exposition`.

use super::*;

fn writer() -> Writer {
    Writer {
        text: String::new(),
        family: None,
        header_pending: false,
        open_metrics: false,
        created: None,
    }
}

#[test]
fn label_values_are_escaped() {
    let mut out = writer();
    out.family(&f::PEER_UP);
    out.sample(&[("peer", "a\"b\\c\nd")], 0.5);
    out.family(&f::NOVELTY);
    out.sample(&[], f64::INFINITY);
    assert_eq!(
        out.text,
        format!(
            "# HELP peerscope_peer_up {}\n# TYPE peerscope_peer_up gauge\npeerscope_peer_up{{peer=\"a\\\"b\\\\c\\nd\"}} 0.5\n# HELP peerscope_novelty {}\n# TYPE peerscope_novelty gauge\npeerscope_novelty +Inf\n",
            f::PEER_UP.help,
            f::NOVELTY.help
        )
    );
}

#[test]
fn the_scraper_chooses_the_format() {
    let of = |accept: &'static str| negotiate(Some(&HeaderValue::from_static(accept)));
    assert_eq!(negotiate(None), Format::Text);
    assert_eq!(
        of("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        Format::OpenMetrics
    );
    assert_eq!(of("application/openmetrics-text"), Format::OpenMetrics);
    assert_eq!(
        of("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"),
        Format::Text
    );
    assert_eq!(
        of("application/openmetrics-text;version=0.0.1"),
        Format::Text,
        "a version we do not write"
    );
    assert_eq!(of("application/openmetrics-text;q=0"), Format::Text);
    assert_eq!(of("*/*"), Format::Text);
    assert_eq!(of("application/json"), Format::Text);
}

#[test]
fn open_metrics_names_counter_families_without_total_and_closes_points_with_created() {
    let mut out = writer();
    out.open_metrics = true;
    out.created = Some(1700000000.5);
    out.family(&f::PEER_POLLS_TOTAL);
    out.sample(&[("peer", "b")], 3.0);
    out.family(&f::PEER_UP);
    out.sample(&[("peer", "b")], 1.0);
    out.family(&f::PEER_POLL_DURATION_SECONDS);
    out.series("_bucket", &[("peer", "b"), ("le", "+Inf")], 2.0);
    out.series("_sum", &[("peer", "b")], 0.5);
    out.series("_count", &[("peer", "b")], 2.0);
    let lines: Vec<&str> = out
        .text
        .lines()
        .filter(|l| !l.starts_with("# HELP"))
        .collect();
    assert_eq!(
        lines,
        [
            "# TYPE peerscope_peer_polls counter",
            "peerscope_peer_polls_total{peer=\"b\"} 3",
            "peerscope_peer_polls_created{peer=\"b\"} 1700000000.5",
            "# TYPE peerscope_peer_up gauge",
            "peerscope_peer_up{peer=\"b\"} 1",
            "# TYPE peerscope_peer_poll_duration_seconds histogram",
            "peerscope_peer_poll_duration_seconds_bucket{peer=\"b\",le=\"+Inf\"} 2",
            "peerscope_peer_poll_duration_seconds_sum{peer=\"b\"} 0.5",
            "peerscope_peer_poll_duration_seconds_count{peer=\"b\"} 2",
            "peerscope_peer_poll_duration_seconds_created{peer=\"b\"} 1700000000.5",
        ]
    );
}

#[test]
fn a_family_without_samples_writes_nothing() {
    let mut out = writer();
    out.family(&f::PEER_QUALITY);
    out.family(&f::NODE_UP);
    out.sample(&[], 1.0);
    assert!(!out.text.contains("peerscope_peer_quality"));
    assert!(out.text.starts_with("# HELP peerscope_node_up "));
}
