//! `currentEpoch` and `acceptedEpoch`: one number each, in decimal text as
//! ZooKeeper writes them, replaced atomically (write temp, fsync, rename,
//! fsync the directory) so a reader sees the old or the new value, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::WalError;
use crate::fs::sync_dir_path;

/// Which of the two epoch files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFile {
    /// The epoch this server last acknowledged as the leader's (NEWLEADER).
    Current,
    /// The epoch this server last promised to follow (ACKEPOCH).
    Accepted,
}

impl EpochFile {
    pub fn file_name(self) -> &'static str {
        match self {
            EpochFile::Current => "currentEpoch",
            EpochFile::Accepted => "acceptedEpoch",
        }
    }
}

/// An epoch file is a handful of bytes; anything longer is not one.
const EPOCH_FILE_BYTES_MAX: usize = 32;

/// Durably replaces the epoch file in `dir` with `epoch` (≥ 0).
pub fn write_epoch(dir: &Path, which: EpochFile, epoch: i64) -> Result<(), WalError> {
    assert!(epoch >= 0, "epochs are not negative");
    let path = dir.join(which.file_name());
    let tmp = dir.join(format!("{}.tmp", which.file_name()));
    let io = |op, e| WalError::io(op, tmp.display(), e);
    let mut file = File::create(&tmp).map_err(|e| io("create", e))?;
    file.write_all(format!("{epoch}\n").as_bytes())
        .map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
    sync_dir_path(dir).map_err(|e| WalError::io("fsync directory", dir.display(), e))
}

/// Reads an epoch file: `Ok(None)` if it does not exist, an error if it holds
/// anything but one non-negative decimal number.
pub fn read_epoch(dir: &Path, which: EpochFile) -> Result<Option<i64>, WalError> {
    let path = dir.join(which.file_name());
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io("read", path.display(), e)),
    };
    let damaged = |reason: &str| WalError::EpochCorrupt {
        file: path.display().to_string(),
        reason: reason.into(),
    };
    if bytes.len() > EPOCH_FILE_BYTES_MAX {
        return Err(damaged("too long"));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| damaged("not text"))?
        .trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(damaged("not a decimal number"));
    }
    text.parse::<i64>()
        .map(Some)
        .map_err(|_| damaged("number out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Epochs round-trip, a missing file reads as None, garbage is an error.
    #[test]
    fn epoch_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_epoch(dir.path(), EpochFile::Current).unwrap(), None);
        write_epoch(dir.path(), EpochFile::Current, 7).unwrap();
        write_epoch(dir.path(), EpochFile::Accepted, 8).unwrap();
        write_epoch(dir.path(), EpochFile::Current, 9).unwrap();
        assert_eq!(read_epoch(dir.path(), EpochFile::Current).unwrap(), Some(9));
        assert_eq!(
            read_epoch(dir.path(), EpochFile::Accepted).unwrap(),
            Some(8)
        );
        assert!(!dir.path().join("currentEpoch.tmp").exists());
        for garbage in [
            &b""[..],
            b"-1\n",
            b"12x",
            b"\xff\xfe",
            b"99999999999999999999",
            &[b'1'; 40][..],
        ] {
            std::fs::write(dir.path().join("acceptedEpoch"), garbage).unwrap();
            let result = read_epoch(dir.path(), EpochFile::Accepted);
            assert!(
                matches!(result, Err(WalError::EpochCorrupt { .. })),
                "{garbage:?}: {result:?}"
            );
        }
    }
}
