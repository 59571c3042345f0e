//! `ollmlx create MODEL [-f Modelfile] [-q level]`: read the Modelfile, upload the local
//! files it references as blobs, then stream `/api/create`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::pull::ProgressView;
use super::CreateArgs;
use crate::client::Client;
use crate::modelfile::{self, named, Plan};
use crate::progress::{Progress, Spinner};
use ollmlx_store::name::Name;

/// Read the Modelfile (`-f`, default `./Modelfile`); when it does not exist upstream falls
/// back to `FROM .` in the current directory. Returns the text and the directory that
/// relative paths resolve against.
pub fn read_modelfile(file: Option<&str>) -> anyhow::Result<(Vec<u8>, PathBuf)> {
    let name = file.filter(|f| !f.is_empty()).unwrap_or("Modelfile");
    let abs = std::path::absolute(name)?;
    match std::fs::metadata(&abs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((b"FROM .\n".to_vec(), std::env::current_dir()?))
        }
        Err(e) => Err(anyhow::anyhow!("stat {}: {e}", abs.display())),
        Ok(_) => {
            let bytes = std::fs::read(&abs)?;
            let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
            Ok((bytes, dir))
        }
    }
}

/// Turn the Modelfile into a plan and apply the command-line flags.
pub fn build_plan(model: &str, bytes: &[u8], dir: &Path, a: &CreateArgs) -> anyhow::Result<Plan> {
    let parsed = ollmlx_store::modelfile::parse(bytes)?;
    let mut plan = modelfile::plan(&parsed, dir).map_err(anyhow::Error::msg)?;
    plan.req.model = model.to_string();
    if let Some(q) = a.quantize.as_deref().filter(|q| !q.is_empty()) {
        plan.req.quantize = q.to_string();
    }
    if let Some(q) = a.draft_quantize.as_deref().filter(|q| !q.is_empty()) {
        if plan.draft_files.is_empty() {
            anyhow::bail!("--draft-quantize requires a DRAFT model");
        }
        plan.req.draft_quantize = q.to_string();
    }
    Ok(plan)
}

async fn upload(
    client: &Client,
    progress: &Progress,
    path: &Path,
    digest: &str,
) -> anyhow::Result<()> {
    if client.blob_exists(digest).await.unwrap_or(false) {
        return Ok(());
    }
    let size = std::fs::metadata(path)?.len().max(1);
    let spinner: Arc<Spinner> = progress.add_spinner(&format!("copying file {digest} 0%"));
    let sent = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (spinner, sent, digest) = (spinner.clone(), sent.clone(), digest.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(60)).await;
                let pct = 100 * sent.load(Ordering::Relaxed) / size;
                spinner.set_message(format!("copying file {digest} {pct}%"));
            }
        })
    };
    let result = client.create_blob(digest, path, sent).await;
    ticker.abort();
    spinner.set_message(format!("copying file {digest} 100%"));
    spinner.stop();
    result
}

/// Run `create`.
pub async fn run(client: &Client, a: CreateArgs) -> anyhow::Result<()> {
    if !Name::parse(&a.model).is_valid() {
        anyhow::bail!("invalid model name: {}", a.model);
    }
    if a.experimental {
        anyhow::bail!(
            "--experimental safetensors model creation is not supported by ollmlx; omit the flag"
        );
    }
    let (bytes, dir) = read_modelfile(a.file.as_deref())?;
    let progress = Progress::new();
    let status = "gathering model components";
    let spinner = progress.add_spinner(status);
    let plan = match build_plan(&a.model, &bytes, &dir, &a) {
        Ok(p) => p,
        Err(e) => {
            let mut progress = progress;
            progress.stop();
            return Err(e);
        }
    };
    spinner.stop();
    for w in &plan.warnings {
        println!("{w}");
    }
    let mut req = plan.req.clone();
    for set in [&plan.files, &plan.adapters, &plan.draft_files] {
        for (path, digest) in set {
            upload(client, &progress, path, digest).await?;
        }
    }
    req.files = named(&plan.files);
    req.adapters = named(&plan.adapters);
    req.draft_files = named(&plan.draft_files);

    let mut view = ProgressView::create(progress, spinner, status);
    let result = client
        .create(&req, |resp| {
            view.update(&resp);
            Ok(())
        })
        .await;
    view.stop();
    match result {
        Err(e) if e.to_string().contains("path or Modelfile are required") => anyhow::bail!(
            "the ollmlx server must be updated to use `ollmlx create` with this client"
        ),
        other => other,
    }
}
