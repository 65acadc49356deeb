//! Records the build's facts for `peerscope_build_info` and `--version`: the git revision,
//! the compiler's version and the build date (the commit's date, so that a rebuild of the
//! same commit says the same; `SOURCE_DATE_EPOCH` wins, as reproducible builds set it).

fn main() {
    // A build without .git (the Dockerfile's) passes the revision in PEERSCOPE_REVISION.
    println!("cargo:rerun-if-env-changed=PEERSCOPE_REVISION");
    let given = std::env::var("PEERSCOPE_REVISION")
        .ok()
        .filter(|s| !s.is_empty());
    let revision = given
        .or_else(|| run("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PEERSCOPE_REVISION={revision}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = run(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PEERSCOPE_RUSTC_VERSION={rustc_version}");

    let target = |key: &str| std::env::var(key).unwrap_or_else(|_| "unknown".to_owned());
    println!(
        "cargo:rustc-env=PEERSCOPE_TARGET={}/{}",
        target("CARGO_CFG_TARGET_OS"),
        target("CARGO_CFG_TARGET_ARCH")
    );

    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| run("git", &["log", "-1", "--format=%ct"]));
    let date = epoch
        .and_then(|e| e.trim().parse::<i64>().ok())
        .map(utc_date)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PEERSCOPE_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
}

/// A command's trimmed output, if it ran and succeeded.
fn run(program: &str, args: &[&str]) -> Option<String> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `YYYY-MM-DD` of a Unix time (the civil-from-days algorithm; no dependency for a date).
fn utc_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
