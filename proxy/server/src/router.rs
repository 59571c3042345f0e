//! Backend selection by model name, and listings merged across backends.
//!
//! Rules from the config file come first (exact names, `name:*` or `prefix*` globs); then each
//! backend is asked whether it has the model, in configuration order; otherwise the default
//! backend answers (and reports "not found" in its own terms). Which backend had a model is
//! remembered for a few seconds, so a busy client does not cost an upstream `/api/show` per
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ollmlx_infer::{BackendError, DynBackend};
use ollmlx_wire::ollama as wire;

use crate::respond::with_tag;

/// A routing rule: model-name pattern → backend.
#[derive(Clone)]
pub struct Rule {
    /// Pattern: exact name, `name` (matches `name:latest`), or a trailing-`*` glob.
    pub pattern: String,
    /// Where matching models go.
    pub backend: DynBackend,
}

/// How long "backend N has model M" is trusted before asking again.
pub const DEFAULT_LOOKUP_TTL: Duration = Duration::from_secs(5);

/// Picks a backend per model and merges listings.
#[derive(Clone)]
pub struct BackendRouter {
    rules: Vec<Rule>,
    backends: Vec<DynBackend>,
    /// Model name → (index of the backend that had it, when it said so).
    found: Arc<Mutex<HashMap<String, (usize, Instant)>>>,
    ttl: Duration,
}

impl Default for BackendRouter {
    fn default() -> Self {
        BackendRouter::new(Vec::new())
    }
}

impl BackendRouter {
    /// A router over `backends`; the first one is the default.
    pub fn new(backends: Vec<DynBackend>) -> Self {
        BackendRouter {
            rules: Vec::new(),
            backends,
            found: Arc::default(),
            ttl: DEFAULT_LOOKUP_TTL,
        }
    }

    /// How long a `has_model` answer is reused (zero: ask on every request).
    pub fn with_lookup_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Add a routing rule.
    pub fn with_rule(mut self, pattern: impl Into<String>, backend: DynBackend) -> Self {
        if !self.backends.iter().any(|b| Arc::ptr_eq(b, &backend)) {
            self.backends.push(backend.clone());
        }
        self.rules.push(Rule {
            pattern: pattern.into(),
            backend,
        });
        self
    }

    /// All backends, default first.
    pub fn backends(&self) -> &[DynBackend] {
        &self.backends
    }

    /// The default backend, if any.
    pub fn default_backend(&self) -> Option<DynBackend> {
        self.backends.first().cloned()
    }

    /// When the only backend is a transparent proxy, every request is forwarded verbatim.
    pub fn transparent(&self) -> Option<DynBackend> {
        match self.backends.as_slice() {
            [only]
                if only.is_transparent()
                    && self.rules.iter().all(|r| Arc::ptr_eq(&r.backend, only)) =>
            {
                Some(only.clone())
            }
            _ => None,
        }
    }

    /// The backend for `model`.
    pub async fn route(&self, model: &str) -> Result<DynBackend, BackendError> {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| pattern_matches(&r.pattern, model))
        {
            return Ok(rule.backend.clone());
        }
        if self.backends.len() > 1 {
            if let Some(b) = self.remembered(model) {
                return Ok(b);
            }
            for (i, b) in self.backends.iter().enumerate() {
                if b.has_model(model).await.unwrap_or(false) {
                    if !self.ttl.is_zero() {
                        if let Ok(mut f) = self.found.lock() {
                            f.insert(model.to_string(), (i, Instant::now()));
                        }
                    }
                    return Ok(b.clone());
                }
            }
        }
        self.default_backend()
            .ok_or_else(|| BackendError::ModelNotFound {
                model: model.to_string(),
            })
    }

    fn remembered(&self, model: &str) -> Option<DynBackend> {
        let mut f = self.found.lock().ok()?;
        match f.get(model) {
            Some(&(i, at)) if at.elapsed() < self.ttl => self.backends.get(i).cloned(),
            Some(_) => {
                f.remove(model);
                None
            }
            None => None,
        }
    }

    /// Drop what the router remembers about `model` (after it was deleted, copied or pulled).
    pub fn forget(&self, model: &str) {
        if let Ok(mut f) = self.found.lock() {
            f.remove(model);
        }
    }

    /// `/api/tags` across backends: first backend wins on duplicate names, newest first.
    pub async fn list_models(&self) -> Result<Vec<wire::ListModel>, BackendError> {
        let mut out: Vec<wire::ListModel> = Vec::new();
        let mut first_err = None;
        for b in &self.backends {
            match b.list_models().await {
                Ok(list) => {
                    for m in list {
                        if !out.iter().any(|x| x.name == m.name) {
                            out.push(m);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(backend = b.name(), error = %e, "listing models failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        if out.is_empty() && self.backends.len() == 1 {
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        out.sort_by_key(|m| std::cmp::Reverse(m.modified_at));
        Ok(out)
    }

    /// `/api/ps` across backends, latest expiry first.
    pub async fn loaded(&self) -> Result<Vec<wire::ProcessModel>, BackendError> {
        let mut out = Vec::new();
        for b in &self.backends {
            match b.loaded().await {
                Ok(list) => out.extend(list),
                Err(e) if self.backends.len() == 1 => return Err(e),
                Err(e) => {
                    tracing::warn!(backend = b.name(), error = %e, "listing loaded models failed")
                }
            }
        }
        out.sort_by_key(|m: &wire::ProcessModel| std::cmp::Reverse(m.expires_at));
        Ok(out)
    }
}

/// Whether a rule pattern matches a model name.
pub fn pattern_matches(pattern: &str, model: &str) -> bool {
    let model_lc = model.to_ascii_lowercase();
    let pat = pattern.to_ascii_lowercase();
    if let Some(prefix) = pat.strip_suffix('*') {
        return model_lc.starts_with(prefix);
    }
    model_lc == pat || with_tag(&model_lc) == with_tag(&pat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_mock::{MockBackend, MockModel};

    fn mock(models: &[&str]) -> DynBackend {
        Arc::new(counted(models))
    }

    fn counted(models: &[&str]) -> MockBackend {
        MockBackend::new(models.iter().map(|m| MockModel::echo(m)).collect())
    }

    fn lookups(b: &MockBackend) -> usize {
        b.counters.lookups.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn which_backend_has_a_model_is_remembered_until_the_ttl_or_forget() {
        let (a, b) = (counted(&["a:latest"]), counted(&["b:latest"]));
        let (da, db): (DynBackend, DynBackend) = (Arc::new(a.clone()), Arc::new(b.clone()));
        let router = BackendRouter::new(vec![da, db.clone()]);
        assert!(Arc::ptr_eq(&router.route("b:latest").await.unwrap(), &db));
        let asked = (lookups(&a), lookups(&b));
        assert_eq!(asked, (1, 1));
        for _ in 0..3 {
            assert!(Arc::ptr_eq(&router.route("b:latest").await.unwrap(), &db));
        }
        assert_eq!((lookups(&a), lookups(&b)), asked, "answers were not reused");
        router.forget("b:latest");
        router.route("b:latest").await.unwrap();
        assert_eq!((lookups(&a), lookups(&b)), (2, 2));
        // Models nobody has are asked about every time (a pull may make them appear).
        router.route("absent").await.unwrap();
        router.route("absent").await.unwrap();
        assert_eq!((lookups(&a), lookups(&b)), (4, 4));
    }

    #[tokio::test]
    async fn a_zero_ttl_asks_on_every_request() {
        let b = counted(&["b:latest"]);
        let db: DynBackend = Arc::new(b.clone());
        let router = BackendRouter::new(vec![mock(&[]), db]).with_lookup_ttl(Duration::ZERO);
        router.route("b:latest").await.unwrap();
        router.route("b:latest").await.unwrap();
        assert_eq!(lookups(&b), 2);
    }

    #[tokio::test]
    async fn rules_win_then_backends_that_have_the_model_then_the_default() {
        let local = mock(&["small:latest"]);
        let gpu = mock(&["big:70b", "other:latest"]);
        let router =
            BackendRouter::new(vec![local.clone(), gpu.clone()]).with_rule("qwen3:*", gpu.clone());
        // A rule routes even a model the backend does not list.
        assert!(Arc::ptr_eq(&router.route("qwen3:8b").await.unwrap(), &gpu));
        // Without a rule, the backend that has the model answers.
        assert!(Arc::ptr_eq(&router.route("big:70b").await.unwrap(), &gpu));
        assert!(Arc::ptr_eq(&router.route("small").await.unwrap(), &local));
        // Nobody has it: the default answers (and reports "not found" itself).
        assert!(Arc::ptr_eq(&router.route("absent").await.unwrap(), &local));
        assert!(router.transparent().is_none());
    }

    #[tokio::test]
    async fn listings_merge_across_backends_first_backend_wins_on_duplicates() {
        let router = BackendRouter::new(vec![
            mock(&["a:latest", "shared:latest"]),
            mock(&["shared:latest", "b:latest"]),
        ]);
        let mut names: Vec<String> = router
            .list_models()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        names.sort();
        assert_eq!(names, ["a:latest", "b:latest", "shared:latest"]);
    }

    #[tokio::test]
    async fn an_empty_router_reports_not_found() {
        let e = BackendRouter::default().route("x").await.err().unwrap();
        assert_eq!(e, BackendError::ModelNotFound { model: "x".into() });
    }

    #[test]
    fn patterns_match_exact_latest_and_globs() {
        assert!(pattern_matches("qwen3:8b", "qwen3:8b"));
        assert!(pattern_matches("llama3.2", "llama3.2:latest"));
        assert!(pattern_matches("llama3.2:latest", "LLAMA3.2"));
        assert!(pattern_matches("qwen3:*", "qwen3:32b"));
        assert!(pattern_matches("gpt-*", "gpt-oss:20b"));
        assert!(!pattern_matches("qwen3:8b", "qwen3:32b"));
    }
}
