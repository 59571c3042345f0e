//! Hugging Face repository metadata for [`super::hf`]: the Hub's file listing, which files a
//! pull takes (MLX/safetensors or one GGUF quant), and the `ConfigV2` an MLX pull stores so that
//! list/show describe the model like any other (format, family, parameter size, quantization,
//! capabilities).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::gguf::human_number;
use crate::info::chat_template_thinks;
use crate::manifest::ConfigV2;
use crate::safetensors::model_info_from_config;

/// `GET /api/models/{repo}/revision/{rev}?blobs=true`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RepoInfo {
    /// Commit the revision resolved to.
    #[serde(default)]
    pub sha: Option<String>,
    /// Files.
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// One file of a repo.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Sibling {
    /// Path inside the repo.
    pub rfilename: String,
    /// Size (with `blobs=true`).
    #[serde(default)]
    pub size: Option<u64>,
    /// LFS pointer (large files): sha256 and size.
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

/// LFS metadata of a file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Lfs {
    /// Hex sha256 of the content.
    #[serde(default)]
    pub sha256: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
}

/// How a file lands in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `.tensor` layer (safetensors weights).
    Tensor,
    /// `.json` layer (config, tokenizer, templates).
    Json,
    /// GGUF weights (`.model`).
    Gguf,
    /// GGUF projector (`.projector`).
    Projector,
}

/// Config and tokenizer files an MLX model needs next to its weights (top level only).
fn is_mlx_side_file(f: &str) -> bool {
    if f.contains('/') {
        return false;
    }
    let lower = f.to_ascii_lowercase();
    (lower.ends_with(".json") && !lower.ends_with(".safetensors.index.json.lock"))
        || lower.ends_with(".jinja")
        || matches!(
            lower.as_str(),
            "tokenizer.model" | "vocab.txt" | "merges.txt" | "spiece.model"
        )
        || lower.ends_with(".tiktoken")
}

/// Whether a tag names a GGUF quantization (`Q4_K_M`, `q8_0`, `IQ3_XS`, `F16`, `BF16`, ...).
pub(crate) fn looks_like_quant(tag: &str) -> bool {
    let t = tag.to_ascii_uppercase();
    matches!(t.as_str(), "F16" | "BF16" | "F32" | "FP16")
        || ((t.starts_with('Q') || t.starts_with("IQ") || t.starts_with("TQ"))
            && t.chars().any(|c| c.is_ascii_digit())
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn is_gguf(f: &str) -> bool {
    f.to_ascii_lowercase().ends_with(".gguf")
}

fn is_projector(f: &str) -> bool {
    f.to_ascii_lowercase().contains("mmproj")
}

/// Does the GGUF file name carry quant `q` as a token (`model-Q4_K_M.gguf`, `model.q4_k_m.gguf`)?
fn gguf_has_quant(f: &str, q: &str) -> bool {
    let stem = f.to_ascii_lowercase();
    let stem = stem.strip_suffix(".gguf").unwrap_or(&stem);
    let stem = stem.rsplit('/').next().unwrap_or(stem);
    let q = q.to_ascii_lowercase();
    stem.split(['-', '.']).any(|tok| tok == q)
}

/// Pick the files to pull. `quant` selects a GGUF file; without it a repo with safetensors is an
/// MLX pull and a GGUF-only repo takes `Q4_K_M` (else the first GGUF). Errors name the repo.
pub(crate) fn select_files(
    info: &RepoInfo,
    repo: &str,
    quant: Option<&str>,
) -> Result<Vec<(Sibling, Role)>, String> {
    let names: Vec<&Sibling> = info.siblings.iter().collect();
    let has_st = names
        .iter()
        .any(|s| !s.rfilename.contains('/') && s.rfilename.ends_with(".safetensors"));
    let ggufs: Vec<&Sibling> = names
        .iter()
        .copied()
        .filter(|s| is_gguf(&s.rfilename) && !is_projector(&s.rfilename))
        .collect();
    if quant.is_none() && has_st {
        let mut out: Vec<(Sibling, Role)> = Vec::new();
        let mut tensors: Vec<&Sibling> = names
            .iter()
            .copied()
            .filter(|s| !s.rfilename.contains('/') && s.rfilename.ends_with(".safetensors"))
            .collect();
        tensors.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
        out.extend(tensors.into_iter().map(|s| (s.clone(), Role::Tensor)));
        let mut side: Vec<&Sibling> = names
            .iter()
            .copied()
            .filter(|s| is_mlx_side_file(&s.rfilename))
            .collect();
        side.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
        out.extend(side.into_iter().map(|s| (s.clone(), Role::Json)));
        if !out.iter().any(|(s, _)| s.rfilename == "config.json") {
            return Err(format!(
                "hf.co/{repo} has safetensors weights but no config.json"
            ));
        }
        return Ok(out);
    }
    if ggufs.is_empty() {
        return Err(match quant {
            Some(q) => format!("no GGUF file for quantization {q:?} in hf.co/{repo}"),
            None => format!("no safetensors or GGUF weights found in hf.co/{repo}"),
        });
    }
    let pick = match quant {
        Some(q) => ggufs
            .iter()
            .find(|s| gguf_has_quant(&s.rfilename, q))
            .ok_or_else(|| format!("no GGUF file for quantization {q:?} in hf.co/{repo}"))?,
        None => ggufs
            .iter()
            .find(|s| gguf_has_quant(&s.rfilename, "q4_k_m"))
            .or_else(|| ggufs.iter().min_by(|a, b| a.rfilename.cmp(&b.rfilename)))
            .ok_or_else(|| format!("no GGUF weights found in hf.co/{repo}"))?,
    };
    if pick.rfilename.to_ascii_lowercase().contains("-of-0") {
        return Err(format!(
            "{} is a split GGUF, which ollmlx cannot pull yet",
            pick.rfilename
        ));
    }
    let mut out = vec![((*pick).clone(), Role::Gguf)];
    let mut projs: Vec<&Sibling> = names
        .iter()
        .copied()
        .filter(|s| is_gguf(&s.rfilename) && is_projector(&s.rfilename))
        .collect();
    projs.sort_by_key(|s| {
        (
            !s.rfilename.to_ascii_lowercase().contains("f16"),
            s.rfilename.clone(),
        )
    });
    if let Some(p) = projs.first() {
        out.push(((*p).clone(), Role::Projector));
    }
    Ok(out)
}

/// The chat template of an MLX checkpoint: `tokenizer_config.json` `chat_template` (string, or
/// the `default` entry of a list), else `chat_template.jinja`.
pub(crate) fn chat_template(tokenizer_config: Option<&[u8]>, jinja: Option<&[u8]>) -> String {
    if let Some(v) = tokenizer_config.and_then(|b| serde_json::from_slice::<Value>(b).ok()) {
        match v.get("chat_template") {
            Some(Value::String(s)) if !s.is_empty() => return s.clone(),
            Some(Value::Array(a)) => {
                let pick = a
                    .iter()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| a.first());
                if let Some(t) = pick.and_then(|e| e.get("template")).and_then(Value::as_str) {
                    return t.to_string();
                }
            }
            _ => {}
        }
    }
    jinja
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// Parameter count from safetensors headers: quantized `U32` weights count `32/bits` values per
/// element; MLX `.scales`/`.biases` companions are skipped.
pub(crate) fn count_params(files: &[&Path], bits: u64) -> u64 {
    let mut n = 0u64;
    for p in files {
        let Some(h) = read_header(p) else { continue };
        for (name, v) in h.iter() {
            if name == "__metadata__" || name.ends_with(".scales") || name.ends_with(".biases") {
                continue;
            }
            let elems: u64 = v
                .get("shape")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).product())
                .unwrap_or(0);
            let dtype = v.get("dtype").and_then(Value::as_str).unwrap_or("");
            n += if dtype == "U32" && bits > 0 && bits < 32 {
                elems * (32 / bits)
            } else {
                elems
            };
        }
    }
    n
}

fn read_header(p: &Path) -> Option<serde_json::Map<String, Value>> {
    let mut r = BufReader::new(File::open(p).ok()?);
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > 100 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; usize::try_from(n).ok()?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

/// Quantization bits of an MLX checkpoint (`quantization.bits`), 0 when unquantized.
pub(crate) fn quant_bits(cfg: &Value) -> u64 {
    cfg.get("quantization")
        .or_else(|| cfg.get("quantization_config"))
        .and_then(|q| q.get("bits"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The config blob for an MLX pull.
pub(crate) fn mlx_config(cfg: &Value, params: u64, template: &str) -> ConfigV2 {
    let info = model_info_from_config(cfg, 0, 0, 0);
    let family = info
        .get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut c = ConfigV2::new();
    c.model_format = "safetensors".into();
    if !family.is_empty() {
        c.model_family = family.clone();
        c.model_families = Some(vec![family]);
    }
    if params > 0 {
        c.model_type = human_number(params);
    }
    let q = cfg
        .get("quantization")
        .or_else(|| cfg.get("quantization_config"));
    let mode = q
        .and_then(|q| q.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("affine")
        .to_ascii_lowercase();
    let bits = quant_bits(cfg);
    c.file_type = if bits > 0 {
        if mode == "affine" || mode.is_empty() {
            format!("int{bits}")
        } else {
            mode
        }
    } else {
        match cfg
            .get("torch_dtype")
            .or_else(|| cfg.get("dtype"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "bfloat16" => "BF16".into(),
            "float16" => "F16".into(),
            "float32" => "F32".into(),
            _ => String::new(),
        }
    };
    let archs: Vec<String> = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let generative = archs.is_empty()
        || archs.iter().any(|a| {
            a.ends_with("ForCausalLM")
                || a.ends_with("ForConditionalGeneration")
                || a.ends_with("LMHeadModel")
        });
    let mut caps = vec![if generative {
        "completion"
    } else {
        "embedding"
    }
    .to_string()];
    if cfg.get("vision_config").is_some_and(|v| !v.is_null())
        || cfg.get("has_vision").and_then(Value::as_bool) == Some(true)
    {
        caps.push("vision".into());
    }
    if cfg.get("audio_config").is_some_and(|v| !v.is_null()) {
        caps.push("audio".into());
    }
    if generative && (template.contains("tools") || template.contains("tool_call")) {
        caps.push("tools".into());
    }
    if generative && chat_template_thinks(template) {
        caps.push("thinking".into());
    }
    c.capabilities = caps;
    c.requires = "0.19.0".into();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sib(name: &str) -> Sibling {
        Sibling {
            rfilename: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn quant_tags_are_recognised() {
        for q in ["Q4_K_M", "q8_0", "IQ3_XS", "F16", "bf16", "Q6_K"] {
            assert!(looks_like_quant(q), "{q}");
        }
        for r in ["main", "latest", "v1.0", "refs-pr-1", "Qwen"] {
            assert!(!looks_like_quant(r), "{r}");
        }
    }

    #[test]
    fn mlx_repos_take_weights_and_side_files_only() {
        let info = RepoInfo {
            sha: None,
            siblings: vec![
                sib("README.md"),
                sib(".gitattributes"),
                sib("config.json"),
                sib("model-00002-of-00002.safetensors"),
                sib("model-00001-of-00002.safetensors"),
                sib("model.safetensors.index.json"),
                sib("tokenizer.json"),
                sib("chat_template.jinja"),
                sib("onnx/model.safetensors"),
            ],
        };
        let got: Vec<_> = select_files(&info, "r", None)
            .unwrap()
            .into_iter()
            .map(|(s, r)| (s.rfilename, r))
            .collect();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "chat_template.jinja",
                "config.json",
                "model.safetensors.index.json",
                "tokenizer.json"
            ]
        );
        assert_eq!(got[0].1, Role::Tensor);
        assert_eq!(got[2].1, Role::Json);
    }

    #[test]
    fn gguf_quant_tag_picks_the_matching_file_and_projector() {
        let info = RepoInfo {
            sha: None,
            siblings: vec![
                sib("m-Q8_0.gguf"),
                sib("m-Q4_K_M.gguf"),
                sib("mmproj-m-f16.gguf"),
            ],
        };
        let got = select_files(&info, "r", Some("q4_k_m")).unwrap();
        assert_eq!(got[0].0.rfilename, "m-Q4_K_M.gguf");
        assert_eq!(got[1].1, Role::Projector);
        let err = select_files(&info, "u/r", Some("Q2_K")).unwrap_err();
        assert_eq!(err, "no GGUF file for quantization \"Q2_K\" in hf.co/u/r");
        assert_eq!(
            select_files(&info, "r", None).unwrap()[0].0.rfilename,
            "m-Q4_K_M.gguf"
        );
    }

    #[test]
    fn mlx_config_describes_family_quant_and_capabilities() {
        let cfg = json!({"architectures":["LlamaForCausalLM"],"model_type":"llama",
            "quantization":{"group_size":64,"bits":4}});
        let c = mlx_config(&cfg, 3_210_000_000, "{% if tools %}{% endif %}");
        assert_eq!(c.model_format, "safetensors");
        assert_eq!(c.model_family, "llama");
        assert_eq!(c.model_type, "3.2B");
        assert_eq!(c.file_type, "int4");
        assert_eq!(c.capabilities, ["completion", "tools"]);
        let emb = mlx_config(
            &json!({"architectures":["BertModel"],"model_type":"bert","torch_dtype":"float32"}),
            22_000_000,
            "",
        );
        assert_eq!(emb.capabilities, ["embedding"]);
        assert_eq!(emb.file_type, "F32");
    }
}
