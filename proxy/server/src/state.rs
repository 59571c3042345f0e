//! Shared server state handed to every handler.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::router::BackendRouter;

/// What handlers need: the backend router and a few settings.
pub struct AppState {
    /// Picks a backend per model.
    pub router: BackendRouter,
    /// Reported by `/api/version` (numeric semver; clients gate on it).
    pub version: String,
    /// Whether OLLAMA_NO_CLOUD was set (reported by `/api/status`).
    pub no_cloud_env: bool,
    /// Largest request body accepted, in bytes (blob uploads are streamed and exempt).
    pub body_limit: usize,
    /// Telemetry for `GET /metrics`.
    pub metrics: Arc<Metrics>,
}

/// The Ollama API version ollmlx matches.
pub const OLLAMA_API_VERSION: &str = "0.33.0";

impl AppState {
    /// State with default settings.
    pub fn new(router: BackendRouter) -> Self {
        AppState {
            router,
            version: OLLAMA_API_VERSION.to_string(),
            no_cloud_env: false,
            body_limit: 256 << 20,
            metrics: Arc::new(Metrics::new()),
        }
    }
}
