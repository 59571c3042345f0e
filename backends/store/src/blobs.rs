//! Content-addressed blobs (`blobs/sha256-<hex>`) and the atomic-write helpers the whole store
//! uses.
//!
//! `HEAD/POST /api/blobs/:digest`, create (new template/system/params/config layers) and pull
//! all land here. Nothing becomes visible under its final name until it is complete, fsynced and
//! (for blobs) verified against its sha256: data goes to a hidden temp file in the same
//! directory, then `rename` makes it appear atomically.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use ollmlx_infer::RawBody;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Result, StoreError};

/// Prefix of temp files; never a valid blob or manifest name, so listings and GC skip them.
const TMP_PREFIX: &str = ".tmp-";

/// Check a digest against `^sha256[:-][0-9a-fA-F]{64}$` and return its file name
/// (`sha256-<hex>`, hex kept as given).
pub fn blob_file_name(digest: &str) -> Result<String> {
    let b = digest.as_bytes();
    let ok = b.len() == 71
        && digest.starts_with("sha256")
        && (b[6] == b':' || b[6] == b'-')
        && b[7..].iter().all(u8::is_ascii_hexdigit);
    if !ok {
        return Err(StoreError::InvalidDigest);
    }
    Ok(format!("sha256-{}", &digest[7..]))
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// A unique hidden temp path in `dir`.
pub(crate) fn temp_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!("{TMP_PREFIX}{}-{nanos}-{n}", std::process::id()))
}

/// Whether a directory entry is one of our temp files.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TMP_PREFIX)
}

/// Removes a temp file on drop unless [`TempGuard::keep`] was called.
pub(crate) struct TempGuard(Option<PathBuf>);

impl TempGuard {
    pub(crate) fn new(p: PathBuf) -> Self {
        TempGuard(Some(p))
    }
    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    pub(crate) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// fsync a directory so a rename inside it is durable (best effort; not all filesystems allow it).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Write `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync dir.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Internal(format!("no parent for {}", path.display())))?;
    fs::create_dir_all(dir).map_err(|e| StoreError::io(format!("mkdir {}", dir.display()), e))?;
    let guard = TempGuard::new(temp_path(dir));
    let ctx = || format!("write {}", path.display());
    let mut f = File::create(guard.path()).map_err(|e| StoreError::io(ctx(), e))?;
    f.write_all(data).map_err(|e| StoreError::io(ctx(), e))?;
    f.sync_all().map_err(|e| StoreError::io(ctx(), e))?;
    drop(f);
    fs::rename(guard.path(), path).map_err(|e| StoreError::io(ctx(), e))?;
    guard.keep();
    sync_dir(dir);
    Ok(())
}

/// The `blobs/` directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Blobs under `dir` (created lazily on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Blobs { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a blob (validates the digest format; the file may not exist).
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join(blob_file_name(digest)?))
    }

    /// Whether the blob exists.
    pub fn exists(&self, digest: &str) -> Result<bool> {
        Ok(self.path(digest)?.is_file())
    }

    /// Size of an existing blob.
    pub fn size(&self, digest: &str) -> Result<u64> {
        let p = self.path(digest)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.to_string()))
            }
            Err(e) => Err(StoreError::io(format!("stat {}", p.display()), e)),
        }
    }

    /// Read a whole (small) blob.
    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound(digest.to_string())
            } else {
                StoreError::io(format!("read {}", p.display()), e)
            }
        })
    }

    /// Store `data` under its own digest. Returns `(digest, created)`; an existing blob is left
    /// as is (its mtime refreshed, like upstream's `touchLayer`).
    pub fn put_bytes(&self, data: &[u8]) -> Result<(String, bool)> {
        let digest = sha256_digest(data);
        let path = self.path(&digest)?;
        if path.is_file() {
            touch(&path);
            return Ok((digest, false));
        }
        atomic_write(&path, data)?;
        Ok((digest, true))
    }

    /// Store a blob read synchronously from `r`, verifying it hashes to `expected` when given.
    /// Returns `(digest, size, created)`.
    pub fn put_reader(
        &self,
        r: &mut dyn Read,
        expected: Option<&str>,
    ) -> Result<(String, u64, bool)> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| StoreError::io(format!("mkdir {}", self.dir.display()), e))?;
        let guard = TempGuard::new(temp_path(&self.dir));
        let ctx = || format!("write blob in {}", self.dir.display());
        let mut f = File::create(guard.path()).map_err(|e| StoreError::io(ctx(), e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(|e| StoreError::io(ctx(), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n])
                .map_err(|e| StoreError::io(ctx(), e))?;
            size += n as u64;
        }
        f.sync_all().map_err(|e| StoreError::io(ctx(), e))?;
        drop(f);
        let got = format!("sha256:{}", hex(&h.finalize()));
        self.commit_temp(guard, &got, size, expected)
    }

    /// Store a streamed request body (`POST /api/blobs/:digest`). The body is hashed while it is
    /// written to a temp file; it only becomes `blobs/sha256-<hex>` when the hash matches.
    /// Returns `true` when newly created, `false` when it already existed.
    pub async fn put_stream(&self, digest: &str, mut body: RawBody) -> Result<bool> {
        let final_path = self.path(digest)?;
        if final_path.is_file() {
            return Ok(false);
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| StoreError::io(format!("mkdir {}", self.dir.display()), e))?;
        let guard = TempGuard::new(temp_path(&self.dir));
        let ctx = || format!("write blob {digest}");
        let mut f = tokio::fs::File::create(guard.path())
            .await
            .map_err(|e| StoreError::io(ctx(), e))?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::Internal(e.to_string()))?;
            h.update(&chunk);
            f.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io(ctx(), e))?;
            size += chunk.len() as u64;
        }
        f.sync_all().await.map_err(|e| StoreError::io(ctx(), e))?;
        drop(f);
        let got = format!("sha256:{}", hex(&h.finalize()));
        let this = self.clone();
        let expected = digest.to_string();
        tokio::task::spawn_blocking(move || {
            this.commit_temp(guard, &got, size, Some(&expected))
                .map(|(_, _, created)| created)
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// Verify and rename a finished temp file. Upstream compares the announced digest string
    /// with `sha256:<lowercase hex>` exactly, so a `sha256-` or upper-case form is reported as a
    /// mismatch; we keep the blob when the content itself matches.
    fn commit_temp(
        &self,
        guard: TempGuard,
        got: &str,
        size: u64,
        expected: Option<&str>,
    ) -> Result<(String, u64, bool)> {
        let content_matches = match expected {
            None => true,
            Some(e) => e.len() == got.len() && e[7..].eq_ignore_ascii_case(&got[7..]),
        };
        if !content_matches {
            // dropping the guard deletes the temp file: nothing visible was created
            return Err(StoreError::DigestMismatch {
                expected: expected.unwrap_or_default().to_string(),
                got: got.to_string(),
            });
        }
        let path = self.path(got)?;
        let created = if path.is_file() {
            touch(&path);
            false
        } else {
            fs::rename(guard.path(), &path)
                .map_err(|e| StoreError::io(format!("rename to {}", path.display()), e))?;
            guard.keep();
            sync_dir(&self.dir);
            true
        };
        if let Some(e) = expected {
            if e != got {
                return Err(StoreError::DigestMismatch {
                    expected: e.to_string(),
                    got: got.to_string(),
                });
            }
        }
        Ok((got.to_string(), size, created))
    }

    /// Remove a blob (missing is fine).
    pub fn remove(&self, digest: &str) -> Result<()> {
        let p = self.path(digest)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("remove {}", p.display()), e)),
        }
    }

    /// Remove leftover temp files (e.g. after a crash).
    pub fn clean_temp_files(&self) {
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_str().is_some_and(is_temp_name) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Set a file's mtime to now (best effort).
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_format_is_validated() {
        assert_eq!(
            blob_file_name(EMPTY).unwrap(),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(blob_file_name(&EMPTY.replace(':', "-")).is_ok());
        assert!(blob_file_name(&EMPTY.to_uppercase().replace("SHA256", "sha256")).is_ok());
        for bad in [
            "",
            "sha256:abc",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd0000000000000000000000000000000000000000000",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(blob_file_name(bad), Err(StoreError::InvalidDigest)),
                "{bad}"
            );
        }
    }

    #[test]
    fn put_bytes_is_content_addressed_and_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let b = Blobs::new(d.path().join("blobs"));
        let (dg, created) = b.put_bytes(b"").unwrap();
        assert_eq!(dg, EMPTY);
        assert!(created);
        let (_, created) = b.put_bytes(b"").unwrap();
        assert!(!created);
        assert!(b.exists(EMPTY).unwrap());
    }

    fn body(parts: &[&'static [u8]]) -> RawBody {
        let v: Vec<_> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(v).boxed()
    }

    #[tokio::test]
    async fn put_stream_verifies_before_publishing() {
        let d = tempfile::tempdir().unwrap();
        let b = Blobs::new(d.path().join("blobs"));
        let good = sha256_digest(b"hello world");
        assert!(b
            .put_stream(&good, body(&[b"hello ", b"world"]))
            .await
            .unwrap());
        assert!(!b.put_stream(&good, body(&[b"hello world"])).await.unwrap());

        let wrong = sha256_digest(b"something else");
        let err = b.put_stream(&wrong, body(&[b"hello"])).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "digest mismatch, expected \"{wrong}\", got \"{}\"",
                sha256_digest(b"hello")
            )
        );
        assert!(!b.exists(&wrong).unwrap());
        assert!(
            !b.exists(&sha256_digest(b"hello")).unwrap(),
            "mismatched data must not be kept"
        );
        let names: Vec<_> = fs::read_dir(b.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "only the good blob, no temp files: {names:?}"
        );
    }

    #[tokio::test]
    async fn put_stream_dash_form_is_reported_as_mismatch_like_upstream() {
        let d = tempfile::tempdir().unwrap();
        let b = Blobs::new(d.path().join("blobs"));
        let good = sha256_digest(b"x");
        let dash = good.replace(':', "-");
        let err = b.put_stream(&dash, body(&[b"x"])).await.unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(
            b.exists(&good).unwrap(),
            "content matched, so the blob is kept"
        );
    }

    #[tokio::test]
    async fn failing_body_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let b = Blobs::new(d.path().join("blobs"));
        let s: RawBody = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(ollmlx_infer::BackendError::Cancelled),
        ])
        .boxed();
        assert!(b.put_stream(&sha256_digest(b"abc"), s).await.is_err());
        assert_eq!(fs::read_dir(b.dir()).unwrap().count(), 0);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/c");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path().join("a/b")).unwrap().count(), 1);
    }
}
