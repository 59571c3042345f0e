//! Pull from the Hugging Face Hub (`hf.co/<user>/<repo>[:<revision or quant>]`).
//!
//! The Hub lists the repo (`GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`); the
//! files a model needs ([`super::hf_meta::select_files`]) are downloaded from
//! `{endpoint}/{repo}/resolve/{sha}/{path}` (pinned to the listed commit). LFS files go through
//! the resumable engine in [`super::download`] and are verified against their LFS sha256;
//! small git files (config, tokenizer, templates) are fetched whole and hashed here. The result
//! is an ordinary store manifest: MLX checkpoints become `.tensor` + `.json` layers with `name`
//! set and a `model_format: safetensors` config; a GGUF pick becomes a `.model` layer (plus
//! `.projector`). `HF_TOKEN` is sent to the Hub host only, never to the CDN it redirects to.

use futures::FutureExt;
use http::{header, Method, StatusCode};
use serde_json::Value;

use super::download::{fetch_blob, BlobRequest, Resolver, Source};
use super::error::PullError;
use super::hf_meta::{
    chat_template, count_params, looks_like_quant, mlx_config, quant_bits, select_files, RepoInfo,
    Role, Sibling,
};
use super::http::{empty, is_redirect, location, path_escape, url_authority, Http};
use super::progress::{short_digest, Progress};
use super::{commit_manifest, existing_manifest, Ctx};
use crate::blobs::sha256_digest;
use crate::gguf::GgufFile;
use crate::manifest::{
    ConfigV2, Layer, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_JSON, MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PROJECTOR, MEDIA_TYPE_TENSOR,
};
use crate::name::Name;

/// Largest non-LFS file fetched into memory.
const SMALL_FILE_LIMIT: usize = 64 << 20;
/// Redirect hops followed for small files and the listing.
const MAX_REDIRECTS: usize = 5;

/// Talks to one Hub endpoint with an optional token.
#[derive(Clone)]
struct Hub {
    http: Http,
    endpoint: String,
    token: Option<String>,
}

impl Hub {
    /// Auth header for `url`, only when it is on the Hub's own host.
    fn auth_for(&self, url: &str) -> Option<String> {
        let t = self.token.as_ref()?;
        (url_authority(url) == url_authority(&self.endpoint)).then(|| format!("Bearer {t}"))
    }

    /// GET following redirects (credentials dropped off-host); returns the final response.
    async fn get(
        &self,
        method: Method,
        url: &str,
    ) -> Result<(String, http::Response<hyper::body::Incoming>), PullError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let headers: Vec<_> = self
                .auth_for(&url)
                .map(|a| (header::AUTHORIZATION, a))
                .into_iter()
                .collect();
            let resp = self
                .http
                .request(method.clone(), &url, &headers, empty())
                .await?;
            if is_redirect(resp.status()) {
                let Some(next) = location(&resp, &url) else {
                    return Err(PullError::Invalid(format!(
                        "{} redirect without a Location",
                        resp.status()
                    )));
                };
                url = next;
                continue;
            }
            return Ok((url, resp));
        }
        Err(PullError::Invalid(format!("too many redirects for {url}")))
    }

    /// Map an error status: 404 ⇒ not found; 401/403 ⇒ status with a hint about `HF_TOKEN`.
    async fn check(
        &self,
        resp: http::Response<hyper::body::Incoming>,
    ) -> Result<http::Response<hyper::body::Incoming>, PullError> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(PullError::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let e = self.http.status_error(resp).await;
                Err(match e {
                    PullError::Status { code, body } => PullError::Status {
                        code,
                        body: format!(
                            "{body} (gated or private repository: accept its terms on Hugging Face and set HF_TOKEN)"
                        ),
                    },
                    e => e,
                })
            }
            _ => Err(self.http.status_error(resp).await),
        }
    }

    fn file_url(&self, repo: &str, rev: &str, path: &str) -> String {
        format!(
            "{}/{repo}/resolve/{}/{}",
            self.endpoint,
            path_escape(rev),
            path_escape(path)
        )
    }

    /// `HEAD` the resolve URL without following: a redirect (LFS ⇒ CDN) gives the direct URL.
    fn resolver(&self, url: String) -> Resolver {
        let hub = self.clone();
        Box::new(move || {
            async move {
                let headers: Vec<_> = hub
                    .auth_for(&url)
                    .map(|a| (header::AUTHORIZATION, a))
                    .into_iter()
                    .collect();
                let resp = hub
                    .http
                    .request(Method::HEAD, &url, &headers, empty())
                    .await?;
                if is_redirect(resp.status()) {
                    let target = location(&resp, &url).ok_or_else(|| {
                        PullError::Invalid(format!("redirect without a Location for {url}"))
                    })?;
                    let auth = hub.auth_for(&target);
                    return Ok(Source { url: target, auth });
                }
                hub.check(resp).await?;
                let auth = hub.auth_for(&url);
                Ok(Source { url, auth })
            }
            .boxed()
        })
    }
}

/// The pieces of one downloaded file.
struct Got {
    file: Sibling,
    role: Role,
    digest: String,
    size: u64,
}

/// Pull `repo` at `reference` and store it as `store_as`.
pub(crate) async fn pull(
    ctx: &Ctx,
    repo: &str,
    reference: &str,
    store_as: &Name,
    p: &Progress,
) -> Result<(), PullError> {
    let old = existing_manifest(&ctx.store, store_as);
    p.status("pulling manifest");
    let hub = Hub {
        http: ctx.http.clone(),
        endpoint: ctx.cfg.hf_endpoint.trim_end_matches('/').to_string(),
        token: ctx.cfg.hf_token.clone(),
    };
    let (rev, quant) = if reference.eq_ignore_ascii_case(crate::name::DEFAULT_TAG) {
        ("main".to_string(), None)
    } else if looks_like_quant(reference) {
        ("main".to_string(), Some(reference.to_string()))
    } else {
        (reference.to_string(), None)
    };
    let manifest_err = |e: PullError| PullError::Manifest(Box::new(e));
    let list_url = format!(
        "{}/api/models/{repo}/revision/{}?blobs=true",
        hub.endpoint,
        path_escape(&rev)
    );
    let (_, resp) = hub
        .get(Method::GET, &list_url)
        .await
        .map_err(manifest_err)?;
    let resp = hub.check(resp).await.map_err(manifest_err)?;
    let body = hub
        .http
        .read_body(resp, 32 << 20)
        .await
        .map_err(manifest_err)?;
    let info: RepoInfo = serde_json::from_slice(&body).map_err(|e| {
        manifest_err(PullError::Invalid(format!(
            "invalid repository listing from the Hub: {e}"
        )))
    })?;
    let files = select_files(&info, repo, quant.as_deref())
        .map_err(|e| manifest_err(PullError::Invalid(e)))?;
    let pinned = info.sha.clone().filter(|s| !s.is_empty()).unwrap_or(rev);

    let blobs = ctx.store.blobs();
    let mut got = Vec::new();
    let mut mismatch = None;
    for (file, role) in files {
        let url = hub.file_url(repo, &pinned, &file.rfilename);
        let lfs = file.lfs.clone().filter(|l| l.sha256.len() == 64);
        let (digest, size) = match lfs {
            Some(l) => {
                let digest = format!("sha256:{}", l.sha256.to_ascii_lowercase());
                let status = format!("pulling {}", short_digest(&digest));
                let total = if l.size > 0 {
                    l.size
                } else {
                    file.size.unwrap_or(0)
                };
                if blobs.exists(&digest)? {
                    p.transfer(&status, &digest, total, total);
                } else {
                    let req = BlobRequest {
                        digest: digest.clone(),
                        total,
                        resolve: hub.resolver(url),
                    };
                    match fetch_blob(&ctx.http, blobs, req, |c| {
                        p.transfer(&status, &digest, total, c)
                    })
                    .await
                    {
                        Ok(_) => p.transfer(&status, &digest, total, total),
                        Err(e @ PullError::DigestMismatch { .. }) => {
                            p.transfer(&status, &digest, total, total);
                            mismatch.get_or_insert(e);
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                (digest, total)
            }
            None => {
                let (_, resp) = hub.get(Method::GET, &url).await?;
                let resp = hub.check(resp).await?;
                let data = hub.http.read_body(resp, SMALL_FILE_LIMIT).await?;
                let digest = sha256_digest(&data);
                if let Some(want) = file.size.filter(|s| *s != data.len() as u64) {
                    return Err(PullError::Invalid(format!(
                        "{}: expected {want} bytes, got {}",
                        file.rfilename,
                        data.len()
                    )));
                }
                let b = blobs.clone();
                let d2 = data.clone();
                tokio::task::spawn_blocking(move || b.put_bytes(&d2))
                    .await
                    .map_err(|e| PullError::Store(e.to_string()))??;
                let size = data.len() as u64;
                p.transfer(
                    &format!("pulling {}", short_digest(&digest)),
                    &digest,
                    size,
                    size,
                );
                (digest, size)
            }
        };
        got.push(Got {
            file,
            role,
            digest,
            size,
        });
    }
    p.status("verifying sha256 digest");
    if let Some(e) = mismatch {
        return Err(e);
    }
    let store = ctx.store.clone();
    let bytes = tokio::task::spawn_blocking(move || build_manifest(&store, &got))
        .await
        .map_err(|e| PullError::Store(e.to_string()))??;
    commit_manifest(ctx, store_as, bytes, old, p).await
}

/// Write the config blob and return the manifest bytes.
fn build_manifest(store: &crate::store::Store, got: &[Got]) -> Result<Vec<u8>, PullError> {
    let blobs = store.blobs();
    let layer = |g: &Got, media: &str, named: bool| Layer {
        media_type: media.to_string(),
        digest: g.digest.clone(),
        size: i64::try_from(g.size).unwrap_or(i64::MAX),
        from: String::new(),
        name: if named {
            g.file.rfilename.clone()
        } else {
            String::new()
        },
    };
    let mut layers = Vec::new();
    let config: ConfigV2 = if got.iter().any(|g| g.role == Role::Gguf) {
        let mut c = ConfigV2::new();
        c.model_format = "gguf".into();
        for g in got {
            match g.role {
                Role::Gguf => {
                    layers.push(layer(g, MEDIA_TYPE_MODEL, false));
                    let f = GgufFile::open(&blobs.path(&g.digest)?, Some(0))
                        .map_err(|e| PullError::Invalid(format!("{}: {e}", g.file.rfilename)))?;
                    let arch = f.architecture().to_string();
                    c.model_family = arch.clone();
                    c.model_families = Some(vec![arch]);
                    c.model_type = crate::gguf::human_number(f.parameter_count());
                    c.file_type = f.file_type().to_string();
                }
                Role::Projector => layers.push(layer(g, MEDIA_TYPE_PROJECTOR, false)),
                _ => {}
            }
        }
        c
    } else {
        let read = |n: &str| -> Option<Vec<u8>> {
            let g = got.iter().find(|g| g.file.rfilename == n)?;
            blobs.read(&g.digest).ok()
        };
        let cfg: Value = read("config.json")
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| PullError::Invalid("config.json is not valid JSON".into()))?;
        let template = chat_template(
            read("tokenizer_config.json").as_deref(),
            read("chat_template.jinja").as_deref(),
        );
        let mut paths = Vec::new();
        for g in got.iter().filter(|g| g.role == Role::Tensor) {
            paths.push(blobs.path(&g.digest)?);
        }
        let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
        let params = count_params(&refs, quant_bits(&cfg));
        for g in got {
            match g.role {
                Role::Tensor => layers.push(layer(g, MEDIA_TYPE_TENSOR, true)),
                Role::Json => layers.push(layer(g, MEDIA_TYPE_JSON, true)),
                _ => {}
            }
        }
        mlx_config(&cfg, params, &template)
    };
    let cbytes = config.to_bytes();
    let (cdigest, _) = blobs.put_bytes(&cbytes)?;
    let m = Manifest::new(
        Layer {
            media_type: MEDIA_TYPE_CONFIG.into(),
            digest: cdigest,
            size: cbytes.len() as i64,
            ..Default::default()
        },
        layers,
    );
    Ok(m.to_bytes())
}
