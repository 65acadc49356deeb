//! Checkpoints: windows, streaks, identities and the reconciliation state, written
//! atomically (temp file in the same directory, fsync, rename, fsync of the directory) so
//! that a crash at any moment leaves either the old file or the new one — never half of
//! one. On start the file is verified (format, version, checksum) and restored; a file
//! that fails is moved aside (`….corrupt-<unix ms>`), never read silently and never
//! overwritten. A lock file keeps a second sidecar off the same checkpoint.
//!
//! Layout (`contracts/checkpoint@1.yaml`):
//! `{"format": "peerscope-checkpoint", "version": 1, "checksum": "<fnv1a-64 of payload>", "payload": {…}}`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::act::{ReconcileCheckpoint, Reconciler};
use crate::ops::operations::{fnv1a_hex, Operations};
use crate::outside::file::{directory_of, read_bounded, ReadError};
use crate::store::{Store, StoreCheckpoint};
use crate::timeline::{unix_seconds, Anchor};

pub(crate) const FORMAT: &str = "peerscope-checkpoint";
pub(crate) const VERSION: u32 = 1;
/// The largest checkpoint read, in bytes (10,000 full windows fit many times over).
pub(crate) const FILE_LIMIT: u64 = 1 << 30;
/// Unusable checkpoints moved aside are kept for inspection, the newest this many.
pub(crate) const MOVED_ASIDE_KEPT: usize = 5;

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Unix time of writing.
    pub written_at: f64,
    pub store: StoreCheckpoint,
    pub reconcile: ReconcileCheckpoint,
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but could not be read (permissions, a directory in its place…).
    #[error("{path}: {source}")]
    Unreadable { path: String, source: ReadError },
    /// Not JSON, truncated, or not a peerscope checkpoint.
    #[error("{path}: not a valid checkpoint: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: checkpoint version {found} is not supported (this build reads {VERSION})")]
    WrongVersion { path: String, found: u32 },
    #[error(
        "{path}: checksum mismatch (stored {stored}, computed {computed}): the file is corrupt"
    )]
    Checksum {
        path: String,
        stored: String,
        computed: String,
    },
    #[error("{path}: another peerscope holds this checkpoint's lock ({lock}); only one sidecar may use a checkpoint")]
    Locked { path: String, lock: String },
    #[error("{path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
}

/// Serialises a payload into the checkpoint layout.
pub fn encode(payload: &Payload) -> String {
    let payload = serde_json::to_string(payload).expect("a checkpoint payload always serialises");
    let checksum = fnv1a_hex(payload.as_bytes());
    format!("{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"checksum\":\"{checksum}\",\"payload\":{payload}}}\n")
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    format: String,
    version: u32,
    checksum: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Verifies and decodes a checkpoint's bytes; `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<Payload, CheckpointError> {
    let invalid = |detail: String| CheckpointError::Invalid {
        path: path.to_owned(),
        detail,
    };
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(invalid(format!(
            "format is {:?}, not {FORMAT:?}",
            envelope.format
        )));
    }
    if envelope.version != VERSION {
        return Err(CheckpointError::WrongVersion {
            path: path.to_owned(),
            found: envelope.version,
        });
    }
    let computed = fnv1a_hex(envelope.payload.get().as_bytes());
    // The fuzz build (`fuzz/run`) skips the checksum so mutations reach the payload's
    // decoder and the restore; every other build checks it.
    if computed != envelope.checksum && !cfg!(fuzzing) {
        return Err(CheckpointError::Checksum {
            path: path.to_owned(),
            stored: envelope.checksum,
            computed,
        });
    }
    serde_json::from_str(envelope.payload.get()).map_err(|e| invalid(format!("payload: {e}")))
}

/// Writes `text` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), CheckpointError> {
    let io = |action: &'static str| {
        move |source| CheckpointError::Io {
            path: path.display().to_string(),
            action,
            source,
        }
    };
    let directory = directory_of(path);
    let name = path
        .file_name()
        .map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let (temporary, mut file) =
        create_temporary(directory, &name).map_err(io("create temporary file"))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write temporary file"));
    if let Err(error) =
        written.and_then(|()| std::fs::rename(&temporary, path).map_err(io("rename into place")))
    {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    // The rename is durable only once the directory entry is on disk.
    File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory"))
}

/// A new temporary file beside the checkpoint, created exclusively under a name nobody can
/// predict: a symlink or file planted in the directory is never written through (with
/// `O_EXCL` the creation fails on any existing name, link or not), and the next name is
/// tried. Readable by the owner only.
fn create_temporary(directory: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut attempts = 0;
    loop {
        let temporary = directory.join(format!(
            ".{name}.tmp-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// What starting from a checkpoint found.
#[derive(Debug)]
pub enum Loaded {
    /// No checkpoint yet: a first start.
    Missing,
    Restored(Payload),
    /// The file could not be used and was moved aside; start fresh.
    MovedAside {
        error: CheckpointError,
        to: PathBuf,
    },
}

/// Reads the checkpoint at `path`. A bad file is moved aside; if even that fails the
/// error is returned, so the caller refuses to start rather than overwrite it later.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let shown = path.display().to_string();
    let error = match read_bounded(path, FILE_LIMIT) {
        Ok(bytes) => match decode(&bytes, &shown) {
            Ok(payload) => return Ok(Loaded::Restored(payload)),
            Err(error) => error,
        },
        Err(ReadError::Io(source)) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded::Missing)
        }
        Err(source) => CheckpointError::Unreadable {
            path: shown.clone(),
            source,
        },
    };
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let to = PathBuf::from(format!("{shown}.corrupt-{stamp}"));
    match std::fs::rename(path, &to) {
        Ok(()) => {
            remove_old_moved_aside(path, MOVED_ASIDE_KEPT);
            Ok(Loaded::MovedAside { error, to })
        }
        Err(source) => {
            tracing::error!(%error, "checkpoint is unusable");
            Err(CheckpointError::Io {
                path: shown,
                action: "move the unusable checkpoint aside",
                source,
            })
        }
    }
}

/// Keeps only the newest `kept` checkpoints moved aside (`<name>.corrupt-<unix ms>`), so
/// a checkpoint that keeps going bad cannot fill the directory.
fn remove_old_moved_aside(path: &Path, kept: usize) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!("{name}.corrupt-");
    let Ok(entries) = std::fs::read_dir(directory_of(path)) else {
        return;
    };
    let mut moved: Vec<(u128, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let stamp = file_name.strip_prefix(&prefix)?.parse().ok()?;
            Some((stamp, entry.path()))
        })
        .collect();
    moved.sort_unstable_by(|a, b| b.cmp(a));
    for (_, old) in moved.into_iter().skip(kept) {
        if let Err(error) = std::fs::remove_file(&old) {
            tracing::warn!(file = %old.display(), %error, "cannot remove an old unusable checkpoint");
        }
    }
}

/// Removes temporary files left by a writer that was killed mid-write. Safe: the caller
/// holds the lock, so no other process is writing.
fn remove_stale_temporaries(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(directory_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            if let Err(error) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), %error, "cannot remove a stale temporary checkpoint");
            }
        }
    }
}

/// Held for the process's life: the lock on a checkpoint path.
pub(crate) struct CheckpointLock {
    _file: File,
}

/// Takes the lock `<path>.lock` (an OS file lock, released if the process dies).
pub(crate) fn lock(path: &Path) -> Result<CheckpointLock, CheckpointError> {
    let shown = path.display().to_string();
    let lock_path = PathBuf::from(format!("{shown}.lock"));
    std::fs::create_dir_all(directory_of(path)).map_err(|source| CheckpointError::Io {
        path: shown.clone(),
        action: "create the directory",
        source,
    })?;
    // Never through a link planted at the lock path (O_NOFOLLOW: the open fails with ELOOP).
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
    }
    .map_err(|source| CheckpointError::Io {
        path: shown.clone(),
        action: "open the lock file (a symbolic link there is refused)",
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(CheckpointLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(CheckpointError::Locked {
            path: shown,
            lock: lock_path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(CheckpointError::Io {
            path: shown,
            action: "lock",
            source,
        }),
    }
}

/// Writes checkpoints of the store and the reconciler.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    pub(crate) path: PathBuf,
    pub(crate) store: Store,
    pub(crate) reconciler: Reconciler,
    pub(crate) operations: Operations,
}

impl Checkpointer {
    /// Restores from the file, if there is one, and records what happened.
    pub(crate) fn restore(&self) -> Result<(), CheckpointError> {
        remove_stale_temporaries(&self.path);
        let anchor = Anchor::now();
        let outcome = match load(&self.path)? {
            Loaded::Missing => {
                tracing::info!(path = %self.path.display(), "no checkpoint yet; starting fresh");
                "no checkpoint; started fresh".to_owned()
            }
            Loaded::Restored(payload) => {
                let peers = self.store.restore(&payload.store, &anchor);
                self.reconciler.restore(&payload.reconcile, &anchor);
                tracing::info!(path = %self.path.display(), peers, "checkpoint restored");
                format!(
                    "restored {peers} peers from a checkpoint written at {:.3}",
                    payload.written_at
                )
            }
            Loaded::MovedAside { error, to } => {
                tracing::error!(%error, moved_to = %to.display(), "checkpoint unusable; moved aside, starting fresh");
                self.operations.lock().checkpoint.restore_failures_total += 1;
                format!("{error}; moved aside to {}", to.display())
            }
        };
        let mut operations = self.operations.lock();
        operations.checkpoint.path = Some(self.path.display().to_string());
        operations.checkpoint.restore = Some(outcome);
        Ok(())
    }

    /// Writes one checkpoint, off the async threads, and records the outcome.
    pub(crate) async fn save(&self) {
        let anchor = Anchor::now();
        let payload = Payload {
            written_at: unix_seconds(anchor.wall),
            store: self.store.checkpoint(&anchor),
            reconcile: self.reconciler.checkpoint(&anchor),
        };
        let path = self.path.clone();
        let written =
            tokio::task::spawn_blocking(move || write_atomic(&path, &encode(&payload))).await;
        let mut operations = self.operations.lock();
        let status = &mut operations.checkpoint;
        match written {
            Ok(Ok(())) => {
                status.writes_total += 1;
                status.last_success_at = Some(unix_seconds(SystemTime::now()));
                status.last_error = None;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "checkpoint write failed");
                status.write_failures_total += 1;
                status.last_error = Some(error.to_string());
            }
            Err(error) => {
                tracing::error!(%error, "checkpoint writer panicked");
                status.write_failures_total += 1;
                status.last_error = Some(error.to_string());
            }
        }
    }

    /// Writes a checkpoint every `interval` until `shutdown`. The final checkpoint is the
    /// caller's, once the poll loop and the reconciler have stopped.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; nothing new to save yet
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.save().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            written_at: 1762534863.5,
            store: StoreCheckpoint::default(),
            reconcile: ReconcileCheckpoint::default(),
        }
    }

    #[test]
    fn round_trips_and_detects_every_kind_of_damage() {
        let text = encode(&payload());
        assert_eq!(decode(text.as_bytes(), "f").unwrap(), payload());
        assert!(matches!(
            decode(&text.as_bytes()[..text.len() / 2], "f"),
            Err(CheckpointError::Invalid { .. })
        ));
        assert!(matches!(
            decode(b"", "f"),
            Err(CheckpointError::Invalid { .. })
        ));
        let other_version = text.replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            decode(other_version.as_bytes(), "f"),
            Err(CheckpointError::WrongVersion { found: 2, .. })
        ));
        let flipped = text.replace("1762534863.5", "1762534863.6");
        assert!(matches!(
            decode(flipped.as_bytes(), "f"),
            Err(CheckpointError::Checksum { .. })
        ));
    }

    #[test]
    fn writes_atomically_and_a_second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, "one").unwrap();
        write_atomic(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let _held = lock(&path).unwrap();
        let error = lock(&path).err().unwrap();
        assert!(
            error.to_string().contains("another peerscope holds"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_file_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(matches!(load(&path).unwrap(), Loaded::Missing));
        std::fs::write(&path, "{\"format\":").unwrap();
        let Loaded::MovedAside { to, .. } = load(&path).unwrap() else {
            panic!()
        };
        assert_eq!(std::fs::read_to_string(to).unwrap(), "{\"format\":");
        assert!(!path.exists());
    }

    /// Regression (issue 12): `.corrupt-*` files piled up without limit (165 after 198
    /// restarts over damaged checkpoints).
    #[test]
    fn only_the_newest_unusable_checkpoints_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut moved = Vec::new();
        for round in 0..MOVED_ASIDE_KEPT + 3 {
            std::fs::write(&path, format!("damaged {round}")).unwrap();
            let Loaded::MovedAside { to, .. } = load(&path).unwrap() else {
                panic!("round {round} was not moved aside")
            };
            moved.push(to);
            std::thread::sleep(Duration::from_millis(3));
        }
        let left: Vec<_> = moved.iter().filter(|p| p.exists()).collect();
        assert_eq!(left.len(), MOVED_ASIDE_KEPT);
        assert_eq!(
            left,
            moved[3..].iter().collect::<Vec<_>>(),
            "the oldest go first"
        );
    }

    /// Regression (issue 12): a checkpoint path linked to /dev/zero was read without end.
    #[test]
    fn a_device_in_place_of_the_checkpoint_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let Loaded::MovedAside { error, .. } = load(&path).unwrap() else {
            panic!("not moved aside")
        };
        assert!(error.to_string().contains("character device"), "{error}");
    }
}
