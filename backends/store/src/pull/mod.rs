//! `POST /api/pull`: bring a model into the store from an Ollama-protocol registry or from the
//! Hugging Face Hub, streaming upstream's progress objects.
//!
//! [`crate::StoreBackend::manage`] calls [`start`]; it validates the name (400 `invalid model
//! name` before any output), then a spawned task runs the pull and feeds the progress stream.
//! Dropping the stream (client disconnect) aborts the task; downloads in flight keep their
//! `-partial` files so the next pull resumes them.
//!
//! Routing of a name:
//! * `hf.co/<user>/<repo>[:<rev or quant>]` and `huggingface.co/...` → [`hf`];
//! * a default-registry `library/` name found in `data/library.toml` ([`library`]) → the mapped
//!   MLX checkpoint on Hugging Face, stored under the name typed (unless
//!   `OLLMLX_PULL_SOURCE=registry`);
//! * everything else → the Ollama registry protocol ([`registry`]).

pub(crate) mod auth;
pub mod config;
mod download;
pub mod error;
mod hf;
pub(crate) mod hf_meta;
pub(crate) mod http;
pub mod library;
pub(crate) mod progress;
pub(crate) mod registry;

use std::sync::Arc;

use futures::stream;
use ollmlx_infer::{BackendError, ProgressStream};
use ollmlx_wire::ollama as wire;

pub use config::{PullConfig, PullSource};
pub use error::PullError;
pub(crate) use progress::Progress;

use crate::manifest::Manifest;
use crate::name::Name;
use crate::store::Store;

/// What one pull/push works with.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub store: Store,
    pub http: http::Http,
    pub cfg: Arc<PullConfig>,
}

impl Ctx {
    pub(crate) fn new(store: Store, cfg: PullConfig) -> Self {
        let cfg = Arc::new(cfg);
        Ctx {
            store,
            http: http::Http::new(cfg.clone()),
            cfg,
        }
    }
}

/// Where a pull of a given name goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullPlan {
    /// Ollama registry protocol for this name.
    Registry(Name),
    /// Hugging Face repo `repo` at `reference` (revision, or a GGUF quant tag).
    HuggingFace {
        /// `user/repo`.
        repo: String,
        /// What came after `:` (`latest` when nothing did).
        reference: String,
        /// Set when a library name was resolved through `library.toml`: the text of the
        /// `resolving … to …` status.
        resolved_from: Option<String>,
    },
}

/// Whether `host` is a Hugging Face host (`hf.co`, `huggingface.co`, with or without `www.`).
pub fn is_hf_host(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    let h = h.strip_prefix("www.").unwrap_or(&h);
    h == "hf.co" || h == "huggingface.co"
}

/// Decide where `name` (as parsed from `raw`) is pulled from.
pub fn plan(name: &Name, cfg: &PullConfig) -> PullPlan {
    if is_hf_host(&name.host) {
        return PullPlan::HuggingFace {
            repo: name.namespace_model(),
            reference: name.tag.clone(),
            resolved_from: None,
        };
    }
    if cfg.source == PullSource::HuggingFace
        && name.host.eq_ignore_ascii_case(&cfg.default_host)
        && name
            .namespace
            .eq_ignore_ascii_case(crate::name::DEFAULT_NAMESPACE)
    {
        if let Some(target) = library::lookup(&name.model, &name.tag) {
            let (repo, reference) = match target.split_once(':') {
                Some((r, t)) => (r.to_string(), t.to_string()),
                None => (target.to_string(), crate::name::DEFAULT_TAG.to_string()),
            };
            let shown = if name.tag.eq_ignore_ascii_case(crate::name::DEFAULT_TAG) {
                name.model.clone()
            } else {
                format!("{}:{}", name.model, name.tag)
            };
            return PullPlan::HuggingFace {
                resolved_from: Some(format!("resolving {shown} to hf.co/{target}")),
                repo,
                reference,
            };
        }
    }
    PullPlan::Registry(name.clone())
}

/// Validate a pull request and start it. Errors before the stream: `invalid model name` (400).
pub async fn start(
    store: Store,
    req: wire::PullRequest,
    cfg: PullConfig,
) -> Result<ProgressStream, BackendError> {
    let raw = req.model_name().trim().to_string();
    let name = Name::parse(&raw);
    if raw.is_empty() || !name.is_valid() {
        return Err(PullError::InvalidName.into());
    }
    let insecure = req.insecure;
    let ctx = Ctx::new(store, cfg);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let task = tokio::spawn(async move {
        let store_as = {
            let store = ctx.store.clone();
            let n = name.clone();
            tokio::task::spawn_blocking(move || store.canonicalize(&n))
                .await
                .unwrap_or(name.clone())
        };
        let r = match plan(&name, &ctx.cfg) {
            PullPlan::Registry(n) => registry::pull(&ctx, &n, &store_as, insecure, &p).await,
            PullPlan::HuggingFace {
                repo,
                reference,
                resolved_from,
            } => {
                if let Some(s) = resolved_from {
                    p.status(s);
                }
                hf::pull(&ctx, &repo, &reference, &store_as, &p).await
            }
        };
        match r {
            Ok(()) => p.status("success"),
            Err(e) => {
                tracing::info!(model = %raw, error = %e, "pull failed");
                p.error(e.into());
            }
        }
    });
    let guard = AbortOnDrop(task.abort_handle());
    let s: ProgressStream = Box::pin(stream::poll_fn(move |cx| {
        let _keep = &guard;
        rx.poll_recv(cx)
    }));
    Ok(s)
}

/// Aborts the pull task when the progress stream is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The manifest currently stored for `name`, if readable.
pub(crate) fn existing_manifest(store: &Store, name: &Name) -> Option<Manifest> {
    match store.read_manifest(name) {
        Ok(m) => m.map(|m| m.manifest),
        Err(e) => {
            tracing::warn!(name = %name, error = %e, "pulling over a bad existing manifest");
            None
        }
    }
}

/// `writing manifest` (bytes stored verbatim, atomically), then `removing unused layers` for
/// blobs only the previous manifest of this tag used (unless `OLLAMA_NOPRUNE`).
pub(crate) async fn commit_manifest(
    ctx: &Ctx,
    name: &Name,
    bytes: Vec<u8>,
    old: Option<Manifest>,
    p: &Progress,
) -> Result<(), PullError> {
    let new: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| PullError::Invalid(format!("manifest: {e}")))?;
    for d in new.digests() {
        if !ctx.store.blobs().exists(d)? {
            return Err(PullError::Store(format!("blob {d} missing after download")));
        }
    }
    p.status("writing manifest");
    let stale: Option<Manifest> =
        old.filter(|o| !ctx.cfg.noprune && o.digests().any(|d| !new.digests().any(|n| n == d)));
    let store = ctx.store.clone();
    let name = name.clone();
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || -> Result<(), PullError> {
        let _g = store.lock();
        store.write_manifest_bytes(&name, &bytes)?;
        if let Some(old) = stale {
            p2.status("removing unused layers");
            store.remove_unused_layers_locked(&old)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| PullError::Store(format!("write manifest task failed: {e}")))??;
    Ok(())
}
