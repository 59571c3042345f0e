//! Friendly names: the built-in table (`data/library.toml`) mapping Ollama library names
//! (`llama3.2`, `qwen3:4b`) to MLX checkpoints on Hugging Face, plus optional overrides from
//! `$OLLMLX_LIBRARY`. Consulted by [`super::plan`] for default-registry `library/` names.

use std::collections::BTreeMap;
use std::sync::OnceLock;

const BUILTIN: &str = include_str!("../../data/library.toml");

#[derive(serde::Deserialize, Default)]
struct Table {
    #[serde(default)]
    models: BTreeMap<String, String>,
}

fn parse(text: &str) -> Result<BTreeMap<String, String>, toml::de::Error> {
    let t: Table = toml::from_str(text)?;
    Ok(t.models
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect())
}

/// The built-in table merged with `$OLLMLX_LIBRARY` (read once per process).
pub fn table() -> &'static BTreeMap<String, String> {
    static T: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = parse(BUILTIN).unwrap_or_else(|e| {
            tracing::error!(error = %e, "built-in library.toml is invalid");
            BTreeMap::new()
        });
        if let Some(path) = std::env::var_os("OLLMLX_LIBRARY").filter(|p| !p.is_empty()) {
            match std::fs::read_to_string(&path).map(|s| parse(&s)) {
                Ok(Ok(extra)) => t.extend(extra),
                Ok(Err(e)) => tracing::warn!(error = %e, "ignoring invalid $OLLMLX_LIBRARY"),
                Err(e) => tracing::warn!(error = %e, "cannot read $OLLMLX_LIBRARY"),
            }
        }
        t
    })
}

/// The Hugging Face target (`user/repo[:revision]`) of library model `model:tag`, if any.
pub fn lookup(model: &str, tag: &str) -> Option<&'static str> {
    let t = table();
    let m = model.to_ascii_lowercase();
    let tg = tag.to_ascii_lowercase();
    t.get(&format!("{m}:{tg}"))
        .or_else(|| {
            (tg == crate::name::DEFAULT_TAG)
                .then(|| t.get(&m))
                .flatten()
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_maps_common_names() {
        let t = parse(BUILTIN).unwrap();
        assert!(t.len() > 40);
        assert_eq!(
            lookup("llama3.2", "latest"),
            Some("mlx-community/Llama-3.2-3B-Instruct-4bit")
        );
        assert_eq!(
            lookup("Qwen3", "0.6B"),
            Some("mlx-community/Qwen3-0.6B-4bit")
        );
        assert_eq!(lookup("llama3.2", "nope"), None);
        assert_eq!(lookup("not-a-model", "latest"), None);
        for v in t.values() {
            assert_eq!(v.split('/').count(), 2, "{v}");
        }
    }
}
