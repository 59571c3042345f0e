//! [`PullConfig`]: endpoints, credentials, source policy and transfer tuning for pull and push,
//! read once per request from the environment by [`crate::StoreBackend`] (tests build their own).

use std::time::Duration;

use crate::name::DEFAULT_HOST;

/// Where a plain library name (`llama3.2`, `qwen3:4b`) is pulled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSource {
    /// Resolve through `data/library.toml` to an MLX checkpoint on Hugging Face (default);
    /// names not in the table still come from the Ollama registry.
    HuggingFace,
    /// Always use the Ollama registry (`OLLMLX_PULL_SOURCE=registry`).
    Registry,
}

/// Settings for one pull or push.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// Hugging Face endpoint (`HF_ENDPOINT`, default `https://huggingface.co`), no trailing `/`.
    pub hf_endpoint: String,
    /// Hugging Face token (`HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`).
    pub hf_token: Option<String>,
    /// Library-name policy (`OLLMLX_PULL_SOURCE`).
    pub source: PullSource,
    /// Registry host whose `library/` names the friendly-name table applies to.
    pub default_host: String,
    /// `User-Agent` for every request.
    pub user_agent: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed for response headers after a request is sent.
    pub header_timeout: Duration,
    /// A body that delivers no bytes for this long is abandoned (and retried).
    pub stall_timeout: Duration,
    /// Retries per blob part after the first attempt.
    pub max_retries: u32,
    /// First retry delay; doubles each retry.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Smallest ranged part (upstream: 100 MB).
    pub min_part_size: u64,
    /// Largest ranged part (upstream: 1000 MB).
    pub max_part_size: u64,
    /// Parts per blob (upstream: 16); also the parallel request limit.
    pub max_parts: u64,
    /// Minimum interval between progress objects of one layer (upstream: 60 ms).
    pub progress_interval: Duration,
    /// Keep layers the previous manifest of a tag used (`OLLAMA_NOPRUNE`).
    pub noprune: bool,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            hf_endpoint: "https://huggingface.co".into(),
            hf_token: None,
            source: PullSource::HuggingFace,
            default_host: DEFAULT_HOST.into(),
            user_agent: format!(
                "ollama/{} ({} {}) ollmlx",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS
            ),
            connect_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(30),
            max_retries: 6,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            min_part_size: 100 * 1000 * 1000,
            max_part_size: 1000 * 1000 * 1000,
            max_parts: 16,
            progress_interval: Duration::from_millis(60),
            noprune: false,
        }
    }
}

fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

impl PullConfig {
    /// Defaults overridden by `HF_ENDPOINT`, `HF_TOKEN`/`HUGGING_FACE_HUB_TOKEN`,
    /// `OLLMLX_PULL_SOURCE` (`registry` or `hf`) and `OLLAMA_NOPRUNE`.
    pub fn from_env() -> Self {
        let mut c = PullConfig::default();
        if let Some(e) = env_nonempty("HF_ENDPOINT") {
            c.hf_endpoint = e.trim().trim_end_matches('/').to_string();
        }
        c.hf_token = env_nonempty("HF_TOKEN").or_else(|| env_nonempty("HUGGING_FACE_HUB_TOKEN"));
        if let Some(s) = env_nonempty("OLLMLX_PULL_SOURCE") {
            if matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "registry" | "ollama"
            ) {
                c.source = PullSource::Registry;
            }
        }
        c.noprune = env_nonempty("OLLAMA_NOPRUNE").is_some_and(|v| {
            !matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no")
        });
        c
    }

    /// Delay before retry number `attempt` (1-based): `backoff_base * 2^(attempt-1)`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let f = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff_base.saturating_mul(f).min(self.backoff_max)
    }

    /// Part size for a blob of `total` bytes: `total / max_parts` clamped to
    /// `[min_part_size, max_part_size]` (never 0).
    pub fn part_size(&self, total: u64) -> u64 {
        (total / self.max_parts.max(1))
            .clamp(
                self.min_part_size,
                self.max_part_size.max(self.min_part_size),
            )
            .max(1)
    }
}
