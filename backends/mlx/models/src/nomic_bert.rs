//! nomic-bert encoders (nomic-embed-text v1/v1.5: Hugging Face `NomicBertModel`, model_type
//! `nomic_bert`; GGUF architecture `nomic-bert`) for embeddings.
//!
//! Sits under [`crate::load`] beside [`crate::bert`]; the engine's embed job reaches it through
//! [`crate::Model::as_encoder`].
//!
//! Differences from BERT: no learned positions (rotary embeddings over `rotary_emb_fraction` of
//! each head, half-split layout, base `rotary_emb_base`), a fused `Wqkv` projection, a SwiGLU MLP
//! (`fc2(fc11(x) * silu(fc12(x)))`) and no biases unless the config asks for them (they are
//! picked up from the weights when present). Blocks are post-LayerNorm (`prenorm: false`), the
//! embeddings go through `emb_ln`. Pooling follows [`crate::pooling`] (mean by default).

use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::nn::silu;
use mlx_rs::Array;
use serde_json::Value;

use crate::bert::{dense_table, key_padding_mask, Encoder, LayerNorm, PoolingConfig};
use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::nn::{Embedding, Linear};
use crate::weights::Weights;
use crate::{LogitsMode, Model, ModelInfo};

/// Hyper-parameters of a nomic-bert encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct NomicBertConfig {
    /// Model width (`n_embd`).
    pub hidden_size: i32,
    /// Encoder blocks (`n_layer`).
    pub num_layers: i32,
    /// Attention heads (`n_head`).
    pub num_heads: i32,
    /// MLP hidden width (`n_inner`, default 4 × width).
    pub intermediate_size: i32,
    /// Context length (`max_trained_positions`, the 2048 llama.cpp writes too).
    pub context_length: i32,
    /// LayerNorm epsilon (`layer_norm_epsilon`).
    pub layer_norm_eps: f32,
    /// RoPE base (`rotary_emb_base`).
    pub rope_base: f32,
    /// Rotated features per head (`rotary_emb_fraction` × head size).
    pub rope_dims: i32,
    /// Adjacent-pair rotation (`rotary_emb_interleaved`) instead of half-split.
    pub rope_traditional: bool,
    /// Vocabulary size.
    pub vocab_size: i32,
}

impl NomicBertConfig {
    /// Read a Hugging Face `config.json`; refuses the variants this encoder does not implement.
    pub fn from_hf(cfg: &Value) -> Result<Self> {
        let int = |key: &str| -> Result<i32> {
            cfg[key]
                .as_i64()
                .map(|v| v as i32)
                .ok_or_else(|| ModelError::MissingConfig(key.into()))
        };
        let unsupported = |what: &str| {
            Err(ModelError::Invalid(format!(
                "nomic_bert with {what} is not supported"
            )))
        };
        if cfg["prenorm"].as_bool() == Some(true) {
            return unsupported("prenorm: true");
        }
        if cfg["use_rms_norm"].as_bool() == Some(true) {
            return unsupported("use_rms_norm: true");
        }
        let act = cfg["activation_function"].as_str().unwrap_or("swiglu");
        if act != "swiglu" {
            return unsupported(&format!("activation_function {act:?}"));
        }
        if !cfg["rotary_emb_scale_base"].is_null() {
            return unsupported("rotary_emb_scale_base (xPos)");
        }
        if cfg["parallel_block"].as_bool() == Some(true) {
            return unsupported("parallel_block: true");
        }
        let hidden = int("n_embd")?;
        let heads = int("n_head")?;
        let head_dim = hidden / heads.max(1);
        let fraction = cfg["rotary_emb_fraction"].as_f64().unwrap_or(0.0);
        let rope_dims = (head_dim as f64 * fraction) as i32;
        if rope_dims <= 0 {
            return unsupported("learned positions (rotary_emb_fraction 0)");
        }
        let context = cfg["max_trained_positions"]
            .as_i64()
            .or(cfg["n_positions"].as_i64())
            .unwrap_or(2048) as i32;
        Ok(NomicBertConfig {
            hidden_size: hidden,
            num_layers: int("n_layer")?,
            num_heads: heads,
            intermediate_size: cfg["n_inner"].as_i64().map_or(4 * hidden, |v| v as i32),
            context_length: context,
            layer_norm_eps: cfg["layer_norm_epsilon"].as_f64().unwrap_or(1e-12) as f32,
            rope_base: cfg["rotary_emb_base"].as_f64().unwrap_or(10000.0) as f32,
            rope_dims,
            rope_traditional: cfg["rotary_emb_interleaved"].as_bool().unwrap_or(false),
            vocab_size: int("vocab_size")?,
        })
    }
}

struct Layer {
    wqkv: Linear,
    out_proj: Linear,
    norm1: LayerNorm,
    fc11: Linear,
    fc12: Linear,
    fc2: Linear,
    norm2: LayerNorm,
}

/// A nomic-bert encoder.
pub struct NomicBert {
    cfg: NomicBertConfig,
    info: ModelInfo,
    pooling: PoolingConfig,
    word: Embedding,
    token_type: Option<Array>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
}

impl NomicBert {
    /// Assemble the encoder from `NomicBertModel` weight names (optionally `bert.`-prefixed, as
    /// `NomicBertForPreTraining` saves them).
    pub fn new(
        cfg: NomicBertConfig,
        w: &mut Weights,
        architecture: &str,
        pooling: PoolingConfig,
    ) -> Result<Self> {
        let p = if w.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let eps = cfg.layer_norm_eps;
        let word = w.embedding(&format!("{p}embeddings.word_embeddings"))?;
        let tt = format!("{p}embeddings.token_type_embeddings");
        let token_type = if w.contains(&format!("{tt}.weight")) {
            Some(dense_table(w, &tt)?)
        } else {
            None
        };
        let emb_ln = LayerNorm::load(w, &format!("{p}emb_ln"), eps)?;
        let mut layers = Vec::with_capacity(cfg.num_layers as usize);
        for i in 0..cfg.num_layers {
            let l = format!("{p}encoder.layers.{i}");
            layers.push(Layer {
                wqkv: w.linear(&format!("{l}.attn.Wqkv"))?,
                out_proj: w.linear(&format!("{l}.attn.out_proj"))?,
                norm1: LayerNorm::load(w, &format!("{l}.norm1"), eps)?,
                fc11: w.linear(&format!("{l}.mlp.fc11"))?,
                fc12: w.linear(&format!("{l}.mlp.fc12"))?,
                fc2: w.linear(&format!("{l}.mlp.fc2"))?,
                norm2: LayerNorm::load(w, &format!("{l}.norm2"), eps)?,
            });
        }
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            num_layers: cfg.num_layers,
            dtype: w.options().compute_dtype,
        };
        let model = NomicBert {
            cfg,
            info,
            pooling,
            word,
            token_type,
            emb_ln,
            layers,
        };
        model.eval_weights()?;
        Ok(model)
    }

    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.word.table.arrays();
        all.extend(&self.token_type);
        all.extend([&self.emb_ln.weight, &self.emb_ln.bias]);
        for l in &self.layers {
            for lin in [&l.wqkv, &l.out_proj, &l.fc11, &l.fc12, &l.fc2] {
                all.extend(lin.arrays());
            }
            for n in [&l.norm1, &l.norm2] {
                all.extend([&n.weight, &n.bias]);
            }
        }
        mlx_rs::transforms::eval(all)?;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &NomicBertConfig {
        &self.cfg
    }

    /// Pooling and normalization in use.
    pub fn pooling(&self) -> PoolingConfig {
        self.pooling
    }

    /// Final hidden states `[B, L, D]` for `tokens` `[B, L]` with `mask` `[B, L]`.
    pub fn hidden_states(&self, tokens: &Array, mask: &Array) -> Result<Array> {
        let (b, l) = (tokens.dim(0), tokens.dim(1));
        if l > self.cfg.context_length {
            return Err(ModelError::Invalid(format!(
                "{l} tokens exceed the {} positions of the model",
                self.cfg.context_length
            )));
        }
        let mut h = self.word.forward(tokens)?;
        if let Some(tt) = &self.token_type {
            h = h.add(tt.take_axis(Array::from_int(0), 0)?)?;
        }
        let mut h = self.emb_ln.forward(&h)?;
        let neg = key_padding_mask(mask, self.info.dtype)?;
        let heads = self.cfg.num_heads;
        let d = self.cfg.hidden_size;
        let hd = d / heads.max(1);
        let scale = (hd as f32).powf(-0.5);
        let split = |y: &Array| -> Result<Array> {
            Ok(y.reshape(&[b, l, heads, hd])?
                .transpose_axes(&[0, 2, 1, 3])?)
        };
        let rope = |x: &Array| -> Result<Array> {
            Ok(fast::rope(
                x,
                self.cfg.rope_dims,
                self.cfg.rope_traditional,
                Some(self.cfg.rope_base),
                1.0,
                0,
                None,
            )?)
        };
        for layer in &self.layers {
            // Wqkv rows are [q; k; v], each `hidden` wide.
            let qkv = layer.wqkv.forward(&h)?.split_equal(3, -1)?;
            let q = rope(&split(&qkv[0])?)?;
            let k = rope(&split(&qkv[1])?)?;
            let v = split(&qkv[2])?;
            let mask = ScaledDotProductAttentionMask::Array(&neg);
            let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?
                .transpose_axes(&[0, 2, 1, 3])?
                .reshape(&[b, l, d])?;
            h = layer.norm1.forward(&h.add(layer.out_proj.forward(&o)?)?)?;
            let gated = layer
                .fc11
                .forward(&h)?
                .multiply(silu(layer.fc12.forward(&h)?)?)?;
            h = layer.norm2.forward(&h.add(layer.fc2.forward(&gated)?)?)?;
        }
        Ok(h)
    }
}

impl Encoder for NomicBert {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn embedding_length(&self) -> i32 {
        self.cfg.hidden_size
    }

    fn embed(&self, tokens: &Array, mask: &Array) -> Result<Array> {
        let h = self.hidden_states(tokens, mask)?;
        crate::pooling::pool(&h, mask, self.pooling)
    }
}

impl Model for NomicBert {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn new_caches(&self) -> Vec<KvCache> {
        Vec::new()
    }

    fn forward(&self, _: &Array, _: &mut [KvCache], _: LogitsMode) -> Result<Array> {
        Err(ModelError::Invalid(format!(
            "{} is an embedding model and cannot generate text",
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

    fn base() -> Value {
        serde_json::json!({
            "architectures": ["NomicBertModel"], "model_type": "nomic_bert",
            "n_embd": 768, "n_head": 12, "n_layer": 12, "n_inner": 3072,
            "activation_function": "swiglu", "rotary_emb_fraction": 1.0,
            "rotary_emb_base": 1000, "rotary_emb_interleaved": false,
            "max_trained_positions": 2048, "n_positions": 8192,
            "layer_norm_epsilon": 1e-12, "prenorm": false, "vocab_size": 30528
        })
    }

    #[test]
    fn nomic_embed_text_config_reads_rotary_and_context() {
        let c = NomicBertConfig::from_hf(&base()).unwrap();
        assert_eq!((c.hidden_size, c.num_heads, c.num_layers), (768, 12, 12));
        assert_eq!((c.rope_dims, c.rope_base), (64, 1000.0));
        assert!(!c.rope_traditional);
        assert_eq!(c.context_length, 2048);
        assert_eq!(c.intermediate_size, 3072);
    }

    #[test]
    fn unimplemented_nomic_variants_are_refused_with_a_reason() {
        for (k, v) in [
            ("prenorm", serde_json::json!(true)),
            ("activation_function", serde_json::json!("gelu")),
            ("rotary_emb_fraction", serde_json::json!(0.0)),
            ("rotary_emb_scale_base", serde_json::json!(512)),
        ] {
            let mut c = base();
            c[k] = v;
            let e = NomicBertConfig::from_hf(&c).unwrap_err();
            assert!(e.to_string().contains("not supported"), "{k}: {e}");
        }
    }
}
