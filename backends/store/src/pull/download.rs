//! Resumable, verified blob downloads: the engine under both the registry and the Hugging Face
//! pulls.
//!
//! A blob of `total` bytes is split into parts (`total/16` clamped to [100 MB, 1000 MB] by
//! default) fetched with parallel `Range` GETs into `blobs/sha256-<hex>-partial`; each part's
//! state is kept as upstream's JSON (`{"N","Offset","Size","Completed"}`) in
//! `sha256-<hex>-partial-<N>`, so an interrupted pull (error, cancel, crash) resumes with only the
//! missing bytes, and Ollama itself can resume ours. Failed parts retry with exponential backoff;
//! a body that stalls is abandoned and retried. The finished file is hashed and only renamed to
//! `sha256-<hex>` when the digest matches; a mismatch removes the data. Two pulls needing the same
//! blob in one process share one download task; it is aborted (partial files kept) when the
//! last waiter goes away.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;
use http::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

use super::error::PullError;
use super::http::{empty, redact, Http};
use crate::blobs::{atomic_write, hex, sync_dir, Blobs};

/// Where the bytes of one blob come from once redirects are resolved.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// URL the ranged GETs go to.
    pub url: String,
    /// `Authorization` value for that URL (only when it is on the credential's host).
    pub auth: Option<String>,
}

/// Resolves a blob's [`Source`] lazily (only when bytes are actually missing).
pub(crate) type Resolver =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<Source, PullError>> + Send>;

/// One blob to fetch.
pub(crate) struct BlobRequest {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub total: u64,
    /// How to find the bytes.
    pub resolve: Resolver,
}

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

type Done = Shared<BoxFuture<'static, Result<(), PullError>>>;

struct Inflight {
    id: u64,
    progress: watch::Receiver<u64>,
    done: Done,
    waiters: usize,
    abort: tokio::task::AbortHandle,
}

type InflightMap = Mutex<HashMap<PathBuf, Inflight>>;

fn inflight() -> &'static InflightMap {
    static M: OnceLock<InflightMap> = OnceLock::new();
    M.get_or_init(Default::default)
}

fn lock_inflight() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Inflight>> {
    inflight().lock().unwrap_or_else(|p| p.into_inner())
}

/// Leaves the shared download; the last one out aborts it (partial files stay for resume).
struct Waiter {
    key: PathBuf,
    id: u64,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut m = lock_inflight();
        if let Some(e) = m.get_mut(&self.key).filter(|e| e.id == self.id) {
            e.waiters -= 1;
            if e.waiters == 0 {
                e.abort.abort();
                m.remove(&self.key);
            }
        }
    }
}

/// Fetch one blob into the store unless it is already there. `on_progress(completed)` is called
/// at most every `progress_interval` while bytes arrive. Returns `true` for a cache hit.
pub(crate) async fn fetch_blob(
    http: &Http,
    blobs: &Blobs,
    req: BlobRequest,
    mut on_progress: impl FnMut(u64),
) -> Result<bool, PullError> {
    let final_path = blobs.path(&req.digest)?;
    if final_path.is_file() {
        return Ok(true);
    }
    let (waiter, mut rx, done) = {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let mut m = lock_inflight();
        let entry = match m.get_mut(&final_path) {
            Some(e) => e,
            None => {
                let id = IDS.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = watch::channel(0u64);
                let job = Job {
                    http: http.clone(),
                    blobs: blobs.clone(),
                    digest: req.digest.clone(),
                    total: req.total,
                    progress: tx,
                };
                let key = final_path.clone();
                let task = tokio::spawn(async move {
                    let r = job.run(req.resolve).await;
                    let mut m = lock_inflight();
                    if m.get(&key).is_some_and(|e| e.id == id) {
                        m.remove(&key);
                    }
                    r
                });
                let abort = task.abort_handle();
                let done = async move { task.await.unwrap_or(Err(PullError::Cancelled)) }
                    .boxed()
                    .shared();
                m.entry(final_path.clone()).or_insert(Inflight {
                    id,
                    progress: rx,
                    done,
                    waiters: 0,
                    abort,
                })
            }
        };
        entry.waiters += 1;
        (
            Waiter {
                key: final_path.clone(),
                id: entry.id,
            },
            entry.progress.clone(),
            entry.done.clone(),
        )
    };
    let mut done = done;
    let mut last = *rx.borrow_and_update();
    on_progress(last);
    let mut tick = tokio::time::interval(http.cfg.progress_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = &mut done => {
                drop(waiter);
                return r.map(|()| false);
            }
            _ = tick.tick() => {
                let c = *rx.borrow_and_update();
                if c != last {
                    last = c;
                    on_progress(c);
                }
            }
        }
    }
}

/// The download task of one blob.
struct Job {
    http: Http,
    blobs: Blobs,
    digest: String,
    total: u64,
    progress: watch::Sender<u64>,
}

fn partial_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push("-partial");
    PathBuf::from(s)
}

fn part_path(final_path: &Path, n: u64) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(format!("-partial-{n}"));
    PathBuf::from(s)
}

/// Remove `-partial` and every `-partial-N` of a blob.
fn remove_partials(final_path: &Path) {
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

/// Saved parts when they describe exactly `[0, total)` and the data file is there.
fn load_parts(final_path: &Path, total: u64) -> Option<Vec<PartState>> {
    let data = fs::metadata(partial_path(final_path)).ok()?;
    if !data.is_file() {
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

fn save_part(final_path: &Path, p: &PartState) {
    let path = part_path(final_path, p.n);
    match serde_json::to_vec(p) {
        Ok(b) => {
            if let Err(e) = atomic_write(&path, &b) {
                tracing::warn!(error = %e, path = %path.display(), "could not save part state");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not encode part state"),
    }
}

/// A part being downloaded; its state file is written when it is dropped (also on abort).
struct PartRun {
    final_path: PathBuf,
    state: PartState,
    saved_at: Instant,
}

impl PartRun {
    fn save(&mut self) {
        save_part(&self.final_path, &self.state);
        self.saved_at = Instant::now();
    }
}

impl Drop for PartRun {
    fn drop(&mut self) {
        self.save();
    }
}

/// Received bytes are written (and counted in the part state) in pieces of at most this size...
const WRITE_BUF: usize = 1 << 20;
/// ...or at least this often, so a cancelled pull loses little.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Job {
    async fn run(self, resolve: Resolver) -> Result<(), PullError> {
        let final_path = self.blobs.path(&self.digest)?;
        let dir = self.blobs.dir().to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| PullError::io(format!("mkdir {}", dir.display()), e))?;
        let parts = match load_parts(&final_path, self.total) {
            Some(p) => p,
            None => self.fresh_parts(&final_path).await?,
        };
        let done: u64 = parts.iter().map(|p| p.completed).sum();
        let counter = Arc::new(AtomicU64::new(done));
        self.progress.send_replace(done);
        let missing: Vec<PartState> = parts.into_iter().filter(|p| p.completed < p.size).collect();
        if !missing.is_empty() {
            let source = resolve().await?;
            let width = usize::try_from(self.http.cfg.max_parts.max(1)).unwrap_or(16);
            let results: Vec<Result<(), PullError>> = futures::stream::iter(missing)
                .map(|p| self.run_part(&source, &final_path, p, &counter))
                .buffer_unordered(width)
                .collect()
                .await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
        }
        let digest = self.digest.clone();
        tokio::task::spawn_blocking(move || finish(&final_path, &dir, &digest))
            .await
            .map_err(|e| PullError::Store(format!("verify task failed: {e}")))?
    }

    async fn fresh_parts(&self, final_path: &Path) -> Result<Vec<PartState>, PullError> {
        remove_partials(final_path);
        let data = partial_path(final_path);
        let f = tokio::fs::File::create(&data)
            .await
            .map_err(|e| PullError::io(format!("create {}", data.display()), e))?;
        f.set_len(self.total)
            .await
            .map_err(|e| PullError::io(format!("size {}", data.display()), e))?;
        drop(f);
        let size = self.http.cfg.part_size(self.total);
        let mut parts = Vec::new();
        let mut offset = 0;
        while offset < self.total {
            let p = PartState {
                n: parts.len() as u64,
                offset,
                size: size.min(self.total - offset),
                completed: 0,
            };
            save_part(final_path, &p);
            parts.push(p);
            offset += p.size;
        }
        Ok(parts)
    }

    async fn run_part(
        &self,
        source: &Source,
        final_path: &Path,
        state: PartState,
        counter: &AtomicU64,
    ) -> Result<(), PullError> {
        let mut run = PartRun {
            final_path: final_path.to_path_buf(),
            state,
            saved_at: Instant::now(),
        };
        let mut attempt = 0;
        loop {
            match self.part_attempt(source, &mut run, counter).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < self.http.cfg.max_retries => {
                    attempt += 1;
                    let wait = self.http.cfg.backoff(attempt);
                    tracing::info!(digest = %self.digest, part = run.state.n, attempt, error = %e,
                        "part download failed, retrying in {wait:?}");
                    run.save();
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn part_attempt(
        &self,
        source: &Source,
        run: &mut PartRun,
        counter: &AtomicU64,
    ) -> Result<(), PullError> {
        let start = run.state.offset + run.state.completed;
        let end = run.state.offset + run.state.size - 1;
        let mut headers = vec![(header::RANGE, format!("bytes={start}-{end}"))];
        if let Some(a) = &source.auth {
            headers.push((header::AUTHORIZATION, a.clone()));
        }
        let resp = self
            .http
            .request(Method::GET, &source.url, &headers, empty())
            .await?;
        let mut skip = match resp.status() {
            StatusCode::PARTIAL_CONTENT => 0,
            StatusCode::OK => start,
            _ => return Err(self.http.status_error(resp).await),
        };
        let mut body = resp.into_body();
        let data = partial_path(&run.final_path);
        let ctx = || format!("write {}", data.display());
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .await
            .map_err(|e| PullError::io(ctx(), e))?;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| PullError::io(ctx(), e))?;
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BUF);
        let mut flushed_at = Instant::now();
        let result = loop {
            let remaining = (run.state.size - run.state.completed) as usize - buf.len();
            if remaining == 0 {
                break Ok(());
            }
            let mut chunk = match self.http.next_chunk(&mut body).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    break Err(PullError::Transport(format!(
                        "unexpected end of body from {} at byte {}",
                        redact(&source.url),
                        start + buf.len() as u64
                    )))
                }
                Err(e) => break Err(e),
            };
            if skip > 0 {
                let s = skip.min(chunk.len() as u64);
                let _ = chunk.split_to(s as usize);
                skip -= s;
            }
            let take = chunk.len().min(remaining);
            buf.extend_from_slice(&chunk[..take]);
            // progress counts bytes as they arrive; the part state only what is on disk
            let total = counter.fetch_add(take as u64, Ordering::Relaxed) + take as u64;
            self.progress.send_replace(total);
            if buf.len() >= WRITE_BUF || flushed_at.elapsed() >= FLUSH_EVERY {
                self.flush(&mut f, &mut buf, run).await?;
                flushed_at = Instant::now();
            }
        };
        // whatever arrived is kept, also when the body broke off
        self.flush(&mut f, &mut buf, run).await?;
        result?;
        run.save();
        Ok(())
    }

    async fn flush(
        &self,
        f: &mut tokio::fs::File,
        buf: &mut Vec<u8>,
        run: &mut PartRun,
    ) -> Result<(), PullError> {
        if buf.is_empty() {
            return Ok(());
        }
        f.write_all(buf)
            .await
            .map_err(|e| PullError::io("write partial blob", e))?;
        f.flush()
            .await
            .map_err(|e| PullError::io("write partial blob", e))?;
        let n = buf.len() as u64;
        buf.clear();
        run.state.completed += n;
        if run.saved_at.elapsed().as_secs() >= 1 {
            run.save();
        }
        Ok(())
    }
}

/// Hash the finished `-partial` file; rename it into place when it matches, else remove it.
fn finish(final_path: &Path, dir: &Path, want: &str) -> Result<(), PullError> {
    let data = partial_path(final_path);
    let ctx = || format!("verify {}", data.display());
    let mut f = fs::File::open(&data).map_err(|e| PullError::io(ctx(), e))?;
    f.sync_all().map_err(|e| PullError::io(ctx(), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| PullError::io(ctx(), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    drop(f);
    let got = format!("sha256:{}", hex(&h.finalize()));
    if !want
        .get(7..)
        .is_some_and(|w| w.eq_ignore_ascii_case(&got[7..]))
    {
        remove_partials(final_path);
        return Err(PullError::DigestMismatch {
            want: want.to_string(),
            got,
        });
    }
    fs::rename(&data, final_path)
        .map_err(|e| PullError::io(format!("rename to {}", final_path.display()), e))?;
    remove_partials(final_path);
    sync_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_state_is_upstreams_json() {
        let p = PartState {
            n: 2,
            offset: 10,
            size: 5,
            completed: 3,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"N":2,"Offset":10,"Size":5,"Completed":3}"#
        );
    }

    #[test]
    fn saved_parts_must_cover_the_blob_exactly() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-aa");
        fs::write(partial_path(&fp), vec![0u8; 10]).unwrap();
        let mk = |n, offset, size, completed| PartState {
            n,
            offset,
            size,
            completed,
        };
        save_part(&fp, &mk(0, 0, 6, 6));
        save_part(&fp, &mk(1, 6, 4, 1));
        assert_eq!(load_parts(&fp, 10).unwrap().len(), 2);
        assert!(load_parts(&fp, 11).is_none(), "size changed");
        save_part(&fp, &mk(1, 7, 3, 1));
        assert!(load_parts(&fp, 10).is_none(), "gap");
        remove_partials(&fp);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
