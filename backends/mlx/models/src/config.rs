//! Architecture hyper-parameters read from GGUF metadata or a Hugging Face `config.json`.

use mlx_rs::io::GgufFile;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::nn::RopeScaling;

/// Typed access to GGUF metadata (MLX's loader keeps numbers as scalar arrays).
pub struct GgufMeta<'a> {
    file: &'a GgufFile,
}

impl<'a> GgufMeta<'a> {
    /// Wrap a loaded GGUF container.
    pub fn new(file: &'a GgufFile) -> Self {
        GgufMeta { file }
    }

    /// A string value.
    pub fn string(&self, key: &str) -> Result<Option<String>> {
        match self.file.metadata_kind(key)? {
            Some(mlx_rs::io::GgufMetadataKind::String) => Ok(self.file.get_metadata_string(key)?),
            _ => Ok(None),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.file.metadata_kind(key)? {
            Some(mlx_rs::io::GgufMetadataKind::Strings) => {
                Ok(self.file.get_metadata_strings(key)?)
            }
            _ => Ok(None),
        }
    }

    /// A numeric scalar as f64.
    pub fn number(&self, key: &str) -> Result<Option<f64>> {
        match self.file.metadata_kind(key)? {
            Some(mlx_rs::io::GgufMetadataKind::Array) => {
                let Some(a) = self.file.get_metadata_array(key)? else {
                    return Ok(None);
                };
                if a.size() != 1 {
                    return Ok(None);
                }
                Ok(Some(
                    a.as_dtype(mlx_rs::Dtype::Float32)?
                        .try_item_exact::<f32>()? as f64,
                ))
            }
            _ => Ok(None),
        }
    }

    /// A numeric array as i64s.
    pub fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        match self.file.metadata_kind(key)? {
            Some(mlx_rs::io::GgufMetadataKind::Array) => {
                let Some(a) = self.file.get_metadata_array(key)? else {
                    return Ok(None);
                };
                Ok(Some(
                    a.as_dtype(mlx_rs::Dtype::Int64)?.to_vec_exact::<i64>()?,
                ))
            }
            _ => Ok(None),
        }
    }

    /// A boolean (stored as a uint8/bool scalar).
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        Ok(self.number(key)?.map(|v| v != 0.0))
    }

    fn req(&self, key: &str) -> Result<f64> {
        self.number(key)?
            .ok_or_else(|| ModelError::MissingConfig(key.to_string()))
    }
}

/// Hyper-parameters of the llama family (llama 1/2/3, SmolLM, Mistral without sliding window).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Model width.
    pub hidden_size: i32,
    /// Transformer blocks.
    pub num_layers: i32,
    /// Query heads.
    pub num_heads: i32,
    /// Key/value heads.
    pub num_kv_heads: i32,
    /// Features per head.
    pub head_dim: i32,
    /// MLP hidden width.
    pub intermediate_size: i32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Rotated features per head.
    pub rope_dims: i32,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Trained context length.
    pub context_length: i32,
    /// Output head shares the embedding table.
    pub tie_word_embeddings: bool,
    /// RoPE on adjacent pairs (GGUF layout) instead of halves (HF layout).
    pub rope_traditional: bool,
    /// Per-head RMSNorm on queries and keys before RoPE (`self_attn.q_norm`/`k_norm`: Qwen3).
    pub qk_norm: bool,
}

/// Architectures whose attention normalises each query/key head (Qwen3).
fn has_qk_norm(arch: &str) -> bool {
    matches!(arch, "qwen3" | "Qwen3ForCausalLM")
}

impl LlamaConfig {
    /// Read `{arch}.*` keys of a GGUF file.
    pub fn from_gguf(meta: &GgufMeta<'_>, arch: &str, has_output: bool) -> Result<Self> {
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = meta.req(&k("embedding_length"))? as i32;
        let heads = meta.req(&k("attention.head_count"))? as i32;
        let kv = meta
            .number(&k("attention.head_count_kv"))?
            .map_or(heads, |v| v as i32);
        let head_dim = meta
            .number(&k("attention.key_length"))?
            .map_or(hidden / heads.max(1), |v| v as i32);
        let vocab = match meta.number(&k("vocab_size"))? {
            Some(v) => v as i32,
            None => meta
                .strings("tokenizer.ggml.tokens")?
                .map_or(0, |t| t.len() as i32),
        };
        let scaling = match meta.string(&k("rope.scaling.type"))?.as_deref() {
            Some("linear") => RopeScaling::Linear {
                factor: meta.number(&k("rope.scaling.factor"))?.unwrap_or(1.0) as f32,
            },
            _ => RopeScaling::None,
        };
        Ok(LlamaConfig {
            hidden_size: hidden,
            num_layers: meta.req(&k("block_count"))? as i32,
            num_heads: heads,
            num_kv_heads: kv,
            head_dim,
            intermediate_size: meta.req(&k("feed_forward_length"))? as i32,
            rms_norm_eps: meta
                .number(&k("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5) as f32,
            rope_theta: meta.number(&k("rope.freq_base"))?.unwrap_or(10000.0) as f32,
            rope_dims: meta
                .number(&k("rope.dimension_count"))?
                .map_or(head_dim, |v| v as i32),
            rope_scaling: scaling,
            vocab_size: vocab,
            context_length: meta
                .number(&k("context_length"))?
                .map_or(2048, |v| v as i32),
            tie_word_embeddings: !has_output,
            // llama.cpp permutes q/k rows of `llama` models for adjacent-pair RoPE; qwen2/qwen3
            // are converted unpermuted and use the NeoX (half-split) layout.
            rope_traditional: !matches!(arch, "qwen2" | "qwen3"),
            qk_norm: has_qk_norm(arch),
        })
    }

    /// Read a Hugging Face `config.json`.
    pub fn from_hf(cfg: &Value) -> Result<Self> {
        let int = |key: &str| -> Result<i32> {
            cfg[key]
                .as_i64()
                .map(|v| v as i32)
                .ok_or_else(|| ModelError::MissingConfig(key.into()))
        };
        let hidden = int("hidden_size")?;
        let heads = int("num_attention_heads")?;
        let head_dim = cfg["head_dim"]
            .as_i64()
            .map_or(hidden / heads.max(1), |v| v as i32);
        let rs = &cfg["rope_scaling"];
        let kind = rs["rope_type"]
            .as_str()
            .or(rs["type"].as_str())
            .unwrap_or("");
        let f = |key: &str, d: f64| rs[key].as_f64().unwrap_or(d) as f32;
        let scaling = match kind {
            "llama3" => RopeScaling::Llama3 {
                factor: f("factor", 1.0),
                low_freq_factor: f("low_freq_factor", 1.0),
                high_freq_factor: f("high_freq_factor", 4.0),
                original_max_position_embeddings: f("original_max_position_embeddings", 8192.0),
            },
            "linear" => RopeScaling::Linear {
                factor: f("factor", 1.0),
            },
            _ => RopeScaling::None,
        };
        Ok(LlamaConfig {
            hidden_size: hidden,
            num_layers: int("num_hidden_layers")?,
            num_heads: heads,
            num_kv_heads: cfg["num_key_value_heads"]
                .as_i64()
                .map_or(heads, |v| v as i32),
            head_dim,
            intermediate_size: int("intermediate_size")?,
            rms_norm_eps: cfg["rms_norm_eps"].as_f64().unwrap_or(1e-5) as f32,
            rope_theta: cfg["rope_theta"].as_f64().unwrap_or(10000.0) as f32,
            rope_dims: head_dim,
            rope_scaling: scaling,
            vocab_size: int("vocab_size")?,
            context_length: cfg["max_position_embeddings"]
                .as_i64()
                .map_or(2048, |v| v as i32),
            tie_word_embeddings: cfg["tie_word_embeddings"].as_bool().unwrap_or(false),
            rope_traditional: cfg["rope_traditional"].as_bool().unwrap_or(false),
            qk_norm: cfg["model_type"].as_str().is_some_and(has_qk_norm)
                || cfg["architectures"][0].as_str().is_some_and(has_qk_norm),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_config_reads_llama3_rope_scaling_and_defaults() {
        let cfg = serde_json::json!({
            "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
            "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
            "rope_theta": 500000.0, "tie_word_embeddings": true,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
        });
        let c = LlamaConfig::from_hf(&cfg).unwrap();
        assert_eq!(c.head_dim, 64);
        assert!(c.tie_word_embeddings);
        assert!(!c.rope_traditional);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
        assert!(!c.qk_norm);
    }

    #[test]
    fn hf_qwen3_gets_qk_norm_and_its_own_head_dim_qwen2_does_not() {
        let mut cfg = serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
            "hidden_size": 1024, "num_hidden_layers": 28, "num_attention_heads": 16,
            "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 3072,
            "vocab_size": 151936, "rope_theta": 1000000.0, "tie_word_embeddings": true
        });
        let c = LlamaConfig::from_hf(&cfg).unwrap();
        assert!(c.qk_norm);
        assert_eq!((c.head_dim, c.rope_dims), (128, 128));
        cfg["architectures"] = serde_json::json!(["Qwen2ForCausalLM"]);
        cfg["model_type"] = serde_json::json!("qwen2");
        assert!(!LlamaConfig::from_hf(&cfg).unwrap().qk_norm);
    }
}
