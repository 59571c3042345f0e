//! Ollama model metadata synthesized for an OpenAI-compatible upstream, which knows little more
//! than model ids: `/api/tags` entries and `/api/show` bodies, built from the id, the upstream's
//! `created` time and (vLLM) `max_model_len`. Everything unknown stays empty rather than invented.

use std::time::{Duration, SystemTime};

use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;
use serde_json::{Map, Value};

use super::digest::sha256_hex;

/// What is known about one upstream model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    /// The name shown to clients.
    pub name: String,
    /// Unix seconds from `/v1/models`, if given.
    pub created: Option<i64>,
    /// Context length, if the upstream reports one (vLLM's `max_model_len`).
    pub context_length: Option<u64>,
}

/// Family guessed from an id: last path segment, tag dropped, up to the first `-`, `_` or `.`
/// (`Qwen/Qwen3-8B` → `qwen3`, `llama-3.1-8b` → `llama`).
pub fn family(id: &str) -> String {
    let base = id.rsplit('/').next().unwrap_or(id);
    let base = base.split(':').next().unwrap_or(base);
    base.split(['-', '_', '.'])
        .find(|s| !s.is_empty())
        .unwrap_or(base)
        .to_lowercase()
}

/// Parameter size guessed from an id token such as `8b`, `0.5B` or `135m` (upper-cased), else empty.
pub fn parameter_size(id: &str) -> String {
    let base = id.rsplit('/').next().unwrap_or(id);
    base.split([':', '-', '_'])
        .find(|t| {
            let t = t.to_ascii_lowercase();
            let Some(num) = t.strip_suffix('b').or_else(|| t.strip_suffix('m')) else {
                return false;
            };
            !num.is_empty()
                && num.chars().all(|c| c.is_ascii_digit() || c == '.')
                && num.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(str::to_uppercase)
        .unwrap_or_default()
}

/// Whether the id looks like an embedding model.
pub fn is_embedding(id: &str) -> bool {
    let l = id.to_lowercase();
    l.contains("embed") || l.contains("bge-") || l.contains("e5-")
}

fn timestamp(created: Option<i64>, fallback: Timestamp) -> Timestamp {
    match created
        .and_then(|c| u64::try_from(c).ok())
        .filter(|c| *c > 0)
    {
        Some(secs) => Timestamp::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
        None => fallback,
    }
}

fn details(facts: &ModelFacts) -> wire::ModelDetails {
    let fam = family(&facts.name);
    wire::ModelDetails {
        parent_model: String::new(),
        format: "openai".into(),
        family: fam.clone(),
        families: Some(vec![fam]),
        parameter_size: parameter_size(&facts.name),
        quantization_level: String::new(),
        context_length: facts.context_length.unwrap_or(0),
        embedding_length: 0,
    }
}

/// Capabilities claimed for a model.
pub fn capabilities(id: &str) -> Vec<String> {
    if is_embedding(id) {
        vec!["embedding".into()]
    } else {
        vec!["completion".into(), "tools".into()]
    }
}

/// An `/api/tags` entry. `fallback` stamps models whose creation time is unknown.
pub fn list_entry(facts: &ModelFacts, fallback: Timestamp) -> wire::ListModel {
    wire::ListModel {
        name: facts.name.clone(),
        model: facts.name.clone(),
        remote_model: String::new(),
        remote_host: String::new(),
        modified_at: timestamp(facts.created, fallback),
        size: 0,
        digest: sha256_hex(facts.name.as_bytes()),
        details: details(facts),
        capabilities: Vec::new(),
    }
}

/// A `/api/show` body.
pub fn show_response(
    facts: &ModelFacts,
    upstream_id: &str,
    fallback: Timestamp,
) -> wire::ShowResponse {
    let fam = family(&facts.name);
    let mut info = Map::new();
    info.insert("general.architecture".into(), Value::String(fam.clone()));
    if let Some(n) = facts.context_length {
        info.insert(format!("{fam}.context_length"), Value::from(n));
    }
    wire::ShowResponse {
        license: String::new(),
        modelfile: format!("# served by an OpenAI-compatible upstream\nFROM {upstream_id}\n"),
        parameters: String::new(),
        template: String::new(),
        system: String::new(),
        renderer: String::new(),
        parser: String::new(),
        details: details(facts),
        messages: Vec::new(),
        remote_model: String::new(),
        remote_host: String::new(),
        model_info: info,
        projector_info: None,
        tensors: Vec::new(),
        capabilities: capabilities(&facts.name),
        modified_at: timestamp(facts.created, fallback),
        requires: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_size_are_read_from_common_id_shapes() {
        assert_eq!(family("Qwen/Qwen3-8B"), "qwen3");
        assert_eq!(family("qwen3:8b"), "qwen3");
        assert_eq!(family("meta-llama/Llama-3.1-8B-Instruct"), "llama");
        assert_eq!(family("gpt-4o"), "gpt");
        assert_eq!(parameter_size("Qwen/Qwen3-8B"), "8B");
        assert_eq!(parameter_size("qwen2.5:0.5b"), "0.5B");
        assert_eq!(parameter_size("SmolLM-135M"), "135M");
        assert_eq!(parameter_size("gpt-4o"), "");
    }

    #[test]
    fn list_entry_uses_openai_format_id_digest_and_created_time() {
        let e = list_entry(
            &ModelFacts {
                name: "qwen3:8b".into(),
                created: Some(1_700_000_000),
                context_length: None,
            },
            Timestamp::zero(),
        );
        assert_eq!(e.details.format, "openai");
        assert_eq!(e.details.family, "qwen3");
        assert_eq!(e.size, 0);
        assert_eq!(e.digest, sha256_hex(b"qwen3:8b"));
        assert_eq!(e.modified_at.unix(), 1_700_000_000);
    }

    #[test]
    fn show_reports_architecture_context_and_capabilities() {
        let s = show_response(
            &ModelFacts {
                name: "Qwen/Qwen3-8B".into(),
                created: None,
                context_length: Some(32768),
            },
            "Qwen/Qwen3-8B",
            Timestamp::zero(),
        );
        assert_eq!(s.model_info["general.architecture"], "qwen3");
        assert_eq!(s.model_info["qwen3.context_length"], 32768);
        assert_eq!(s.capabilities, vec!["completion", "tools"]);
        assert_eq!(s.details.context_length, 32768);
    }
}
