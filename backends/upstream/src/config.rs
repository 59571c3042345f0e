//! Configuration of the upstream backends, read once at startup: the router's TOML
//! `[[backends]]` entries embed these structs (flattened next to `name` and `kind`).
//!
//! Unknown keys are ignored so the router can put its own keys in the same table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::ClientConfig;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The upstream URL is malformed or uses an unsupported scheme.
    #[error("invalid upstream url {0:?}: {1}")]
    InvalidUrl(String, String),
    /// A timeout is zero, negative or not a number.
    #[error("invalid {0}: must be a positive number of seconds")]
    InvalidTimeout(&'static str),
    /// The API key cannot be sent as an HTTP header, or its variable is unset.
    #[error("invalid api key: {0}")]
    InvalidApiKey(String),
}

/// `kind = "ollama"`: forward to a real Ollama server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaUpstreamConfig {
    /// Base URL, e.g. `http://127.0.0.1:11434` (scheme defaults to `http`; a path is kept as prefix).
    pub url: String,
    /// Seconds allowed to open a TCP connection (default 5).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: f64,
    /// Seconds allowed until the response head arrives (default 600). Ollama sends headers with
    /// the first token, so this must cover model loading and prompt processing. It never limits
    /// how long a stream runs.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: f64,
}

/// `kind = "openai"`: any OpenAI-compatible server (vLLM, llama.cpp, mlx_lm.server, LM Studio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAiUpstreamConfig {
    /// Base URL, e.g. `http://10.0.0.5:8000` (a trailing `/v1` is accepted and ignored).
    pub url: String,
    /// Sent as `Authorization: Bearer <key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Name of an environment variable holding the API key (used when `api_key` is unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Models announced even when the upstream's `/v1/models` omits them or is unreachable.
    #[serde(default)]
    pub models: Vec<String>,
    /// Ollama-style name clients use → model id the upstream expects (e.g. `"qwen3:8b" = "Qwen/Qwen3-8B"`).
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Send non-raw `/api/generate` prompts as a one-turn chat (the upstream applies its chat
    /// template, as Ollama does); raw prompts and `suffix` always use `/v1/completions` (default true).
    #[serde(default = "default_true")]
    pub generate_via_chat: bool,
    /// Seconds allowed to open a TCP connection (default 5).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: f64,
    /// Seconds allowed until the response head arrives (default 600). Never limits stream length.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: f64,
}

fn default_connect_timeout() -> f64 {
    5.0
}

fn default_header_timeout() -> f64 {
    600.0
}

fn default_true() -> bool {
    true
}

// === impl OllamaUpstreamConfig ===

impl OllamaUpstreamConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        OllamaUpstreamConfig {
            url: url.into(),
            connect_timeout_secs: default_connect_timeout(),
            header_timeout_secs: default_header_timeout(),
        }
    }

    /// The client timeouts, validated.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        client_config(self.connect_timeout_secs, self.header_timeout_secs)
    }
}

// === impl OpenAiUpstreamConfig ===

impl OpenAiUpstreamConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        OpenAiUpstreamConfig {
            url: url.into(),
            api_key: None,
            api_key_env: None,
            models: Vec::new(),
            aliases: BTreeMap::new(),
            generate_via_chat: true,
            connect_timeout_secs: default_connect_timeout(),
            header_timeout_secs: default_header_timeout(),
        }
    }

    /// The client timeouts, validated.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        client_config(self.connect_timeout_secs, self.header_timeout_secs)
    }

    /// The API key from `api_key`, else from the variable named by `api_key_env`.
    pub fn resolved_api_key(&self) -> Result<Option<String>, ConfigError> {
        if let Some(k) = &self.api_key {
            return Ok(Some(k.clone()));
        }
        match &self.api_key_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                ConfigError::InvalidApiKey(format!("environment variable {var} is not set"))
            }),
        }
    }
}

fn secs(v: f64, what: &'static str) -> Result<Duration, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Duration::try_from_secs_f64(v).map_err(|_| ConfigError::InvalidTimeout(what))
    } else {
        Err(ConfigError::InvalidTimeout(what))
    }
}

fn client_config(connect: f64, header: f64) -> Result<ClientConfig, ConfigError> {
    Ok(ClientConfig {
        connect_timeout: secs(connect, "connect_timeout_secs")?,
        header_timeout: secs(header, "header_timeout_secs")?,
        ..ClientConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct RouterEntry {
        name: String,
        kind: String,
        #[serde(flatten)]
        openai: OpenAiUpstreamConfig,
    }

    #[test]
    fn openai_config_embeds_in_a_router_toml_table() {
        let e: RouterEntry = toml::from_str(
            r#"
name = "gpu-box"
kind = "openai"
url = "http://10.0.0.5:8000"
models = ["qwen3:8b"]
header_timeout_secs = 30
[aliases]
"qwen3:8b" = "Qwen/Qwen3-8B"
"#,
        )
        .unwrap();
        assert_eq!((e.name.as_str(), e.kind.as_str()), ("gpu-box", "openai"));
        assert_eq!(e.openai.models, vec!["qwen3:8b"]);
        assert_eq!(e.openai.aliases["qwen3:8b"], "Qwen/Qwen3-8B");
        assert!(e.openai.generate_via_chat);
        let c = e.openai.client_config().unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn configs_deserialize_from_a_whole_backends_table_with_router_keys() {
        let doc: toml::Table = toml::from_str(
            r#"
[[backends]]
name = "lab"
kind = "ollama"
route = ["llama*"]
url = "http://lab:11434"
[[backends]]
name = "gpu"
kind = "openai"
route = ["qwen3:*"]
url = "http://10.0.0.5:8000/v1"
api_key = "sk-x"
"#,
        )
        .unwrap();
        let tables = doc["backends"].as_array().unwrap();
        let o: OllamaUpstreamConfig = tables[0].clone().try_into().unwrap();
        assert_eq!(o.url, "http://lab:11434");
        let a: OpenAiUpstreamConfig = tables[1].clone().try_into().unwrap();
        assert_eq!(a.api_key.as_deref(), Some("sk-x"));
        assert!(a.models.is_empty());
    }

    #[test]
    fn ollama_config_needs_only_a_url() {
        let c: OllamaUpstreamConfig = toml::from_str(r#"url = "http://127.0.0.1:11434""#).unwrap();
        assert_eq!(c, OllamaUpstreamConfig::new("http://127.0.0.1:11434"));
    }

    #[test]
    fn non_positive_timeouts_are_rejected() {
        let mut c = OllamaUpstreamConfig::new("http://x");
        c.header_timeout_secs = 0.0;
        assert_eq!(
            c.client_config().unwrap_err(),
            ConfigError::InvalidTimeout("header_timeout_secs")
        );
    }

    #[test]
    fn api_key_env_is_read_when_key_unset() {
        let mut c = OpenAiUpstreamConfig::new("http://x");
        c.api_key_env = Some("OLLMLX_TEST_SURELY_UNSET_KEY_VAR".into());
        assert!(c.resolved_api_key().is_err());
        c.api_key = Some("k".into());
        assert_eq!(c.resolved_api_key().unwrap().as_deref(), Some("k"));
    }
}
