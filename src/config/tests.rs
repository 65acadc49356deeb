//! Unit tests of `config`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_with(
    file: Option<&str>,
    flags: Vec<(&'static str, String)>,
    vars: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peerscope.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    let environment = env(vars);
    load(&Sources {
        file: file.map(|_| path.as_path()),
        flags,
        env: &environment,
    })
}

#[test]
fn defaults_apply_when_every_source_is_silent() {
    let config = load_with(None, vec![], &[("PEERSCOPE_NODE", "http://127.0.0.1:8000")]).unwrap();
    assert_eq!(config.interval, Duration::from_secs(30));
    assert_eq!(config.timeout, Duration::from_millis(2500));
    assert_eq!(config.window, Duration::from_secs(300));
    assert_eq!(config.live_max_age, Duration::from_secs(90));
    assert_eq!(config.listen, "127.0.0.1:9478".parse().unwrap());
    assert_eq!(
        config.weights,
        QualityWeights {
            success: 0.5,
            latency: 0.3,
            freshness: 0.2
        }
    );
    assert_eq!(config.body_limit, 1024 * 1024);
    assert!(config.peers.is_empty());
}

#[test]
fn flags_beat_environment_beat_file_beat_seed() {
    let file =
        "node = \"http://127.0.0.1:8000\"\ninterval = \"20s\"\ntimeout = 4\nwindow = \"10m\"\n";
    let vars = [
        ("PEERSCOPE_INTERVAL", "15s"),
        ("NOVA_FED_SYNC_INTERVAL", "99"),
        ("NOVA_FED_SYNC_TIMEOUT", "1"),
        ("NOVA_FED_QUALITY_W1", "0.7"),
    ];
    let config = load_with(Some(file), vec![], &vars).unwrap();
    assert_eq!(config.interval, Duration::from_secs(15));
    assert_eq!(config.timeout, Duration::from_secs(4));
    assert_eq!(config.weights.success, 0.7);
    let flags = vec![("interval", "12s".to_owned())];
    let config = load_with(Some(file), flags, &vars).unwrap();
    assert_eq!(config.interval, Duration::from_secs(12));
    assert_eq!(config.window, Duration::from_secs(600));
}

#[test]
fn seed_peers_are_a_fallback_for_the_peer_list() {
    let vars = [
        ("PEERSCOPE_NODE", "http://n:1"),
        (
            "NOVA_FED_PEERS",
            "http://10.0.0.1:8100, http://10.0.0.2:8100/nova/",
        ),
    ];
    let config = load_with(None, vec![], &vars).unwrap();
    let labels: Vec<_> = config.peers.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["10.0.0.1:8100", "10.0.0.2:8100/nova"]);
    assert_eq!(config.peers[1].url.as_str(), "http://10.0.0.2:8100/nova");
    let file = "[[peers]]\nurl = \"http://10.0.0.3:8100\"\nname = \"nova-c\"\n";
    let config = load_with(Some(file), vec![], &vars).unwrap();
    assert_eq!(config.peers.len(), 1);
    assert_eq!(config.peers[0].label, "nova-c");
}

#[test]
fn each_bad_value_is_refused_with_its_own_message() {
    let node = ("PEERSCOPE_NODE", "http://127.0.0.1:8000");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 10] = [
        (
            "interval = \"10000000000000000000\"\n",
            &[node],
            "interval: duration \"10000000000000000000\" is longer than the maximum",
        ),
        (
            "interval = \"1ms\"\ntimeout = \"0.5ms\"\nwindow = \"1h\"\n",
            &[node],
            "keeps more than 100000 samples per peer",
        ),
        ("timeout = \"30s\"\n", &[node], "timeout 30s (from "),
        (
            "[quality]\nw_success = 0\nw_latency = 0\nw_freshness = 0\n",
            &[node],
            "weights w_success, w_latency and w_freshness are all 0",
        ),
        (
            "[[peers]]\nurl = \"not a url\"\n",
            &[node],
            "peers[0].url: \"not a url\" is not a URL",
        ),
        (
            "[[peers]]\nurl = \"http://a:1\"\n[[peers]]\nurl = \"http://a:1/\"\n",
            &[node],
            "peers: http://a:1/ is listed twice",
        ),
        (
            "interval = \"soon\"\n",
            &[node],
            "interval: invalid duration \"soon\"",
        ),
        ("intervall = \"30s\"\n", &[node], "unknown key `intervall`"),
        (
            "",
            &[node, ("PEERSCOPE_TIMEOUT", "x")],
            "environment variable PEERSCOPE_TIMEOUT: timeout: invalid duration",
        ),
        ("", &[], "node: the local node's base URL is required"),
    ];
    for (file, vars, expected) in cases {
        let err = load_with(Some(file), vec![], vars).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "for {file:?}: {err:?} lacks {expected:?}"
        );
    }
}

/// Regression (issue 12): a relative `peers_file` was taken from the working directory
/// (`/` under systemd), not from the configuration file's directory.
#[test]
fn relative_paths_in_the_file_are_taken_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    let file = dir.path().join("conf/peerscope.toml");
    std::fs::write(
        &file,
        "node = \"http://127.0.0.1:8000\"\npeers_file = \"peers.json\"\nadmin_token_file = \"/abs/token\"\n[checkpoint]\npath = \"state/cp.json\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("conf/peers.json"),
        r#"[{"targets": ["10.0.0.5:8100"]}]"#,
    )
    .unwrap();
    let config = load(&Sources {
        file: Some(&file),
        flags: vec![],
        env: &NoEnvironment,
    })
    .unwrap();
    assert_eq!(config.peers_file, Some(dir.path().join("conf/peers.json")));
    assert_eq!(config.peers.len(), 1);
    assert_eq!(
        config.checkpoint.path,
        Some(dir.path().join("conf/state/cp.json"))
    );
    assert_eq!(config.admin_token_file, Some(PathBuf::from("/abs/token")));
    // From a flag, relative stays relative: the working directory is the user's.
    let flagged = load(&Sources {
        file: Some(&file),
        flags: vec![("checkpoint.path", "here.json".to_owned())],
        env: &NoEnvironment,
    })
    .unwrap();
    assert_eq!(flagged.checkpoint.path, Some(PathBuf::from("here.json")));
}

#[test]
fn file_errors_name_the_file() {
    let err = load_with(Some("interval = \"soon\"\n"), vec![], &[]).unwrap_err();
    assert!(err.origin.ends_with("peerscope.toml"), "{err}");
}

#[test]
fn reconcile_section_has_defaults_and_checks_its_values() {
    let node = [("PEERSCOPE_NODE", "http://127.0.0.1:8000")];
    let config = load_with(None, vec![], &node).unwrap();
    assert_eq!(config.reconcile.mode, Mode::Off);
    assert_eq!(config.reconcile.policy, Policy::Majority);
    assert_eq!(config.reconcile.threshold, 3);
    assert_eq!(config.reconcile.cooldown, Duration::from_secs(300));
    assert_eq!(config.reconcile.backoff_cap, Duration::from_secs(1800));
    assert_eq!(config.reconcile.max_per_hour, 6);
    let file = "[reconcile]\nmode = \"dry-run\"\npolicy = \"any\"\nthreshold = 5\ntoken_file = \"/run/token\"\n";
    let vars = [node[0], ("PEERSCOPE_RECONCILE_MODE", "on")];
    let config = load_with(Some(file), vec![], &vars).unwrap();
    assert_eq!(
        config.reconcile.mode,
        Mode::On,
        "the environment beats the file"
    );
    assert_eq!(config.reconcile.policy, Policy::Any);
    assert_eq!(config.reconcile.threshold, 5);
    for (text, expected) in [
        (
            "[reconcile]\nmode = \"yes\"\n",
            "reconcile.mode: \"yes\" is not one of off, dry-run, on",
        ),
        ("[reconcile]\npath = \"reconcile\"\n", "must start with /"),
        (
            "[reconcile]\nbackoff_base = \"1h\"\n",
            "must not exceed reconcile.backoff_cap",
        ),
        (
            "[reconcile]\nsecret = 1\n",
            "unknown key `reconcile.secret`",
        ),
    ] {
        let err = load_with(Some(text), vec![], &node)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    }
}

#[test]
fn peer_lists_take_an_optional_name_before_the_url() {
    let vars = [
        ("PEERSCOPE_NODE", "http://n:1"),
        (
            "PEERSCOPE_PEERS",
            "nova-b=http://10.0.0.2:8100, http://10.0.0.3:8100/a=b",
        ),
    ];
    let config = load_with(None, vec![], &vars).unwrap();
    let peers: Vec<(&str, &str)> = config
        .peers
        .iter()
        .map(|p| (p.label.as_str(), p.url.as_str()))
        .collect();
    assert_eq!(
        peers,
        [
            ("nova-b", "http://10.0.0.2:8100/"),
            ("10.0.0.3:8100/a=b", "http://10.0.0.3:8100/a=b")
        ]
    );
    let err = load_with(None, vec![("peers", "=http://x:1".to_owned())], &vars[..1])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("flag --peer: peers: \"=http://x:1\": the name before `=` is empty"),
        "{err}"
    );
}

/// A `[[peers]]` table's access keys are the `pull.*` keys of the table: checked and
/// resolved the same way, named with the table's position when wrong.
#[test]
fn a_peer_tables_access_keys_are_the_pull_keys_of_the_table() {
    let node = [("PEERSCOPE_NODE", "http://127.0.0.1:8000")];
    let peer = |extra: &str| format!("[[peers]]\nurl = \"https://10.0.0.2:8100\"\n{extra}");
    let config = load_with(
        Some(&peer(
            "server_name = \"nova-b.example\"\ninsecure_skip_verify = false\n",
        )),
        vec![],
        &node,
    )
    .unwrap();
    let access = config.peers[0].access.as_deref().unwrap();
    assert_eq!(access.server_name.as_deref(), Some("nova-b.example"));
    assert_eq!(access.insecure_skip_verify, Some(false));
    assert_eq!(config.pull, transport::PeerAccess::default());
    for (extra, expected) in [
        (
            "server_name = \"not a name\"\n",
            "peers[0].server_name: \"not a name\" is not a DNS name",
        ),
        (
            "insecure_skip_verify = \"yes\"\n",
            "peers[0].insecure_skip_verify: \"yes\" is neither",
        ),
        (
            "authorization_type = \"Bearer x\"\n",
            "peers[0].authorization_type:",
        ),
        (
            "cert_file = \"\"\n",
            "peers[0].cert_file: must not be empty",
        ),
        ("colour = \"red\"\n", "peers[0]: unknown key `colour`"),
    ] {
        let err = load_with(Some(&peer(extra)), vec![], &node)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    }
}
