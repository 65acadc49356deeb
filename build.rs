//! Records the git revision for `peerscope_build_info{revision}`.

fn main() {
    // A build without .git (the Dockerfile's) passes the revision in PEERSCOPE_REVISION.
    println!("cargo:rerun-if-env-changed=PEERSCOPE_REVISION");
    let given = std::env::var("PEERSCOPE_REVISION")
        .ok()
        .filter(|s| !s.is_empty());
    let revision = given
        .or_else(|| {
            std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PEERSCOPE_REVISION={revision}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
}
