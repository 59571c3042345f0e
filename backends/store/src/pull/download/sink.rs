//! Where a blob download's bytes go (under [`super`], below the HTTP workers of the registry and
//! Hugging Face pulls): three threads per download so the async workers never block on the disk.
//!
//! * the **writer** takes the bytes the workers receive (`Bytes` straight from hyper, no copy)
//!   over a bounded channel, `pwrite`s them into `-partial` at their offset, keeps each part's
//!   `Completed` (its contiguous on-disk prefix) and saves the part files about once a second and
//!   when it stops; it advances the blob's **frontier**, the end of the contiguous on-disk prefix
//!   from byte 0;
//! * the **hasher** follows the frontier and feeds those bytes to sha256 while the download is
//!   still running (read back from the page cache moments after they were written), so no
//!   whole-file verification pass is left at the end. On resume it starts at byte 0 and hashes
//!   the bytes already on disk once, then keeps following the frontier: the digest always covers
//!   every byte of the file, whichever run wrote it;
//! * the **syncer** (Linux) `fdatasync`s the file every [`SYNC_STEP`] written bytes, so the
//!   disk writes back during the download and the final fsync only has the tail left.
//!
//! The writer stops when every sender is gone (download finished, failed or aborted); the hasher
//! and syncer stop when the writer does.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::parts::{save_part, Chunk, PartState};
use crate::pull::error::PullError;

/// Bytes of one chunk, in order: `data` continues chunk `chunk` where its previous write ended.
pub(crate) struct Piece {
    /// Index into the chunk list the sink was started with.
    pub chunk: usize,
    /// The bytes.
    pub data: Bytes,
}

/// Pieces in flight between the workers and the writer (each at most hyper's read buffer,
/// ~400 KiB).
const QUEUE: usize = 64;
/// The hasher waits for at least this much new contiguous data before reading.
const HASH_STEP: u64 = 1 << 20;
/// Read-back buffer of the hasher.
const HASH_BUF: usize = 4 << 20;
/// The syncer flushes after this many newly written bytes.
pub(crate) const SYNC_STEP: u64 = 64 << 20;
/// Part files are rewritten at most this often while bytes arrive.
const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// End of the contiguous on-disk prefix of the blob.
    frontier: u64,
    /// Bytes written by this run.
    written: u64,
    /// The writer has stopped; the frontier will not move again.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until `ready` holds or the writer has stopped.
    fn wait_for(&self, mut ready: impl FnMut(&State) -> bool) -> MutexGuard<'_, State> {
        let mut g = self.lock();
        while !ready(&g) && !g.closed {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g
    }
}

/// Marks the writer stopped when dropped (also on panic), waking the hasher and syncer.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.cv.notify_all();
    }
}

/// The running threads of one download.
pub(crate) struct Sink {
    /// Where the workers send their bytes; dropping every clone stops the writer.
    pub tx: mpsc::Sender<Piece>,
    writer: oneshot::Receiver<Result<(), PullError>>,
    hasher: oneshot::Receiver<Result<Option<[u8; 32]>, PullError>>,
}

/// What the sink needs to know about the download.
pub(crate) struct Plan {
    /// The `-partial` data file, opened for reading and writing, `total` bytes long.
    pub file: File,
    /// The blob's final path (part files are named after it).
    pub final_path: PathBuf,
    /// Parts as loaded or freshly split.
    pub parts: Vec<PartState>,
    /// The missing bytes as planned by [`super::parts::plan_chunks`].
    pub chunks: Vec<Chunk>,
    /// Blob size.
    pub total: u64,
}

impl Sink {
    /// Start the threads. `hold` is kept alive until the writer has stopped (the per-blob lock,
    /// so a later download of the same blob never overlaps this one's last writes).
    pub(crate) fn start<H: Send + Sync + 'static>(
        plan: Plan,
        hold: Arc<H>,
    ) -> Result<Sink, PullError> {
        let ctx = |e| PullError::io(format!("open {}", plan.final_path.display()), e);
        let hash_file = plan.file.try_clone().map_err(ctx)?;
        let sync_file = plan.file.try_clone().map_err(ctx)?;
        let shared = Arc::new(Shared::default());
        shared.lock().frontier = frontier(&plan.parts, plan.total);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (wtx, writer) = oneshot::channel();
        let (htx, hasher) = oneshot::channel();
        let total = plan.total;
        let sh = shared.clone();
        spawn("ollmlx-blob-hash", move || {
            let _ = htx.send(hash_loop(&hash_file, total, &sh));
        })?;
        if cfg!(target_os = "linux") {
            let sh = shared.clone();
            spawn("ollmlx-blob-sync", move || sync_loop(&sync_file, &sh))?;
        }
        spawn("ollmlx-blob-write", move || {
            let closer = Closer(shared);
            let r = write_loop(plan, rx, &closer.0);
            drop(closer);
            drop(hold);
            let _ = wtx.send(r);
        })?;
        Ok(Sink { tx, writer, hasher })
    }

    /// Stop accepting bytes and wait for the writer to finish (every part file saved).
    pub(crate) async fn close(self) -> Result<Hashed, PullError> {
        drop(self.tx);
        self.writer
            .await
            .unwrap_or_else(|_| Err(PullError::Store("blob writer thread died".into())))?;
        Ok(Hashed(self.hasher))
    }
}

/// The hasher's outcome, once the writer has stopped.
pub(crate) struct Hashed(oneshot::Receiver<Result<Option<[u8; 32]>, PullError>>);

impl Hashed {
    /// The sha256 of the whole file, `None` when the file never became complete.
    pub(crate) async fn digest(self) -> Result<Option<[u8; 32]>, PullError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(PullError::Store("blob hasher thread died".into())))
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), PullError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| PullError::io("spawn download thread", e))
}

/// End of the contiguous complete prefix of `parts`.
fn frontier(parts: &[PartState], total: u64) -> u64 {
    parts
        .iter()
        .find(|p| p.completed < p.size)
        .map_or(total, PartState::next)
}

fn write_loop(plan: Plan, mut rx: mpsc::Receiver<Piece>, shared: &Shared) -> Result<(), PullError> {
    let Plan {
        file,
        final_path,
        mut parts,
        chunks,
        total,
    } = plan;
    // bytes written of each chunk, and each part's chunks not yet finished (in order)
    let mut done = vec![0u64; chunks.len()];
    let mut pending: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); parts.len()];
    for (i, c) in chunks.iter().enumerate() {
        pending[c.part].push_back(i);
    }
    let mut dirty = vec![false; parts.len()];
    let mut saved_at = Instant::now();
    let save = |parts: &[PartState], dirty: &mut [bool]| {
        for (p, d) in parts.iter().zip(dirty.iter_mut()) {
            if std::mem::take(d) {
                save_part(&final_path, p);
            }
        }
    };
    let result = loop {
        let Some(piece) = rx.blocking_recv() else {
            break Ok(());
        };
        let Some(c) = chunks.get(piece.chunk) else {
            break Err(PullError::Store(format!("no chunk {}", piece.chunk)));
        };
        let at = c.start + done[piece.chunk];
        let len = piece.data.len() as u64;
        if at + len > c.end {
            break Err(PullError::Store(format!(
                "{len} bytes at {at} overrun the chunk ending at {}",
                c.end
            )));
        }
        if let Err(e) = write_all_at(&file, &piece.data, at) {
            break Err(PullError::io(
                format!("write {}-partial", final_path.display()),
                e,
            ));
        }
        done[piece.chunk] += len;
        // a part's chunks start at its saved `Completed` and follow each other, so its
        // contiguous prefix ends inside its oldest unfinished chunk
        let p = &mut parts[c.part];
        while let Some(&ci) = pending[c.part].front() {
            let ch = chunks[ci];
            p.completed = ch.start + done[ci] - p.offset;
            dirty[c.part] = true;
            if ch.start + done[ci] < ch.end {
                break;
            }
            pending[c.part].pop_front();
        }
        let wake = {
            let mut st = shared.lock();
            let f = frontier(&parts, total);
            let wake = f != st.frontier || (st.written + len) / SYNC_STEP != st.written / SYNC_STEP;
            st.written += len;
            st.frontier = f;
            wake
        };
        if wake {
            shared.cv.notify_all();
        }
        if saved_at.elapsed() >= SAVE_EVERY {
            save(&parts, &mut dirty);
            saved_at = Instant::now();
        }
    };
    // stop the senders first, then record what is on disk
    rx.close();
    save(&parts, &mut dirty);
    result
}

fn hash_loop(file: &File, total: u64, shared: &Shared) -> Result<Option<[u8; 32]>, PullError> {
    let mut h = Sha256::new();
    let mut hashed = 0u64;
    let mut buf = vec![0u8; HASH_BUF];
    loop {
        if hashed == total {
            return Ok(Some(h.finalize().into()));
        }
        let want = total.min(hashed + HASH_STEP);
        let (upto, closed) = {
            let st = shared.wait_for(|st| st.frontier >= want);
            (st.frontier, st.closed)
        };
        while hashed < upto {
            let n = usize::try_from(upto - hashed).map_or(buf.len(), |n| n.min(buf.len()));
            read_exact_at(file, &mut buf[..n], hashed)
                .map_err(|e| PullError::io("read back partial blob", e))?;
            h.update(&buf[..n]);
            hashed += n as u64;
        }
        if closed && hashed < total {
            return Ok(None);
        }
    }
}

fn sync_loop(file: &File, shared: &Shared) {
    let mut synced = 0u64;
    loop {
        let written = {
            let st = shared.wait_for(|st| st.written >= synced + SYNC_STEP);
            if st.closed {
                return;
            }
            st.written
        };
        if let Err(e) = file.sync_data() {
            tracing::debug!(error = %e, "background fdatasync of a partial blob failed");
        }
        synced = written;
    }
}

#[cfg(unix)]
fn write_all_at(f: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, at)
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(windows)]
fn write_all_at(f: &File, mut buf: &[u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(f, buf, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(f, buf, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let rest = buf;
        buf = &mut rest[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parts::{load_parts, partial_path, plan_chunks, save_part};
    use super::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Start a sink over `final_path`'s partial file (already holding `on_disk`) and feed it
    /// the missing bytes of every chunk in `order`, `piece` bytes at a time.
    fn run(
        final_path: &std::path::Path,
        data: &[u8],
        parts: Vec<PartState>,
        chunk: u64,
        order: &[usize],
        piece: usize,
    ) -> (Option<[u8; 32]>, Vec<Chunk>) {
        let file = fs_open(final_path);
        let chunks = plan_chunks(&parts, chunk);
        let sink = Sink::start(
            Plan {
                file,
                final_path: final_path.to_path_buf(),
                parts,
                chunks: chunks.clone(),
                total: data.len() as u64,
            },
            Arc::new(()),
        )
        .unwrap();
        for &i in order {
            let c = chunks[i];
            for s in (c.start..c.end).step_by(piece) {
                let e = (s + piece as u64).min(c.end);
                let data = Bytes::copy_from_slice(&data[s as usize..e as usize]);
                sink.tx.blocking_send(Piece { chunk: i, data }).unwrap();
            }
        }
        let digest = futures::executor::block_on(async {
            sink.close().await.unwrap().digest().await.unwrap()
        });
        (digest, chunks)
    }

    fn fs_open(final_path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(partial_path(final_path))
            .unwrap()
    }

    #[test]
    fn out_of_order_chunks_complete_parts_contiguously_and_hash_the_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-cc");
        let data = blob(1000);
        std::fs::write(partial_path(&fp), vec![0u8; 1000]).unwrap();
        let parts = super::super::parts::split(1000, 400);
        for p in &parts {
            save_part(&fp, p);
        }
        // chunks of 150 bytes: part 0 = 0,1,2; part 1 = 3,4,5; part 2 = 6,7
        let (digest, chunks) = run(&fp, &data, parts, 150, &[7, 3, 1, 0, 6, 5, 4, 2], 64);
        assert_eq!(chunks.len(), 8);
        assert_eq!(digest, Some(Sha256::digest(&data).into()));
        assert_eq!(std::fs::read(partial_path(&fp)).unwrap(), data);
        let saved = load_parts(&fp, 1000).unwrap();
        assert!(saved.iter().all(|p| p.completed == p.size), "{saved:?}");
    }

    #[test]
    fn a_stopped_download_saves_only_each_parts_contiguous_prefix() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-dd");
        let data = blob(800);
        std::fs::write(partial_path(&fp), vec![0u8; 800]).unwrap();
        let parts = super::super::parts::split(800, 400);
        // part 0: chunks 0 (0..100) and 2 (200..300) arrive, chunk 1 never does;
        // part 1: its first chunk (400..500) arrives
        let (digest, _) = run(&fp, &data, parts, 100, &[2, 0, 4], 30);
        assert_eq!(digest, None, "an incomplete file has no digest");
        let saved = load_parts(&fp, 800).unwrap();
        assert_eq!((saved[0].completed, saved[1].completed), (100, 100));
    }

    #[test]
    fn a_resumed_download_hashes_the_bytes_already_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let fp = d.path().join("sha256-ee");
        let data = blob(600);
        // a previous run left part 0 complete and 50 bytes of part 1 on disk
        let mut disk = data.clone();
        disk[350..].fill(0);
        std::fs::write(partial_path(&fp), &disk).unwrap();
        let mut parts = super::super::parts::split(600, 300);
        parts[0].completed = 300;
        parts[1].completed = 50;
        let (digest, chunks) = run(&fp, &data, parts.clone(), 1 << 20, &[0], 100);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].start, 350);
        assert_eq!(digest, Some(Sha256::digest(&data).into()));

        // the same resume over a corrupted prefix hashes the corruption
        let mut bad = disk;
        bad[10] ^= 1;
        std::fs::write(partial_path(&fp), &bad).unwrap();
        let (digest, _) = run(&fp, &data, parts, 1 << 20, &[0], 100);
        let mut want = data.clone();
        want[10] ^= 1;
        assert_eq!(digest, Some(Sha256::digest(&want).into()));
    }
}
