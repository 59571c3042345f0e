//! BERT-family encoders (BERT, MiniLM, mxbai-embed-large, sentence-transformers models) for
//! embeddings.
//!
//! Sits under [`crate::load`] and above the engine's embed job: `ollmlx_engine::embed` calls
//! [`Encoder::embed`] on whatever [`crate::Model::as_encoder`] returns.
//!
//! Word + position + token-type embeddings and a LayerNorm, then post-LayerNorm blocks of
//! biased multi-head self-attention (padding masked out) and a GELU MLP. Sentence vectors are
//! pooled by [`crate::pooling`] (mean, `[CLS]`, last or max, from `1_Pooling/config.json` or
//! GGUF `bert.pooling_type`). Hugging Face tensor names, with or without a `bert.` prefix; GGUF
//! names are mapped onto them by [`crate::encoder_gguf`].

use std::path::Path;

use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::ops::erf;
use mlx_rs::Array;
use serde_json::Value;

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::nn::{Embedding, Linear};
use crate::weights::Weights;
use crate::{LogitsMode, Model, ModelInfo};

/// Hyper-parameters of a BERT encoder (`config.json`, `model_type: bert`).
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Model width.
    pub hidden_size: i32,
    /// Encoder blocks.
    pub num_layers: i32,
    /// Attention heads.
    pub num_heads: i32,
    /// MLP hidden width.
    pub intermediate_size: i32,
    /// Learned positions (the context length).
    pub max_position_embeddings: i32,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
    /// Token-type (segment) vocabulary size.
    pub type_vocab_size: i32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// `hidden_act` is a tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    pub gelu_tanh: bool,
}

impl BertConfig {
    /// Read a Hugging Face `config.json`.
    pub fn from_hf(cfg: &Value) -> Result<Self> {
        let int = |key: &str| -> Result<i32> {
            cfg[key]
                .as_i64()
                .map(|v| v as i32)
                .ok_or_else(|| ModelError::MissingConfig(key.into()))
        };
        let act = cfg["hidden_act"].as_str().unwrap_or("gelu");
        Ok(BertConfig {
            hidden_size: int("hidden_size")?,
            num_layers: int("num_hidden_layers")?,
            num_heads: int("num_attention_heads")?,
            intermediate_size: int("intermediate_size")?,
            max_position_embeddings: cfg["max_position_embeddings"].as_i64().unwrap_or(512) as i32,
            layer_norm_eps: cfg["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
            type_vocab_size: cfg["type_vocab_size"].as_i64().unwrap_or(2) as i32,
            vocab_size: int("vocab_size")?,
            gelu_tanh: matches!(act, "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast"),
        })
    }
}

pub use crate::pooling::{Pooling, PoolingConfig};

/// An encoder that turns token batches into sentence vectors.
pub trait Encoder {
    /// Facts about the model.
    fn info(&self) -> &ModelInfo;
    /// Width of the produced vectors.
    fn embedding_length(&self) -> i32;
    /// `tokens` `[B, L]` int32 and `mask` `[B, L]` (1 = token, 0 = padding) → pooled `[B, D]`
    /// float32 vectors (normalized when the model says so).
    fn embed(&self, tokens: &Array, mask: &Array) -> Result<Array>;
}

/// LayerNorm with a learned gain and bias (BERT-style encoders).
pub(crate) struct LayerNorm {
    pub(crate) weight: Array,
    pub(crate) bias: Array,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn load(w: &mut Weights, prefix: &str, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            weight: w.take_float(&format!("{prefix}.weight"))?,
            bias: w.take_float(&format!("{prefix}.bias"))?,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &Array) -> Result<Array> {
        Ok(fast::layer_norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

/// A BERT encoder.
pub struct Bert {
    cfg: BertConfig,
    info: ModelInfo,
    pooling: PoolingConfig,
    word: Embedding,
    position: Array,
    token_type: Array,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Assemble the encoder from Hugging Face-named weights (optionally `bert.`-prefixed).
    pub fn new(
        cfg: BertConfig,
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
        let position = dense_table(w, &format!("{p}embeddings.position_embeddings"))?;
        let token_type = dense_table(w, &format!("{p}embeddings.token_type_embeddings"))?;
        let emb_norm = LayerNorm::load(w, &format!("{p}embeddings.LayerNorm"), eps)?;
        let mut layers = Vec::with_capacity(cfg.num_layers as usize);
        for i in 0..cfg.num_layers {
            let l = format!("{p}encoder.layer.{i}");
            layers.push(Layer {
                query: w.linear(&format!("{l}.attention.self.query"))?,
                key: w.linear(&format!("{l}.attention.self.key"))?,
                value: w.linear(&format!("{l}.attention.self.value"))?,
                attn_out: w.linear(&format!("{l}.attention.output.dense"))?,
                attn_norm: LayerNorm::load(w, &format!("{l}.attention.output.LayerNorm"), eps)?,
                up: w.linear(&format!("{l}.intermediate.dense"))?,
                down: w.linear(&format!("{l}.output.dense"))?,
                out_norm: LayerNorm::load(w, &format!("{l}.output.LayerNorm"), eps)?,
            });
        }
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.max_position_embeddings,
            num_layers: cfg.num_layers,
            dtype: w.options().compute_dtype,
        };
        let model = Bert {
            cfg,
            info,
            pooling,
            word,
            position,
            token_type,
            emb_norm,
            layers,
        };
        model.eval_weights()?;
        Ok(model)
    }

    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.word.table.arrays();
        all.extend([&self.position, &self.token_type]);
        all.extend([&self.emb_norm.weight, &self.emb_norm.bias]);
        for l in &self.layers {
            for lin in [&l.query, &l.key, &l.value, &l.attn_out, &l.up, &l.down] {
                all.extend(lin.arrays());
            }
            for n in [&l.attn_norm, &l.out_norm] {
                all.extend([&n.weight, &n.bias]);
            }
        }
        mlx_rs::transforms::eval(all)?;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// Pooling and normalization in use.
    pub fn pooling(&self) -> PoolingConfig {
        self.pooling
    }

    fn gelu(&self, x: &Array) -> Result<Array> {
        if self.cfg.gelu_tanh {
            return Ok(mlx_rs::nn::gelu_approximate(x)?);
        }
        let inner = erf(x.multiply(Array::from_f32(std::f32::consts::FRAC_1_SQRT_2))?)?;
        Ok(x.multiply(Array::from_f32(0.5))?
            .multiply(inner.add(Array::from_f32(1.0))?)?)
    }

    /// Final hidden states `[B, L, D]` for `tokens` `[B, L]` with `mask` `[B, L]`.
    pub fn hidden_states(&self, tokens: &Array, mask: &Array) -> Result<Array> {
        let (b, l) = (tokens.dim(0), tokens.dim(1));
        if l > self.cfg.max_position_embeddings {
            return Err(ModelError::Invalid(format!(
                "{l} tokens exceed the {} positions of the model",
                self.cfg.max_position_embeddings
            )));
        }
        let dtype = self.info.dtype;
        let positions = Array::from_iter(0..l, &[l]);
        let h = self
            .word
            .forward(tokens)?
            .add(self.position.take_axis(&positions, 0)?)?
            .add(self.token_type.take_axis(Array::from_int(0), 0)?)?;
        let mut h = self.emb_norm.forward(&h)?;
        let neg = key_padding_mask(mask, dtype)?;
        let heads = self.cfg.num_heads;
        let hd = self.cfg.hidden_size / heads.max(1);
        let scale = (hd as f32).powf(-0.5);
        let split = |y: Array| -> Result<Array> {
            Ok(y.reshape(&[b, l, heads, hd])?
                .transpose_axes(&[0, 2, 1, 3])?)
        };
        for layer in &self.layers {
            let q = split(layer.query.forward(&h)?)?;
            let k = split(layer.key.forward(&h)?)?;
            let v = split(layer.value.forward(&h)?)?;
            let mask = ScaledDotProductAttentionMask::Array(&neg);
            let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?
                .transpose_axes(&[0, 2, 1, 3])?
                .reshape(&[b, l, heads * hd])?;
            let a = layer.attn_out.forward(&o)?;
            h = layer.attn_norm.forward(&h.add(&a)?)?;
            let m = layer.down.forward(&self.gelu(&layer.up.forward(&h)?)?)?;
            h = layer.out_norm.forward(&h.add(&m)?)?;
        }
        Ok(h)
    }
}

/// A small lookup table (positions, token types) as a dense compute-dtype matrix, dequantized
/// when a quantized GGUF stores it packed.
pub(crate) fn dense_table(w: &mut Weights, prefix: &str) -> Result<Array> {
    let dtype = w.options().compute_dtype;
    let t = w.linear(prefix)?.dense_weight()?;
    Ok(if t.dtype() == dtype {
        t
    } else {
        t.as_dtype(dtype)?
    })
}

/// Additive attention mask `[B, 1, 1, L]` from a `[B, L]` token mask: 0 for tokens, a large
/// negative for padding keys.
pub(crate) fn key_padding_mask(mask: &Array, dtype: mlx_rs::Dtype) -> Result<Array> {
    let (b, l) = (mask.dim(0), mask.dim(1));
    Ok(mask
        .as_dtype(dtype)?
        .subtract(Array::from_f32(1.0))?
        .multiply(Array::from_f32(1e9))?
        .as_dtype(dtype)?
        .reshape(&[b, 1, 1, l])?)
}

impl Encoder for Bert {
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

impl Model for Bert {
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

/// Whether the weights at `path` (a safetensors directory, a GGUF file or a `model.gguf`
/// directory) form an embedding model. Cheap: reads `config.json` or the GGUF header only.
pub fn is_embedding_dir(path: &Path) -> bool {
    crate::embedding_kind::is_embedding_model(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlx_rs::Dtype;
    use std::collections::HashMap;

    fn tiny() -> Bert {
        let d = 4;
        let f = |n: i32, shift: f32| -> Array {
            let v: Vec<f32> = (0..n)
                .map(|i| ((i as f32 * 0.37 + shift).sin()) * 0.5)
                .collect();
            Array::from_slice(&v, &[n])
        };
        let mut map = HashMap::new();
        let mut put = |k: &str, a: Array| {
            map.insert(k.to_string(), a);
        };
        put(
            "bert.embeddings.word_embeddings.weight",
            f(10 * d, 0.1).reshape(&[10, d]).unwrap(),
        );
        put(
            "bert.embeddings.position_embeddings.weight",
            f(8 * d, 0.2).reshape(&[8, d]).unwrap(),
        );
        put(
            "bert.embeddings.token_type_embeddings.weight",
            f(2 * d, 0.3).reshape(&[2, d]).unwrap(),
        );
        for n in [
            "bert.embeddings.LayerNorm",
            "bert.encoder.layer.0.attention.output.LayerNorm",
            "bert.encoder.layer.0.output.LayerNorm",
        ] {
            put(&format!("{n}.weight"), Array::ones::<f32>(&[d]).unwrap());
            put(&format!("{n}.bias"), Array::zeros::<f32>(&[d]).unwrap());
        }
        for (i, (n, o, inp)) in [
            ("attention.self.query", d, d),
            ("attention.self.key", d, d),
            ("attention.self.value", d, d),
            ("attention.output.dense", d, d),
            ("intermediate.dense", 8, d),
            ("output.dense", d, 8),
        ]
        .into_iter()
        .enumerate()
        {
            let p = format!("bert.encoder.layer.0.{n}");
            put(
                &format!("{p}.weight"),
                f(o * inp, i as f32).reshape(&[o, inp]).unwrap(),
            );
            put(&format!("{p}.bias"), f(o, 1.0 + i as f32));
        }
        let cfg = BertConfig::from_hf(&serde_json::json!({
            "hidden_size": d, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 8, "max_position_embeddings": 8, "vocab_size": 10
        }))
        .unwrap();
        let opts = crate::LoadOptions {
            compute_dtype: Dtype::Float32,
            dequantize: true,
            transpose_dense: false,
        };
        let mut w = Weights::new(map, opts, crate::WeightFormat::SafeTensors, 64);
        let pooling = PoolingConfig {
            pooling: Pooling::Mean,
            normalize: true,
        };
        Bert::new(cfg, &mut w, "BertModel", pooling).unwrap()
    }

    #[test]
    fn padding_does_not_change_a_sentence_vector() {
        let m = tiny();
        let alone = m
            .embed(
                &Array::from_slice(&[1i32, 5, 2], &[1, 3]),
                &Array::from_slice(&[1.0f32, 1.0, 1.0], &[1, 3]),
            )
            .unwrap();
        let padded = m
            .embed(
                &Array::from_slice(&[1i32, 5, 2, 0, 0, 1, 7, 8, 9, 2], &[2, 5]),
                &Array::from_slice(
                    &[1.0f32, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                    &[2, 5],
                ),
            )
            .unwrap();
        let a = alone.as_slice::<f32>().to_vec();
        let p = padded.as_slice::<f32>()[..4].to_vec();
        for (x, y) in a.iter().zip(&p) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {p:?}");
        }
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn generating_with_an_encoder_is_an_error() {
        let m = tiny();
        let r = m.forward(
            &Array::from_slice(&[1i32], &[1, 1]),
            &mut [],
            LogitsMode::Last,
        );
        assert!(r.is_err());
    }
}
