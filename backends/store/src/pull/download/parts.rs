//! The on-disk state of an unfinished blob download (under [`super`], which the registry and
//! Hugging Face pulls both go through): the `sha256-<hex>-partial` data file, upstream's part
//! files `sha256-<hex>-partial-<N>` (`{"N","Offset","Size","Completed"}`, `Completed` being the
//! contiguous prefix of the part that is on disk), and the split of the missing bytes into the
//! ranged requests ([`Chunk`]s) the download workers take in file order.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Upstream's part state file (`sha256-<hex>-partial-<N>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartState {
    #[serde(rename = "N")]
    pub n: u64,
    #[serde(rename = "Offset")]
    pub offset: u64,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Completed")]
    pub completed: u64,
}

impl PartState {
    /// First byte of the part that is not on disk yet.
    pub fn next(&self) -> u64 {
        self.offset + self.completed
    }

    /// One past the part's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// One ranged request: bytes `[start, end)` of part `part`. Chunks never span parts, so a
/// part's `Completed` advances exactly when its chunks finish in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Index into the part list.
    pub part: usize,
    /// First byte (absolute offset in the blob).
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Size of one ranged request for a blob of `total` bytes: `total / 128` within [1 MiB,
/// 16 MiB], never more than a part. Parts keep upstream's size (so part files stay
/// interchangeable with Ollama's), but their missing bytes are requested in these pieces,
/// handed out in file order: the contiguous on-disk prefix, and with it the streaming sha256,
/// then trails the download by at most `parallel × chunk` bytes (an eighth of a 1 GB blob with
/// 16 workers) instead of whole parts, while a blob still takes few requests.
pub(crate) fn chunk_size(total: u64) -> u64 {
    (total / 128).clamp(1 << 20, 16 << 20)
}

/// The missing bytes of `parts`, in file order, cut into requests of at most `chunk` bytes.
pub(crate) fn plan_chunks(parts: &[PartState], chunk: u64) -> Vec<Chunk> {
    let chunk = chunk.max(1);
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let mut start = p.next();
        while start < p.end() {
            let end = p.end().min(start + chunk);
            out.push(Chunk {
                part: i,
                start,
                end,
            });
            start = end;
        }
    }
    out
}

/// `<blob>-partial`: the data file.
pub(crate) fn partial_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push("-partial");
    PathBuf::from(s)
}

/// `<blob>-partial-<n>`: part `n`'s state.
pub(crate) fn part_path(final_path: &Path, n: u64) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(format!("-partial-{n}"));
    PathBuf::from(s)
}

/// Remove `-partial` and every `-partial-N` of a blob.
pub(crate) fn remove_partials(final_path: &Path) {
    let _ = fs::remove_file(partial_path(final_path));
    let (Some(dir), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return;
    };
    let prefix = format!("{}-partial-", name.to_string_lossy());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Saved parts when they describe exactly `[0, total)` and the data file is there with that
/// size.
pub(crate) fn load_parts(final_path: &Path, total: u64) -> Option<Vec<PartState>> {
    let data = fs::metadata(partial_path(final_path)).ok()?;
    if !data.is_file() || data.len() != total {
        return None;
    }
    let mut parts = Vec::new();
    for n in 0.. {
        let b = match fs::read(part_path(final_path, n)) {
            Ok(b) => b,
            Err(_) => break,
        };
        let p: PartState = serde_json::from_slice(&b).ok()?;
        parts.push(p);
    }
    let mut next = 0;
    for (i, p) in parts.iter().enumerate() {
        if p.n != i as u64 || p.offset != next || p.completed > p.size || p.size == 0 {
            return None;
        }
        next += p.size;
    }
    (next == total && !parts.is_empty()).then_some(parts)
}

/// Write a part's state: temp file then rename, so a crash never leaves a torn file. Not
/// fsynced: the state is only a resume hint (the whole blob is hashed before it becomes
/// visible, so a state that claims bytes the disk lost costs a re-download, never a bad blob),
/// and this runs once a second per part while the data streams in.
pub(crate) fn save_part(final_path: &Path, p: &PartState) {
    let path = part_path(final_path, p.n);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let r = serde_json::to_vec(p)
        .map_err(std::io::Error::other)
        .and_then(|b| fs::File::create(&tmp)?.write_all(&b))
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        tracing::warn!(error = %e, path = %path.display(), "could not save part state");
    }
}

/// Fresh parts for a blob of `total` bytes with parts of `size` bytes (the last one shorter).
pub(crate) fn split(total: u64, size: u64) -> Vec<PartState> {
    let size = size.max(1);
    let mut parts = Vec::new();
    let mut offset = 0;
    while offset < total {
        let p = PartState {
            n: parts.len() as u64,
            offset,
            size: size.min(total - offset),
            completed: 0,
        };
        parts.push(p);
        offset += p.size;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(n: u64, offset: u64, size: u64, completed: u64) -> PartState {
        PartState {
            n,
            offset,
            size,
            completed,
        }
    }

    #[test]
    fn part_state_is_upstreams_json() {
        assert_eq!(
            serde_json::to_string(&mk(2, 10, 5, 3)).unwrap(),
            r#"{"N":2,"Offset":10,"Size":5,"Completed":3}"#
        );
    }

    #[test]
    fn saved_parts_must_cover_the_blob_exactly() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-aa");
        fs::write(partial_path(&fp), vec![0u8; 10]).unwrap();
        save_part(&fp, &mk(0, 0, 6, 6));
        save_part(&fp, &mk(1, 6, 4, 1));
        assert_eq!(load_parts(&fp, 10).unwrap().len(), 2);
        assert!(load_parts(&fp, 11).is_none(), "size changed");
        save_part(&fp, &mk(1, 7, 3, 1));
        assert!(load_parts(&fp, 10).is_none(), "gap");
        remove_partials(&fp);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_data_file_of_the_wrong_length_is_not_resumed() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-bb");
        fs::write(partial_path(&fp), vec![0u8; 7]).unwrap();
        save_part(&fp, &mk(0, 0, 10, 5));
        assert!(load_parts(&fp, 10).is_none());
    }

    #[test]
    fn chunks_cover_only_missing_bytes_in_file_order_within_parts() {
        let parts = [mk(0, 0, 10, 10), mk(1, 10, 10, 3), mk(2, 20, 5, 0)];
        let c = plan_chunks(&parts, 4);
        let got: Vec<(usize, u64, u64)> = c.iter().map(|c| (c.part, c.start, c.end)).collect();
        assert_eq!(
            got,
            vec![(1, 13, 17), (1, 17, 20), (2, 20, 24), (2, 24, 25)]
        );
        assert_eq!(
            split(25, 10),
            vec![mk(0, 0, 10, 0), mk(1, 10, 10, 0), mk(2, 20, 5, 0)]
        );
        assert!(split(0, 10).is_empty());
        assert_eq!(chunk_size(10_000), 1 << 20);
        assert_eq!(chunk_size(1 << 30), 8 << 20);
        assert_eq!(chunk_size(100 << 30), 16 << 20);
    }
}
