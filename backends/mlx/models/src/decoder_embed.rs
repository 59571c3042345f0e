//! Pooled decoder embeddings (Qwen3-Embedding, gte-Qwen2 and other llama-family checkpoints
//! served as embedding models): the decoder's final-normed hidden states, pooled (last token by
//! default) and optionally L2-normalized.
//!
//! Sits under [`crate::load`]: a llama-family checkpoint becomes a [`DecoderEmbedder`] when its
//! files say it is an embedding model (sentence-transformers `modules.json` /
//! `1_Pooling/config.json` next to the decoder `config.json`, or a GGUF `<arch>.pooling_type`);
//! the engine's embed job reaches it through [`crate::Model::as_encoder`].
//!
//! The hidden-state pass reuses [`Llama`] unchanged: its output head is replaced by an identity
//! projection (`lm_head` = `I[hidden]`, untied), so `forward` returns `norm(h)` — exactly what
//! mlx-lm's `model.model(ids)` returns — instead of logits. Checkpoints saved from the bare
//! `Qwen3Model`/`Qwen2Model` (tensor names without the `model.` prefix) are accepted too.
//! Attention is causal, so right padding in a batch never reaches a real token's state.

use mlx_rs::Array;

use crate::bert::{Encoder, PoolingConfig};
use crate::cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::llama::Llama;
use crate::weights::Weights;
use crate::{LogitsMode, Model, ModelInfo};

/// A llama-family decoder used as a sentence encoder.
pub struct DecoderEmbedder {
    inner: Llama,
    info: ModelInfo,
    hidden: i32,
    pooling: PoolingConfig,
}

/// Give bare-model tensor names (`embed_tokens.weight`, `layers.N...`, `norm.weight`) the
/// `model.` prefix the llama loader expects.
fn add_model_prefix(w: &mut Weights) {
    if w.contains("model.embed_tokens.weight") || !w.contains("embed_tokens.weight") {
        return;
    }
    let map = w.map_mut();
    let names: Vec<String> = map.keys().cloned().collect();
    for name in names {
        let bare = name == "embed_tokens.weight"
            || name.starts_with("embed_tokens.")
            || name.starts_with("layers.")
            || name.starts_with("norm.");
        if bare {
            if let Some(a) = map.remove(&name) {
                map.insert(format!("model.{name}"), a);
            }
        }
    }
}

/// Refuse decoder embedders whose config asks for bidirectional attention (`is_causal: false`,
/// as some gte-Qwen2 checkpoints do): the llama blocks here are causal only.
pub fn check_hf_config(cfg: &serde_json::Value) -> Result<()> {
    if cfg["is_causal"].as_bool() == Some(false) {
        return Err(ModelError::Invalid(
            "decoder embedding models with bidirectional attention (is_causal: false) are not supported"
                .into(),
        ));
    }
    Ok(())
}

impl DecoderEmbedder {
    /// Build the embedder from llama-family weights (Hugging Face or GGUF-mapped names).
    pub fn new(
        mut cfg: LlamaConfig,
        w: &mut Weights,
        architecture: &str,
        pooling: PoolingConfig,
    ) -> Result<Self> {
        add_model_prefix(w);
        let hidden = cfg.hidden_size;
        if hidden <= 0 {
            return Err(ModelError::MissingConfig("hidden_size".into()));
        }
        // Whatever output head the file has is not used: project onto the identity instead.
        let map = w.map_mut();
        for k in ["weight", "scales", "biases", "bias"] {
            map.remove(&format!("lm_head.{k}"));
        }
        let eye = Array::eye::<f32>(hidden, None, None)?.as_dtype(w.options().compute_dtype)?;
        w.map_mut().insert("lm_head.weight".into(), eye);
        cfg.tie_word_embeddings = false;
        let inner = Llama::new(cfg, w, architecture)?;
        let info = Model::info(&inner).clone();
        Ok(DecoderEmbedder {
            inner,
            info,
            hidden,
            pooling,
        })
    }

    /// Pooling and normalization in use.
    pub fn pooling(&self) -> PoolingConfig {
        self.pooling
    }

    /// Final-normed hidden states `[B, L, hidden]` of `tokens` `[B, L]` (fresh caches).
    pub fn hidden_states(&self, tokens: &Array) -> Result<Array> {
        let mut caches = self.inner.new_caches();
        self.inner.forward(tokens, &mut caches, LogitsMode::All)
    }
}

impl Encoder for DecoderEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn embedding_length(&self) -> i32 {
        self.hidden
    }

    fn embed(&self, tokens: &Array, mask: &Array) -> Result<Array> {
        let l = tokens.dim(1);
        if l > self.info.context_length {
            return Err(ModelError::Invalid(format!(
                "{l} tokens exceed the {} positions of the model",
                self.info.context_length
            )));
        }
        let h = self.hidden_states(tokens)?;
        crate::pooling::pool(&h, mask, self.pooling)
    }
}

impl Model for DecoderEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn new_caches(&self) -> Vec<KvCache> {
        Vec::new()
    }

    fn forward(&self, _: &Array, _: &mut [KvCache], _: LogitsMode) -> Result<Array> {
        Err(ModelError::Invalid(format!(
            "{} is loaded as an embedding model and cannot generate text",
            self.info.architecture
        )))
    }

    fn as_encoder(&self) -> Option<&dyn Encoder> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidirectional_decoder_configs_are_refused() {
        let ok = serde_json::json!({"model_type": "qwen2"});
        assert!(check_hf_config(&ok).is_ok());
        let bi = serde_json::json!({"model_type": "qwen2", "is_causal": false});
        let e = check_hf_config(&bi).unwrap_err();
        assert!(e.to_string().contains("is_causal: false"), "{e}");
    }
}
