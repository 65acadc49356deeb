//! How long `/metrics` takes to render for 1,000 peers with full 5-minute windows
//! (300 samples each), in process: `cargo bench --bench render`. Prints figures; asserts nothing.

use std::time::{Duration, SystemTime};

use peerscope::act::Reconciler;
use peerscope::config::{self, Sources};
use peerscope::pull::contract::decode_summary;
use peerscope::pull::outcome::PullOutcome;
use peerscope::serve::exposition::{render, BuildInfo, Format, Rendering};
use peerscope::store::Store;
use tokio::time::Instant;

const PEERS: usize = 1000;
const CYCLES: u32 = 300;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let peers: Vec<String> = (0..PEERS).map(|i| format!("http://10.0.{}.{}:8100", i / 250, i % 250 + 1)).collect();
        let mut flags = vec![("node", "http://127.0.0.1:8000"), ("interval", "1s"), ("timeout", "0.8s")];
        flags.extend(peers.iter().map(|url| ("peers", url.as_str())));
        let config = config::load(&Sources::flags(&flags)).unwrap();
        let store = Store::new(&config);
        let plan = store.pull_plan();
        let body = |id: &str, g: f64| {
            format!(r#"{{"node_id":"{id}","timestamp":1762534863.4,"state_root":"r","state_height":5,"metrics":{{"peer_quality":0.9,"stability_margin":0.1,"hopf_distance":0.3,"spectral_radius":0.8,"gamma":0.6,"g_star":{g},"g_components":{{"P":0.5,"N":0.2,"Cc":0.7}}}}}}"#)
        };
        let outcome = |text: &str, millis: u64| PullOutcome {
            started: Instant::now(),
            duration: Duration::from_millis(millis),
            received_at: SystemTime::now(),
            result: Ok(decode_summary(text.as_bytes()).unwrap()),
        };
        let bodies: Vec<String> = (0..PEERS).map(|i| body(&format!("n{i}"), (i % 100) as f64 / 100.0)).collect();
        for cycle in 0..CYCLES {
            let outcomes = plan.peers.iter().zip(&bodies).enumerate().map(|(i, (t, b))| (t.id, outcome(b, 1 + (i as u64 + cycle as u64) % 40))).collect();
            store.record_cycle(Some((plan.node.id, outcome(&body("local", 0.5), 1))), outcomes, Instant::now());
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let process = peerscope::serve::process::ProcessFigures::read();
        let build = BuildInfo::current();
        let reconciler = Reconciler::new(config.reconcile.clone());
        let mut view_ms = Vec::new();
        let mut render_ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..30 {
            let started = std::time::Instant::now();
            let view = store.view(Instant::now());
            view_ms.push(started.elapsed().as_secs_f64() * 1e3);
            let rendering = Rendering { format: Format::Text, started_at: 0.0, exporter_metrics: true };
            let text = render(&view, &reconciler.view(Instant::now()), &Default::default(), &build, process.as_ref(), rendering);
            render_ms.push(started.elapsed().as_secs_f64() * 1e3);
            bytes = text.len();
        }
        view_ms.sort_by(f64::total_cmp);
        render_ms.sort_by(f64::total_cmp);
        println!("render: {PEERS} peers, {CYCLES} samples per window, {} KiB of exposition", bytes / 1024);
        println!("  snapshot (view)     median {:.2} ms, max {:.2} ms", view_ms[15], view_ms[29]);
        println!("  snapshot + render   median {:.2} ms, max {:.2} ms", render_ms[15], render_ms[29]);
    });
}
