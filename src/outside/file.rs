//! Bounded file reads. A configuration, peers, token or checkpoint file can be replaced by
//! a FIFO (an open that blocks until a writer comes), a device such as `/dev/zero` (a read
//! without end), a directory, a huge file, or sit on a network filesystem that stalls.
//! [`read_bounded`] refuses anything but a regular file and anything over its size limit;
//! [`off_runtime`] runs blocking work on a thread of its own under a time limit, so a stall
//! holds up neither the runtime's workers nor shutdown (a stuck thread is abandoned, and
//! the process still exits).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed (missing, unreadable, a symlink loop, …).
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The path names a FIFO, a device, a socket or a directory.
    #[error("not a regular file (it is {0})")]
    NotRegular(&'static str),
    /// The file is larger than its limit.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// The directory `path` is in: `.` for a bare file name. Relative paths written in a
/// file are taken from there.
pub(crate) fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Reads a whole regular file of at most `limit` bytes.
///
/// The file is opened with `O_NONBLOCK` so a FIFO cannot block the open, and its type is
/// checked on the opened descriptor (no race with a rename in between). The size is capped
/// while reading, not only by the size the file claims.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(describe(kind)));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Like [`read_bounded`], as UTF-8 text.
pub(crate) fn read_text_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Blocking work that did not finish: it took longer than its limit (it goes on,
/// abandoned, on its own thread), or no thread could be started for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unfinished {
    #[error("took longer than {0:?} (a stalled filesystem?)")]
    TimedOut(Duration),
    #[error("cannot start a thread for it: {0}")]
    NoThread(String),
    #[error("the thread doing it panicked")]
    Panicked,
}

/// Work running on a thread of its own; [`Pending::wait`] waits for it under a limit.
///
/// Kept by its owner after a time-out so the next attempt waits for the same work instead
/// of starting another thread that would stall the same way.
pub(crate) struct Pending<T> {
    answer: tokio::sync::oneshot::Receiver<T>,
}

impl<T: Send + 'static> Pending<T> {
    /// Starts `work` on a new thread.
    pub(crate) fn start(work: impl FnOnce() -> T + Send + 'static) -> std::io::Result<Self> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("peerscope-file".into())
            .spawn(move || {
                let _ = reply.send(work());
            })?;
        Ok(Pending { answer })
    }

    /// The work's result (`None` if it panicked), or `Err(self)` to wait again later if it
    /// took longer than `limit`.
    pub(crate) async fn wait(mut self, limit: Duration) -> Result<Option<T>, Self> {
        match tokio::time::timeout(limit, &mut self.answer).await {
            Ok(answer) => Ok(answer.ok()),
            Err(_) => Err(self),
        }
    }
}

/// Runs blocking `work` on a thread of its own; gives up waiting after `limit`.
pub(crate) async fn off_runtime<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    let pending = Pending::start(work).map_err(|e| Unfinished::NoThread(e.to_string()))?;
    match pending.wait(limit).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Unfinished::Panicked),
        Err(_) => Err(Unfinished::TimedOut(limit)),
    }
}

/// The largest token file read, in bytes.
pub(crate) const TOKEN_LIMIT: u64 = 4096;
/// How long reading a token file may take.
pub(crate) const TOKEN_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Reads a bearer token from its file, off the runtime: surrounding white space (the
/// trailing newline of `echo token > file`) is trimmed; an empty token, or one with a
/// character that cannot be sent in an `Authorization` header, is refused. Errors name
/// the file and never contain the token.
pub(crate) async fn read_token(path: &Path) -> Result<String, String> {
    let owned = path.to_path_buf();
    let read = off_runtime(TOKEN_TIME_LIMIT, move || {
        read_text_bounded(&owned, TOKEN_LIMIT)
    })
    .await;
    let shown = path.display();
    let text = match read {
        Ok(Ok(text)) => text,
        Ok(Err(error)) => return Err(format!("token file {shown}: {error}")),
        Err(unfinished) => return Err(format!("token file {shown}: {unfinished}")),
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("token file {shown}: is empty"));
    }
    if let Some(position) = token.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "token file {shown}: byte {position} of the token is not a visible ASCII character (a line break or a space inside it?)"
        ));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_within_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&path, 4),
            Err(ReadError::TooLarge { limit: 4 })
        ));
    }

    /// Regression (issue 12): a FIFO in place of the peers file blocked the open forever.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_bounded(&path, 1024).unwrap_err();
        assert!(matches!(error, ReadError::NotRegular("a FIFO")), "{error}");
    }

    /// Regression (issue 12): a peers file linked to /dev/zero was read until memory ran out.
    #[test]
    fn an_endless_device_and_a_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_bounded(&link, 1024).unwrap_err();
        assert!(
            matches!(error, ReadError::NotRegular("a character device")),
            "{error}"
        );
        let error = read_bounded(dir.path(), 1024).unwrap_err();
        assert!(
            matches!(error, ReadError::NotRegular("a directory")),
            "{error}"
        );
    }

    /// Regression (issue 12): a token with a line break inside was sent, failed in the
    /// HTTP client and was reported as `connect`.
    #[tokio::test]
    async fn tokens_are_trimmed_and_checked_without_showing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        assert_eq!(read_token(&path).await.unwrap(), "s3cr3t");
        std::fs::write(&path, "s3cr\nxt\n").unwrap();
        let error = read_token(&path).await.unwrap_err();
        assert!(error.contains("byte 4"), "{error}");
        assert!(!error.contains("s3cr"), "{error}");
        std::fs::write(&path, " \n").unwrap();
        assert!(read_token(&path).await.unwrap_err().contains("is empty"));
    }

    #[tokio::test]
    async fn work_that_stalls_is_abandoned_after_its_limit() {
        let (_release, stalled) = std::sync::mpsc::channel::<()>();
        let result = off_runtime(Duration::from_millis(50), move || {
            let _ = stalled.recv();
        })
        .await;
        assert_eq!(result, Err(Unfinished::TimedOut(Duration::from_millis(50))));
        assert_eq!(off_runtime(Duration::from_secs(5), || 7).await, Ok(7));
    }
}
