//! Pull from an Ollama-protocol registry (`registry.ollama.ai` or any `host[:port]/ns/model:tag`):
//! manifest GET (with the bearer-token dance in [`super::auth`]), then every layer and the
//! config through [`super::download`], then the manifest bytes exactly as served.
//!
//! Status sequence (upstream's `PullModel`): `pulling manifest`; per layer `pulling <12hex>`
//! with digest/total/completed (once, complete, for blobs already present); `verifying sha256
//! digest`; `writing manifest`; `removing unused layers` when the tag's previous manifest used
//! other blobs; `success`. Tensor (MLX) manifests report one aggregate `pulling model`
//! (`digest: sha256:model`) instead of per-layer objects.

use futures::FutureExt;
use http::{header, Method};

use super::auth::RegistryClient;
use super::download::{fetch_blob, BlobRequest, Resolver, Source};
use super::error::PullError;
use super::http::{empty, is_redirect, location, url_authority};
use super::progress::{short_digest, Progress};
use super::{commit_manifest, existing_manifest, Ctx};
use crate::blobs::blob_file_name;
use crate::manifest::{Layer, Manifest, MEDIA_TYPE_MANIFEST};
use crate::name::Name;

/// Largest manifest accepted.
const MANIFEST_LIMIT: usize = 16 << 20;

/// `scheme://host` for a name, honouring `insecure` (which forces `http`).
pub(crate) fn registry_base(name: &Name, insecure: bool) -> Result<String, PullError> {
    if name.scheme.eq_ignore_ascii_case("http") && !insecure {
        return Err(PullError::InsecureProtocol);
    }
    let scheme = if insecure { "http" } else { "https" };
    Ok(format!("{scheme}://{}", name.host))
}

/// GET the manifest; returns it decoded and as the exact bytes served.
pub(crate) async fn fetch_manifest(
    client: &RegistryClient,
    name: &Name,
) -> Result<(Manifest, Vec<u8>), PullError> {
    let url = format!(
        "{}/v2/{}/{}/manifests/{}",
        client.base, name.namespace, name.model, name.tag
    );
    let resp = client
        .request(
            Method::GET,
            &url,
            &[(header::ACCEPT, MEDIA_TYPE_MANIFEST.to_string())],
            &empty,
        )
        .await?;
    let bytes = client.http.read_body(resp, MANIFEST_LIMIT).await?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| PullError::Invalid(format!("invalid manifest JSON: {e}")))?;
    for l in m.layers.iter().chain(std::iter::once(&m.config)) {
        if !l.digest.is_empty() && blob_file_name(&l.digest).is_err() {
            return Err(PullError::Invalid(format!(
                "invalid digest {:?} in manifest",
                l.digest
            )));
        }
    }
    Ok((m, bytes))
}

fn blob_url(client: &RegistryClient, name: &Name, digest: &str) -> String {
    format!(
        "{}/v2/{}/{}/blobs/{digest}",
        client.base, name.namespace, name.model
    )
}

/// Finds the direct URL of a blob: `GET …/blobs/<d>` answered with a redirect (or 200 with a
/// `Location`); a registry that serves the bytes itself is read with ranged GETs directly.
fn resolver(client: RegistryClient, url: String) -> Resolver {
    Box::new(move || {
        async move {
            let resp = client.request(Method::GET, &url, &[], &empty).await?;
            let status = resp.status();
            let loc = location(&resp, &url);
            drop(resp);
            let target = match (is_redirect(status), loc) {
                (_, Some(l)) => l,
                (true, None) => {
                    return Err(PullError::Invalid(format!(
                        "{status} redirect without a Location for {url}"
                    )))
                }
                (false, None) => url.clone(),
            };
            // credentials only go back to the registry itself, never to a CDN
            let auth = (url_authority(&target) == url_authority(&url))
                .then(|| client.auth_header())
                .flatten();
            Ok(Source { url: target, auth })
        }
        .boxed()
    })
}

/// Size of a blob from `HEAD …/blobs/<d>` (`Content-Length`), else the manifest's size.
async fn blob_size(client: &RegistryClient, url: &str, layer: &Layer) -> Result<u64, PullError> {
    let resp = client.request(Method::HEAD, url, &[], &empty).await?;
    let len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    Ok(len.unwrap_or(u64::try_from(layer.size).unwrap_or(0)))
}

/// Pull `name` from its registry and store the manifest under `store_as`.
pub(crate) async fn pull(
    ctx: &Ctx,
    name: &Name,
    store_as: &Name,
    insecure: bool,
    p: &Progress,
) -> Result<(), PullError> {
    let base = registry_base(name, insecure)?;
    let old = existing_manifest(&ctx.store, store_as);
    p.status("pulling manifest");
    let client = RegistryClient::new(ctx.http.clone(), base);
    let (manifest, bytes) = fetch_manifest(&client, name)
        .await
        .map_err(|e| PullError::Manifest(Box::new(e)))?;

    let mut layers: Vec<Layer> = manifest.layers.clone();
    if !manifest.config.digest.is_empty() {
        layers.push(manifest.config.clone());
    }
    let blobs = ctx.store.blobs();
    if manifest.has_tensor_layers() {
        let total: u64 = layers
            .iter()
            .map(|l| u64::try_from(l.size).unwrap_or(0))
            .sum();
        let mut done = 0u64;
        for l in &layers {
            let url = blob_url(&client, name, &l.digest);
            let size = u64::try_from(l.size).unwrap_or(0);
            if !blobs.exists(&l.digest)? {
                let size_now = blob_size(&client, &url, l).await?;
                let req = BlobRequest {
                    digest: l.digest.clone(),
                    total: size_now,
                    resolve: resolver(client.clone(), url),
                };
                fetch_blob(&ctx.http, blobs, req, |c| {
                    p.transfer("pulling model", "sha256:model", total, done + c)
                })
                .await?;
            }
            done += size;
            p.transfer("pulling model", "sha256:model", total, done);
        }
    } else {
        let mut mismatch = None;
        for l in &layers {
            let status = format!("pulling {}", short_digest(&l.digest));
            if blobs.exists(&l.digest)? {
                let size = u64::try_from(l.size).unwrap_or(0);
                p.transfer(&status, &l.digest, size, size);
                continue;
            }
            let url = blob_url(&client, name, &l.digest);
            let total = blob_size(&client, &url, l).await?;
            let req = BlobRequest {
                digest: l.digest.clone(),
                total,
                resolve: resolver(client.clone(), url),
            };
            match fetch_blob(&ctx.http, blobs, req, |c| {
                p.transfer(&status, &l.digest, total, c)
            })
            .await
            {
                Ok(_) => p.transfer(&status, &l.digest, total, total),
                Err(e @ PullError::DigestMismatch { .. }) => {
                    p.transfer(&status, &l.digest, total, total);
                    mismatch.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        p.status("verifying sha256 digest");
        if let Some(e) = mismatch {
            return Err(e);
        }
    }
    commit_manifest(ctx, store_as, bytes, old, p).await
}
