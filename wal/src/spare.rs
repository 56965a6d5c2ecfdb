//! Spare segments: preallocated (zero-filled) or recycled files waiting to
//! become the next log segment, so a segment switch never waits for space to
//! be allocated. A full disk shows up here first, when a spare cannot be
//! prepared, before any record fails to be written (issue 10, "Disks").

use crate::error::WalError;
use crate::format::{
    parse_hex_suffix, SegmentHeader, BLOCK_BYTES, FORMAT_VERSION, SEGMENT_HEADER_BYTES,
};
use crate::fs::LogFs;

/// Zeros are written in pieces of this size when preallocating or scrubbing.
pub(crate) const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// How many spare names `prepare_spare` tries before giving up.
const SPARE_NAME_ATTEMPTS_MAX: u64 = 16;

/// A spare segment ready to use: `spare.<16 hex digits>` (preallocated by the
/// writer) or `spare.recycled.<16 hex digits>` (an old segment recycled by
/// purge); `.tmp` names are still being zero-filled.
pub fn is_ready_spare(name: &str) -> bool {
    name.starts_with("spare.") && !name.ends_with(".tmp")
}

/// A spare name not among `names`, skipping `skip` free ones.
pub(crate) fn spare_name(names: &[String], skip: u64) -> String {
    let highest = names
        .iter()
        .filter_map(|n| parse_hex_suffix(n.strip_suffix(".tmp").unwrap_or(n), "spare."))
        .max()
        .unwrap_or(0);
    format!("spare.{:016x}", highest as u64 + 1 + skip)
}

/// Creates a spare segment of `segment_bytes`: zero-filled by writing zeros
/// (so its extents are allocated and initialised, and later fdatasyncs write no
/// metadata), synced, renamed from `.tmp` to its final name, directory synced.
/// Returns its name. On any error the `.tmp` file is removed again, so a
/// full disk ([`WalError::NoSpace`]) leaves no partial spare taking space.
pub async fn prepare_spare<F: LogFs>(fs: &F, segment_bytes: u64) -> Result<String, WalError> {
    assert!(segment_bytes.is_multiple_of(BLOCK_BYTES as u64));
    let names = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?;
    let mut created = None;
    for attempt in 0..SPARE_NAME_ATTEMPTS_MAX {
        let name = spare_name(&names, attempt);
        let tmp = format!("{name}.tmp");
        match fs.create(&tmp).await {
            Ok(file) => {
                created = Some((name, tmp, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(WalError::io("create", fs.display(&tmp), e)),
        }
    }
    let Some((name, tmp, file)) = created else {
        return Err(WalError::io(
            "create",
            fs.display("spare"),
            std::io::ErrorKind::AlreadyExists.into(),
        ));
    };
    match fill_spare(fs, &tmp, file, segment_bytes).await {
        Ok(()) => {}
        Err(error) => {
            if let Err(e) = fs.remove(&tmp).await {
                tracing::warn!(file = %fs.display(&tmp), error = %e, "could not remove a failed spare segment");
            }
            return Err(error);
        }
    }
    fs.rename(&tmp, &name)
        .await
        .map_err(|e| WalError::io("rename", fs.display(&tmp), e))?;
    fs.sync_dir()
        .await
        .map_err(|e| WalError::io("fsync directory", fs.display(&name), e))?;
    Ok(name)
}

/// Zero-fills and syncs a new spare file.
async fn fill_spare<F: LogFs>(
    fs: &F,
    tmp: &str,
    file: F::File,
    segment_bytes: u64,
) -> Result<(), WalError> {
    let zeros = vec![0u8; ZERO_CHUNK_BYTES.min(segment_bytes as usize)];
    let mut at = 0u64;
    while at < segment_bytes {
        let len = (segment_bytes - at).min(zeros.len() as u64) as usize;
        fs.write_at(&file, at, &zeros[..len])
            .await
            .map_err(|e| WalError::io("write", fs.display(tmp), e))?;
        at += len as u64;
    }
    fs.sync_data(&file)
        .await
        .map_err(|e| WalError::io("fdatasync", fs.display(tmp), e))
}

/// A spare opened for use as the next segment.
#[derive(Debug)]
pub(crate) struct Spare<File> {
    pub name: String,
    pub file: File,
    pub capacity: u64,
    /// The salt of the file's previous life, if it was a segment before.
    pub salt_previous: Option<u64>,
}

/// What to do with a spare found beside the log.
enum SpareCheck<File> {
    Usable(Spare<File>),
    /// Wrong size, or it held format-1 records (whose unstamped bytes must
    /// never sit in a format-2 segment): removed.
    Unusable,
}

async fn check_spare<F: LogFs>(
    fs: &F,
    name: &str,
    segment_bytes: u64,
) -> Result<SpareCheck<F::File>, WalError> {
    let io = |op, e| WalError::io(op, fs.display(name), e);
    let file = fs.open(name).await.map_err(|e| io("open", e))?;
    let capacity = fs.len(&file).await.map_err(|e| io("stat", e))?;
    let mut block = vec![0u8; SEGMENT_HEADER_BYTES];
    let n = fs
        .read_at(&file, 0, &mut block)
        .await
        .map_err(|e| io("read", e))?;
    let previous = SegmentHeader::decode(&block[..n]).ok();
    let old_format = previous.is_some_and(|h| h.version != FORMAT_VERSION);
    if capacity != segment_bytes || old_format {
        drop(file);
        fs.remove(name).await.map_err(|e| io("remove", e))?;
        return Ok(SpareCheck::Unusable);
    }
    Ok(SpareCheck::Usable(Spare {
        name: name.to_string(),
        file,
        capacity,
        salt_previous: previous.map(|h| h.salt),
    }))
}

/// The oldest usable spare of `segment_bytes`, removing unusable ones on the way.
pub(crate) async fn take_spare<F: LogFs>(
    fs: &F,
    segment_bytes: u64,
) -> Result<Option<Spare<F::File>>, WalError> {
    for name in ready_spares(fs)? {
        if let SpareCheck::Usable(spare) = check_spare(fs, &name, segment_bytes).await? {
            return Ok(Some(spare));
        }
    }
    Ok(None)
}

/// Makes sure at least `count` usable spares are ready, preparing the missing
/// ones. A full disk returns [`WalError::NoSpace`] with the spares prepared so
/// far kept and no temp file left.
pub(crate) async fn ensure_spares<F: LogFs>(
    fs: &F,
    segment_bytes: u64,
    count: usize,
) -> Result<(), WalError> {
    let mut usable = 0;
    for name in ready_spares(fs)? {
        if let SpareCheck::Usable(_) = check_spare(fs, &name, segment_bytes).await? {
            usable += 1;
        }
    }
    for _ in usable..count {
        prepare_spare(fs, segment_bytes).await?;
    }
    Ok(())
}

/// The names of the ready spares, oldest first.
pub(crate) fn ready_spares<F: LogFs>(fs: &F) -> Result<Vec<String>, WalError> {
    let mut names: Vec<String> = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?
        .into_iter()
        .filter(|n| is_ready_spare(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Removes spares whose zero-filling never finished (`.tmp`).
pub(crate) async fn remove_unfinished_spares<F: LogFs>(fs: &F) -> Result<(), WalError> {
    let names = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?;
    for name in names {
        if name.starts_with("spare.") && name.ends_with(".tmp") {
            fs.remove(&name)
                .await
                .map_err(|e| WalError::io("remove", fs.display(&name), e))?;
        }
    }
    Ok(())
}
