//! `ollmlx pull MODEL`: progress bars per layer, spinners for other statuses.

use std::collections::HashMap;
use std::sync::Arc;

use ollmlx_wire::ollama::{ProgressResponse, PullRequest};

use crate::client::Client;
use crate::progress::{Bar, Progress, Spinner};

/// Turns a stream of progress objects into bars and spinners the way upstream does.
pub struct ProgressView {
    progress: Progress,
    bars: HashMap<String, Arc<Bar>>,
    status: String,
    spinner: Option<Arc<Spinner>>,
    verb: &'static str,
    skip_unstarted: bool,
}

impl ProgressView {
    /// Labels bars `pulling <12hex>:` and ignores not-yet-started layers (completed 0).
    pub fn pull() -> ProgressView {
        ProgressView::new("pulling", true)
    }

    /// Labels bars with the status, or `pushing <12hex>...` when there is none.
    pub fn push() -> ProgressView {
        ProgressView::new("pushing", false)
    }

    /// Like [`ProgressView::push`] but `pulling <12hex>...` (create's layer transfers).
    pub fn create(progress: Progress, spinner: Arc<Spinner>, status: &str) -> ProgressView {
        let mut v = ProgressView::new("pulling", false);
        v.progress = progress;
        v.spinner = Some(spinner);
        v.status = status.to_string();
        v
    }

    fn new(verb: &'static str, skip_unstarted: bool) -> ProgressView {
        ProgressView {
            progress: Progress::new(),
            bars: HashMap::new(),
            status: String::new(),
            spinner: None,
            verb,
            skip_unstarted,
        }
    }

    /// Apply one progress object.
    pub fn update(&mut self, resp: &ProgressResponse) {
        if !resp.digest.is_empty() {
            if self.skip_unstarted && resp.completed == 0 {
                return;
            }
            if let Some(s) = &self.spinner {
                s.stop();
            }
            let bar = self.bars.entry(resp.digest.clone()).or_insert_with(|| {
                let label = if self.skip_unstarted {
                    let (name, is_digest) = match resp.digest.strip_prefix("sha256:") {
                        Some(rest) => (rest.trim(), true),
                        None => (resp.digest.trim(), false),
                    };
                    let name: String = if is_digest {
                        name.chars().take(12).collect()
                    } else {
                        name.to_string()
                    };
                    format!("{} {name}:", self.verb)
                } else if resp.status.is_empty() {
                    let short: String = resp.digest.chars().skip(7).take(12).collect();
                    format!("{} {short}...", self.verb)
                } else {
                    resp.status.clone()
                };
                self.progress.add_bar(&label, resp.total, resp.completed)
            });
            bar.set(resp.completed);
        } else if self.status != resp.status {
            if let Some(s) = &self.spinner {
                s.stop();
            }
            self.status = resp.status.clone();
            self.spinner = Some(self.progress.add_spinner(&resp.status));
        }
    }

    /// Draw the final frame and end the line.
    pub fn stop(&mut self) {
        if let Some(s) = &self.spinner {
            s.stop();
        }
        self.progress.stop();
    }
}

/// Pull `model` with progress on stderr.
pub async fn pull_with_progress(
    client: &Client,
    model: &str,
    insecure: bool,
) -> anyhow::Result<()> {
    let mut view = ProgressView::pull();
    let req = PullRequest {
        model: model.into(),
        name: model.into(),
        insecure,
        ..Default::default()
    };
    let result = client
        .pull(&req, |resp| {
            view.update(&resp);
            Ok(())
        })
        .await;
    view.stop();
    result
}

/// Run `pull MODEL`.
pub async fn run(client: &Client, model: &str, insecure: bool) -> anyhow::Result<()> {
    pull_with_progress(client, model, insecure).await
}
