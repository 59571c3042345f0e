//! The backend configuration file (`$OLLMLX_CONFIG`, default `~/.ollmlx/config.toml`).
//!
//! Read once by `ollmlx serve` to build the backend router: which backends exist (the local
//! store + MLX engine, upstream Ollama servers, OpenAI-compatible servers), which model names
//! each one serves, and which is the default. See docs/configuration.md.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The parsed file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    /// Name of the backend that answers models no rule claims (default: `local`).
    #[serde(default)]
    pub default: Option<String>,
    /// Extra backends, in routing order.
    #[serde(default)]
    pub backends: Vec<BackendEntry>,
}

/// One `[[backends]]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct BackendEntry {
    /// Unique name (shown in logs).
    pub name: String,
    /// `local`, `ollama` or `openai`.
    pub kind: String,
    /// Model-name patterns routed to this backend (exact, `name` = `name:latest`, `prefix*`).
    #[serde(default)]
    pub route: Vec<String>,
    /// The whole table, for the kind-specific settings (url, api_key, models, timeouts...).
    #[serde(skip)]
    pub table: toml::Table,
}

impl Config {
    /// Where the file is looked for: `$OLLMLX_CONFIG`, else `~/.ollmlx/config.toml`.
    pub fn default_path(home: Option<&Path>) -> Option<PathBuf> {
        if let Ok(p) = std::env::var("OLLMLX_CONFIG") {
            if !p.trim().is_empty() {
                return Some(PathBuf::from(p.trim()));
            }
        }
        home.map(|h| h.join(".ollmlx").join("config.toml"))
    }

    /// Load `path`; a missing default file is an empty config, a missing explicit one an error.
    pub fn load(path: &Path, explicit: bool) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default())
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading config file {}", path.display()))
            }
        };
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parse TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let raw: toml::Table = text.parse()?;
        let mut cfg: Config = raw.clone().try_into()?;
        let tables = raw
            .get("backends")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for (entry, table) in cfg.backends.iter_mut().zip(tables) {
            entry.table = table.as_table().cloned().unwrap_or_default();
            if !matches!(entry.kind.as_str(), "local" | "ollama" | "openai") {
                bail!("backend {:?}: unknown kind {:?} (expected \"local\", \"ollama\" or \"openai\")", entry.name, entry.kind);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for b in &cfg.backends {
            if !seen.insert(b.name.as_str()) {
                bail!("backend name {:?} is used twice", b.name);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backends_with_routes_and_kind_specific_keys() {
        let c = Config::parse(
            r#"
default = "gpu"
[[backends]]
name = "gpu"
kind = "openai"
url = "http://10.0.0.5:8000"
models = ["qwen3:8b"]
route = ["qwen3:*"]
[[backends]]
name = "lab"
kind = "ollama"
url = "http://lab:11434"
"#,
        )
        .unwrap();
        assert_eq!(c.default.as_deref(), Some("gpu"));
        assert_eq!(c.backends[0].route, vec!["qwen3:*"]);
        assert_eq!(
            c.backends[0].table["url"].as_str(),
            Some("http://10.0.0.5:8000")
        );
        assert_eq!(c.backends[1].kind, "ollama");
    }

    #[test]
    fn rejects_unknown_kinds_and_duplicate_names() {
        assert!(Config::parse("[[backends]]\nname='a'\nkind='vllm'\n").is_err());
        assert!(Config::parse("[[backends]]\nname='a'\nkind='ollama'\nurl='x'\n[[backends]]\nname='a'\nkind='ollama'\nurl='y'\n").is_err());
    }

    #[test]
    fn missing_default_file_is_empty_but_missing_explicit_file_fails() {
        let p = Path::new("/nonexistent/ollmlx/config.toml");
        assert!(Config::load(p, false).unwrap().backends.is_empty());
        assert!(Config::load(p, true).is_err());
    }
}
