//! The rolling log files of `log_file`: `DIR/peerscope.2026-12-03.log` (daily) or
//! `DIR/peerscope.2026-12-03-15.log` (hourly), at most `log_max_files` kept.
//!
//! Written here rather than with tracing-appender's rolling appender, which opens its
//! files following links: a symlink planted at the next file's name by anyone who can
//! write the directory made peerscope append its log to any file its user may write
//! (issue 19, item 3). Each file is opened with `O_NOFOLLOW` (a link there is refused,
//! said once on stderr, and the lines of that period are dropped), created mode 0640.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogRotation;

const PREFIX: &str = "peerscope.";
const SUFFIX: &str = ".log";

/// A `Write` that appends to the file of the current period.
pub(crate) struct RollingLog {
    directory: PathBuf,
    rotation: LogRotation,
    max_files: usize,
    /// The period of the open file, and the file (`None` if it could not be opened).
    current: Option<(String, Option<File>)>,
}

impl RollingLog {
    /// Opens the file of the current period now, so that a directory that cannot be used
    /// (or a link at the file's name) stops the start with the reason.
    pub(crate) fn open(
        directory: &Path,
        rotation: LogRotation,
        max_files: usize,
    ) -> io::Result<RollingLog> {
        // Created if missing, as the directory of a checkpoint is.
        std::fs::create_dir_all(directory)?;
        let mut log = RollingLog {
            directory: directory.to_owned(),
            rotation,
            max_files: max_files.max(1),
            current: None,
        };
        let period = period(rotation, SystemTime::now());
        let file = open_no_follow(&log.file_name(&period))?;
        log.current = Some((period, Some(file)));
        log.prune();
        Ok(log)
    }

    fn file_name(&self, period: &str) -> PathBuf {
        self.directory.join(format!("{PREFIX}{period}{SUFFIX}"))
    }

    /// The file of the period `now` falls in, opened (and old files pruned) when the
    /// period changed.
    fn file(&mut self, now: SystemTime) -> Option<&mut File> {
        let period = period(self.rotation, now);
        if self.current.as_ref().map(|(p, _)| p) != Some(&period) {
            let path = self.file_name(&period);
            // A directory removed meanwhile is made again, as at start.
            let _ = std::fs::create_dir_all(&self.directory);
            let file = match open_no_follow(&path) {
                Ok(file) => Some(file),
                Err(error) => {
                    // The log itself cannot say it: stderr, once per period.
                    eprintln!(
                        "peerscope: cannot open the log file {}: {error}; this period's lines go to stderr only",
                        path.display()
                    );
                    None
                }
            };
            self.current = Some((period, file));
            self.prune();
        }
        self.current.as_mut().and_then(|(_, file)| file.as_mut())
    }

    /// Removes the oldest log files beyond `max_files` (names sort by period). A link is
    /// removed as a link: nothing it points to is touched.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.directory) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(PREFIX) && name.ends_with(SUFFIX))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(self.max_files);
        for name in &names[..excess] {
            let _ = std::fs::remove_file(self.directory.join(name));
        }
    }
}

impl Write for RollingLog {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.file(SystemTime::now()) {
            Some(file) => file.write_all(bytes).map(|()| bytes.len()),
            // Dropped (said once on stderr); stderr gets every line anyway.
            None => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut().and_then(|(_, file)| file.as_mut()) {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Appends to `path`, created mode 0640 if missing; a symlink there is refused (`ELOOP`),
/// and so is anything but a regular file (a FIFO planted there would block the open: it
/// is opened without blocking, then refused).
fn open_no_follow(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| {
            if error.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!(
                    "{} is a symbolic link; peerscope does not write through links",
                    path.display()
                ))
            } else if error.raw_os_error() == Some(libc::ENXIO) {
                io::Error::other(format!(
                    "{} is not a regular file (a FIFO nobody reads)",
                    path.display()
                ))
            } else {
                error
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// `2026-12-03` (daily) or `2026-12-03-15` (hourly), in UTC.
fn period(rotation: LogRotation, now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_date(seconds / 86_400);
    match rotation {
        LogRotation::Daily => format!("{year:04}-{month:02}-{day:02}"),
        LogRotation::Hourly => {
            format!(
                "{year:04}-{month:02}-{day:02}-{:02}",
                seconds % 86_400 / 3600
            )
        }
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn periods_are_utc_dates_and_hours() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_310_000); // 2026-12-03T15:00:00Z
        assert_eq!(period(LogRotation::Daily, at), "2026-12-03");
        assert_eq!(period(LogRotation::Hourly, at), "2026-12-03-15");
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
    }

    /// Regression (issue 19, item 3): a link planted at the log file's name was written
    /// through by the rolling appender.
    #[test]
    fn a_link_at_the_log_files_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let name = format!(
            "peerscope.{}.log",
            period(LogRotation::Daily, SystemTime::now())
        );
        std::os::unix::fs::symlink(&victim, dir.path().join(&name)).unwrap();
        let refused = RollingLog::open(dir.path(), LogRotation::Daily, 7)
            .err()
            .expect("a link at the log file is refused");
        assert!(refused.to_string().contains("symbolic link"), "{refused}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // A FIFO there is refused too, rather than blocking the open.
        std::fs::remove_file(dir.path().join(&name)).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join(&name))
            .status()
            .unwrap();
        assert!(made.success());
        let refused = RollingLog::open(dir.path(), LogRotation::Daily, 7)
            .err()
            .expect("a FIFO at the log file is refused");
        assert!(
            refused.to_string().contains("not a regular file"),
            "{refused}"
        );
    }

    #[test]
    fn lines_are_appended_and_old_files_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for old in ["2026-11-01", "2026-11-02", "2026-11-03"] {
            std::fs::write(dir.path().join(format!("peerscope.{old}.log")), "old\n").unwrap();
        }
        std::fs::write(dir.path().join("unrelated.txt"), "kept\n").unwrap();
        let mut log = RollingLog::open(dir.path(), LogRotation::Daily, 2).unwrap();
        log.write_all(b"line one\n").unwrap();
        log.write_all(b"line two\n").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let today = format!(
            "peerscope.{}.log",
            period(LogRotation::Daily, SystemTime::now())
        );
        assert_eq!(
            names,
            [
                "peerscope.2026-11-03.log".to_owned(),
                today.clone(),
                "unrelated.txt".to_owned()
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(today)).unwrap(),
            "line one\nline two\n"
        );
    }
}
