//! `currentEpoch` and `acceptedEpoch`: one number each, in decimal text as
//! ZooKeeper writes them, replaced atomically (write temp, fsync, rename,
//! fsync the directory) so a reader sees the old or the new value, never a mix.

use std::io;
use std::path::Path;

use crate::error::WalError;
use crate::fs::{FileWriter, ReadAt, ReadFs, StdDir, WriteFs};
use crate::snapshot::TEMP_SUFFIX;

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

    /// The name of the temp file a write goes through.
    pub fn temp_name(self) -> String {
        format!("{}{TEMP_SUFFIX}", self.file_name())
    }
}

/// Durably replaces the epoch file in `dir` with `epoch` (≥ 0).
pub fn write_epoch(dir: &Path, which: EpochFile, epoch: i64) -> Result<(), WalError> {
    write_epoch_in(&StdDir::new(dir), which, epoch)
}

/// Durably replaces the epoch file in `fs` with `epoch` (≥ 0): temp file,
/// sync, rename over the old one, sync the directory. On an error the temp
/// file is removed and the old value stays.
pub fn write_epoch_in<F: WriteFs>(fs: &F, which: EpochFile, epoch: i64) -> Result<(), WalError> {
    assert!(epoch >= 0, "epochs are not negative");
    write_decimal_in(fs, which.file_name(), epoch)
}

/// Durably replaces the file `name` in `fs` with `value` (≥ 0) in decimal
/// text: temp file, sync, rename over the old one, sync the directory. On
/// an error the temp file is removed and the old value stays. The epoch
/// files and protocol-aware recovery's marker (`damage.rs`) are written so.
pub(crate) fn write_decimal_in<F: WriteFs>(fs: &F, name: &str, value: i64) -> Result<(), WalError> {
    assert!(value >= 0, "decimal files hold non-negative numbers");
    let tmp = format!("{name}{TEMP_SUFFIX}");
    let io = |op, e| WalError::io(op, fs.display(&tmp), e);
    let written = fs
        .create_file(&tmp)
        .map_err(|e| io("create", e))
        .and_then(|mut file| {
            file.append(format!("{value}\n").as_bytes())
                .map_err(|e| io("write", e))?;
            file.sync().map_err(|e| io("fsync", e))?;
            drop(file);
            fs.rename_file(&tmp, name).map_err(|e| io("rename", e))
        });
    if let Err(error) = written {
        match fs.remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %fs.display(&tmp), error = %e, "could not remove a temp file")
            }
        }
        return Err(error);
    }
    fs.sync_directory()
        .map_err(|e| WalError::io("fsync directory", fs.display(name), e))
}

/// Reads an epoch file: `Ok(None)` if it does not exist, an error if it holds
/// anything but one non-negative decimal number.
pub fn read_epoch(dir: &Path, which: EpochFile) -> Result<Option<i64>, WalError> {
    read_epoch_in(&StdDir::new(dir), which)
}

/// [`read_epoch`] in any directory.
pub fn read_epoch_in<R: ReadFs>(fs: &R, which: EpochFile) -> Result<Option<i64>, WalError> {
    read_decimal_in(fs, which.file_name()).map_err(|e| match e {
        DecimalFileError::Io(error) => error,
        DecimalFileError::Damaged { file, reason } => WalError::EpochCorrupt {
            file,
            reason: reason.into(),
        },
    })
}

/// A file of this kind is a handful of bytes; anything longer is not one.
const DECIMAL_FILE_BYTES_MAX: usize = 32;

/// Why a file written by [`write_decimal_in`] could not be read back.
#[derive(Debug)]
pub(crate) enum DecimalFileError {
    Io(WalError),
    /// It holds something else than one non-negative decimal number; the
    /// caller names the damage (which file it is decides what it means).
    Damaged {
        file: String,
        reason: &'static str,
    },
}

/// Reads a file written by [`write_decimal_in`]: `Ok(None)` if it does not
/// exist.
pub(crate) fn read_decimal_in<R: ReadFs>(
    fs: &R,
    name: &str,
) -> Result<Option<i64>, DecimalFileError> {
    let file = fs.display(name);
    let reader = match fs.open_read(name) {
        Ok(reader) => reader,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DecimalFileError::Io(WalError::io("open", &file, e))),
    };
    let damaged = |reason| DecimalFileError::Damaged {
        file: file.clone(),
        reason,
    };
    if reader.len() > DECIMAL_FILE_BYTES_MAX as u64 {
        return Err(damaged("too long"));
    }
    let mut bytes = vec![0u8; reader.len() as usize];
    let n = reader
        .read_at(0, &mut bytes)
        .map_err(|e| DecimalFileError::Io(WalError::io("read", &file, e)))?;
    bytes.truncate(n);
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
