//! `POST /api/push`: upload a stored model to an Ollama-protocol registry.
//!
//! Called from [`crate::StoreBackend::manage`]. Per layer (and the config): `HEAD
//! /v2/<ns>/<m>/blobs/<d>` (present ⇒ skip), `POST /v2/<ns>/<m>/blobs/uploads/`, `PATCH` the
//! whole blob to the returned `Location` (a `307` answer sends it to the redirect target with
//! `PUT` instead), then `PUT <location>?digest=<d>`; finally `PUT /v2/<ns>/<m>/manifests/<tag>`
//! with the manifest bytes as stored. Statuses: `retrieving manifest`, `pushing <12hex>`
//! (digest/total/completed), `pushing manifest`, `success`. Auth is the same unsigned bearer flow
//! as pull ([`crate::pull`]); uploads are single-part (no chunking, no cross-repo mount).

use bytes::Bytes;
use futures::StreamExt;
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use ollmlx_infer::{BackendError, ProgressStream};
use ollmlx_wire::ollama as wire;

use crate::name::Name;
use crate::pull::auth::RegistryClient;
use crate::pull::error::PullError;
use crate::pull::http::{empty, location, resolve_url, ReqBody};
use crate::pull::progress::short_digest;
use crate::pull::registry::registry_base;
use crate::pull::{AbortOnDrop, Ctx, Progress, PullConfig};
use crate::store::Store;

/// Validate a push request and start it. Errors before the stream: `model is required`,
/// `invalid model name`, model not found.
pub async fn start(
    store: Store,
    req: wire::PushRequest,
    cfg: PullConfig,
) -> Result<ProgressStream, BackendError> {
    let raw = req.model_name().trim().to_string();
    if raw.is_empty() {
        return Err(BackendError::InvalidRequest("model is required".into()));
    }
    let name = store
        .resolve(&raw)
        .ok_or_else(|| BackendError::InvalidRequest("invalid model name".into()))?;
    let insecure = req.insecure;
    let ctx = Ctx::new(store, cfg);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let task = tokio::spawn(async move {
        match push(&ctx, &name, insecure, &p).await {
            Ok(()) => p.status("success"),
            Err(e) => p.error(e.into()),
        }
    });
    let guard = AbortOnDrop(task.abort_handle());
    Ok(Box::pin(futures::stream::poll_fn(move |cx| {
        let _keep = &guard;
        rx.poll_recv(cx)
    })))
}

async fn push(ctx: &Ctx, name: &Name, insecure: bool, p: &Progress) -> Result<(), PullError> {
    p.status("retrieving manifest");
    let stored = match ctx.store.read_manifest(name)? {
        Some(m) => m,
        None => {
            p.status("couldn't retrieve manifest");
            return Err(PullError::Invalid(format!(
                "open {}: no such file or directory",
                ctx.store
                    .manifest_path(name)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
    };
    let bytes = std::fs::read(&stored.path).map_err(|e| PullError::io("read manifest", e))?;
    let base = registry_base(name, insecure)?;
    let client = RegistryClient::new(ctx.http.clone(), base);
    let repo = format!("{}/v2/{}/{}", client.base, name.namespace, name.model);
    let mut layers = stored.manifest.layers.clone();
    if !stored.manifest.config.digest.is_empty() {
        layers.push(stored.manifest.config.clone());
    }
    for l in &layers {
        let status = format!("pushing {}", short_digest(&l.digest));
        let path = ctx.store.blobs().path(&l.digest)?;
        let total = ctx.store.blobs().size(&l.digest)?;
        let blob_url = format!("{repo}/blobs/{}", l.digest);
        match client.request(Method::HEAD, &blob_url, &[], &empty).await {
            Ok(_) => {
                p.transfer(&status, &l.digest, total, total);
                continue;
            }
            Err(PullError::NotFound) => {}
            Err(e) => return Err(e),
        }
        p.transfer(&status, &l.digest, total, 0);
        let resp = client
            .request(Method::POST, &format!("{repo}/blobs/uploads/"), &[], &empty)
            .await?;
        let upload_url = resp
            .headers()
            .get("docker-upload-location")
            .and_then(|v| v.to_str().ok())
            .map(|l| resolve_url(&repo, l))
            .or_else(|| location(&resp, &repo))
            .ok_or_else(|| PullError::Invalid("upload response without a Location".into()))?;
        drop(resp);
        let file_body = || file_body(path.clone());
        let len = [(header::CONTENT_LENGTH, total.to_string())];
        let resp = client
            .request(Method::PATCH, &upload_url, &len, &file_body)
            .await?;
        let next = if resp.status() == StatusCode::TEMPORARY_REDIRECT {
            // direct upload: PUT the bytes to the redirect target, no credentials
            let target = location(&resp, &upload_url)
                .ok_or_else(|| PullError::Invalid("redirect without a Location".into()))?;
            let r = ctx
                .http
                .request(Method::PUT, &target, &len, file_body())
                .await?;
            if r.status().as_u16() >= 400 {
                return Err(ctx.http.status_error(r).await);
            }
            upload_url.clone()
        } else {
            location(&resp, &upload_url).unwrap_or(upload_url.clone())
        };
        let sep = if next.contains('?') { '&' } else { '?' };
        client
            .request(
                Method::PUT,
                &format!("{next}{sep}digest={}", l.digest),
                &[(header::CONTENT_LENGTH, "0".into())],
                &empty,
            )
            .await?;
        p.transfer(&status, &l.digest, total, total);
    }
    p.status("pushing manifest");
    let body = Bytes::from(bytes);
    client
        .request(
            Method::PUT,
            &format!("{repo}/manifests/{}", name.tag),
            &[(
                header::CONTENT_TYPE,
                crate::manifest::MEDIA_TYPE_MANIFEST.to_string(),
            )],
            &move || {
                http_body_util::Full::new(body.clone())
                    .map_err(|e| match e {})
                    .boxed_unsync()
            },
        )
        .await?;
    Ok(())
}

/// Stream a blob file as a request body.
fn file_body(path: std::path::PathBuf) -> ReqBody {
    let s = futures::stream::once(async move { tokio::fs::File::open(path).await })
        .map(|r| match r {
            Ok(f) => tokio_util_stream(f).boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .map(|r| r.map(Frame::data));
    BodyExt::boxed_unsync(StreamBody::new(s))
}

fn tokio_util_stream(
    mut f: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    use tokio::io::AsyncReadExt;
    async_stream(move |tx| async move {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match f.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    })
}

fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
