//! The demo, as a newcomer runs it: `cargo run --release -p peerscope-lab -- demo`.

use std::process::Command;

/// The demo prints its page's address first, and the page is there.
#[test]
fn the_demo_prints_its_page_first() {
    let listen = peerscope_lab::free_loopback_address().unwrap().to_string();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_peerscope-lab"))
        .args(["demo", "--duration", "60s", "--listen", &listen])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(demo.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(
        first.trim_end(),
        format!("peerscope demo: open http://{listen}/ in a browser")
    );
    let mut stream = std::net::TcpStream::connect(&listen).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut page = String::new();
    std::io::Read::read_to_string(&mut stream, &mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>peerscope</title>"));
    // `peerscope-lab demo | head -1`: a closed stdout ends the demo (at its next refresh,
    // long before the 60 s) with success, not a "failed printing to stdout" panic.
    drop(demo.stdout.take());
    let started = std::time::Instant::now();
    let output = demo.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?} {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(50));
}

#[test]
fn version_works_on_every_lab_command() {
    for command in [
        vec!["--version"],
        vec!["demo", "--version"],
        vec!["bench", "--version"],
        vec!["bench", "federation", "--version"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_peerscope-lab"))
            .args(&command)
            .output()
            .unwrap();
        assert!(output.status.success(), "{command:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{command:?}"
        );
    }
}
