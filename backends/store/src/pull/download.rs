//! Resumable, verified blob downloads: the engine under both the registry and the Hugging Face
//! pulls.
//!
//! A blob of `total` bytes is split into parts (`total/16` clamped to [100 MB, 1000 MB] by
//! default) kept in `blobs/sha256-<hex>-partial`; each part's state is upstream's JSON
//! (`{"N","Offset","Size","Completed"}`) in `sha256-<hex>-partial-<N>` ([`parts`]), so an
//! interrupted pull (error, cancel, crash) resumes with only the missing bytes, and Ollama itself
//! can resume ours. The missing bytes are fetched by up to `max_parts` parallel workers with
//! `Range` GETs of [`parts::chunk_size`] bytes taken in file order; failed requests retry from
//! where they stopped with exponential backoff, and a body that stalls is abandoned and retried.
//! The workers hand the bytes to the [`sink`] threads, which write them, hash the growing
//! contiguous prefix while the download runs and flush the disk in the background; the finished
//! file is fsynced and only renamed to `sha256-<hex>` when its digest matches (a mismatch
//! removes the data). Two pulls needing the same blob in one process share one download task;
//! it is aborted (partial files kept) when the last waiter goes away.

mod parts;
mod sink;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::{BoxFuture, FutureExt, Shared};
use http::{header, Method, StatusCode};
use tokio::sync::{mpsc, watch};

use super::error::PullError;
use super::http::{empty, redact, Http};
use crate::blobs::{hex, sync_dir, Blobs};
use parts::{
    chunk_size, load_parts, partial_path, plan_chunks, remove_partials, save_part, split, Chunk,
    PartState,
};
use sink::{Piece, Plan, Sink};

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

/// One lock per blob path: a download holds it from loading the part files until its writer
/// thread has saved them for the last time, so an aborted download's final writes never overlap
/// the next download of the same blob.
fn blob_lock(final_path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static M: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut m = M
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.retain(|_, l| Arc::strong_count(l) > 1);
    m.entry(final_path.to_path_buf()).or_default().clone()
}

/// The download task of one blob.
struct Job {
    http: Http,
    blobs: Blobs,
    digest: String,
    total: u64,
    progress: watch::Sender<u64>,
}

/// What the workers of one download share.
struct Work<'a> {
    source: &'a Source,
    chunks: &'a [Chunk],
    /// Chunk indices not yet taken, in file order.
    queue: Mutex<VecDeque<usize>>,
    tx: &'a mpsc::Sender<Piece>,
    /// Bytes received so far (progress), including what was on disk before.
    counter: AtomicU64,
}

impl Job {
    async fn run(self, resolve: Resolver) -> Result<(), PullError> {
        let final_path = self.blobs.path(&self.digest)?;
        let dir = self.blobs.dir().to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| PullError::io(format!("mkdir {}", dir.display()), e))?;
        let busy = Arc::new(blob_lock(&final_path).lock_owned().await);
        if final_path.is_file() {
            return Ok(());
        }
        let (total, fp) = (self.total, final_path.clone());
        let size = self.http.cfg.part_size(total);
        let (parts, file) = tokio::task::spawn_blocking(move || open_parts(&fp, total, size))
            .await
            .map_err(|e| PullError::Store(format!("open task failed: {e}")))??;
        let done: u64 = parts.iter().map(|p| p.completed).sum();
        self.progress.send_replace(done);
        let chunks = plan_chunks(&parts, chunk_size(total));
        let sink = Sink::start(
            Plan {
                file,
                final_path: final_path.clone(),
                parts,
                chunks: chunks.clone(),
                total,
            },
            busy.clone(),
        )?;
        let fetched = if chunks.is_empty() {
            Ok(())
        } else {
            match resolve().await {
                Ok(source) => {
                    let work = Work {
                        source: &source,
                        chunks: &chunks,
                        queue: Mutex::new((0..chunks.len()).collect()),
                        tx: &sink.tx,
                        counter: AtomicU64::new(done),
                    };
                    let width = usize::try_from(self.http.cfg.max_parts.max(1))
                        .unwrap_or(16)
                        .min(chunks.len());
                    futures::future::try_join_all((0..width).map(|_| self.worker(&work)))
                        .await
                        .map(drop)
                }
                Err(e) => Err(e),
            }
        };
        // the writer's own failure explains a worker's "writer stopped" best
        let hashed = sink.close().await?;
        fetched?;
        let digest = hashed.digest().await?;
        let want = self.digest.clone();
        tokio::task::spawn_blocking(move || {
            let r = finish(&final_path, &dir, &want, digest);
            drop(busy);
            r
        })
        .await
        .map_err(|e| PullError::Store(format!("verify task failed: {e}")))?
    }

    /// Take chunks off the queue until it is empty.
    async fn worker(&self, work: &Work<'_>) -> Result<(), PullError> {
        loop {
            let next = work
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let Some(i) = next else {
                return Ok(());
            };
            self.fetch_chunk(work, i).await?;
        }
    }

    /// One chunk, retried from where it stopped.
    async fn fetch_chunk(&self, work: &Work<'_>, i: usize) -> Result<(), PullError> {
        let mut got = 0u64;
        let mut attempt = 0;
        loop {
            match self.chunk_attempt(work, i, &mut got).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < self.http.cfg.max_retries => {
                    attempt += 1;
                    let wait = self.http.cfg.backoff(attempt);
                    let c = work.chunks[i];
                    tracing::info!(digest = %self.digest, part = c.part, at = c.start + got,
                        attempt, error = %e, "download failed, retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One ranged GET for the rest of chunk `i` (`got` bytes of it already sent to the writer).
    async fn chunk_attempt(
        &self,
        work: &Work<'_>,
        i: usize,
        got: &mut u64,
    ) -> Result<(), PullError> {
        let c = work.chunks[i];
        let start = c.start + *got;
        let mut headers = vec![(header::RANGE, format!("bytes={start}-{}", c.end - 1))];
        if let Some(a) = &work.source.auth {
            headers.push((header::AUTHORIZATION, a.clone()));
        }
        let resp = self
            .http
            .request(Method::GET, &work.source.url, &headers, empty())
            .await?;
        let mut skip = match resp.status() {
            StatusCode::PARTIAL_CONTENT => 0,
            // the server ignored the range: the body starts at byte 0
            StatusCode::OK => start,
            _ => return Err(self.http.status_error(resp).await),
        };
        let mut body = resp.into_body();
        while c.start + *got < c.end {
            let Some(mut data) = self.http.next_chunk(&mut body).await? else {
                return Err(PullError::Transport(format!(
                    "unexpected end of body from {} at byte {}",
                    redact(&work.source.url),
                    c.start + *got
                )));
            };
            if skip > 0 {
                let s = skip.min(data.len() as u64);
                let _ = data.split_to(s as usize);
                skip -= s;
            }
            let remaining = c.end - c.start - *got;
            if data.len() as u64 > remaining {
                data.truncate(remaining as usize);
            }
            if data.is_empty() {
                continue;
            }
            let n = data.len() as u64;
            work.tx
                .send(Piece { chunk: i, data })
                .await
                .map_err(|_| PullError::Store("blob writer stopped".into()))?;
            *got += n;
            // progress counts bytes as they arrive; the part files only what is on disk
            let total = work.counter.fetch_add(n, Ordering::Relaxed) + n;
            self.progress.send_replace(total);
        }
        Ok(())
    }
}

/// The saved parts of an interrupted download and its data file, or fresh ones.
fn open_parts(
    final_path: &Path,
    total: u64,
    part_size: u64,
) -> Result<(Vec<PartState>, fs::File), PullError> {
    let data = partial_path(final_path);
    let ctx = |e| PullError::io(format!("open {}", data.display()), e);
    if let Some(parts) = load_parts(final_path, total) {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data)
            .map_err(ctx)?;
        return Ok((parts, f));
    }
    remove_partials(final_path);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&data)
        .map_err(ctx)?;
    f.set_len(total).map_err(ctx)?;
    let parts = split(total, part_size);
    for p in &parts {
        save_part(final_path, p);
    }
    Ok((parts, f))
}

/// Check the streamed digest of the finished `-partial` file; fsync and rename it into place
/// when it matches, else remove it.
fn finish(
    final_path: &Path,
    dir: &Path,
    want: &str,
    digest: Option<[u8; 32]>,
) -> Result<(), PullError> {
    let data = partial_path(final_path);
    let Some(digest) = digest else {
        return Err(PullError::Store(format!(
            "{} is incomplete after the download",
            data.display()
        )));
    };
    let got = format!("sha256:{}", hex(&digest));
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
    let ctx = |e| PullError::io(format!("sync {}", data.display()), e);
    fs::File::open(&data)
        .and_then(|f| f.sync_all())
        .map_err(ctx)?;
    fs::rename(&data, final_path)
        .map_err(|e| PullError::io(format!("rename to {}", final_path.display()), e))?;
    remove_partials(final_path);
    sync_dir(dir);
    Ok(())
}
