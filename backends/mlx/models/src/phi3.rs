//! The Phi-3 family (`Phi3ForCausalLM` / `phi3`): pre-norm blocks with a fused `qkv_proj`, a
//! fused `gate_up_proj` SwiGLU MLP, partial rotary embeddings and SuScaled ("longrope") RoPE.
//!
//! Request path: `ollmlx-engine` → [`crate::Model::forward`] here → `mlx-rs`. Like mlx-lm (the
//! reference), longrope always uses `long_factor` and the attention factor
//! `sqrt(1 + ln(max_pos / original_max_pos) / ln(original_max_pos))`, whatever the sequence
//! length (Hugging Face switches to `short_factor` below the original context).

use mlx_rs::ops::concatenate;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::Array;
use serde_json::Value;

use crate::cache::KvCache;
use crate::config::GgufMeta;
use crate::error::{ModelError, Result};
use crate::hostmath::Gate;
use crate::nn::{Embedding, Linear, RmsNorm, Rope, RopeScaling};
use crate::quant::{self, QuantPlan};
use crate::weights::{WeightFormat, Weights};
use crate::{LogitsMode, Model, ModelInfo};

/// How positions are encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Phi3Rope {
    /// Plain RoPE, positions divided by `factor` (1 without scaling).
    Linear {
        /// Divisor of the positions.
        factor: f32,
    },
    /// SuScaled / longrope: per-pair frequency divisors and a magnitude factor on the rotated
    /// features.
    Su {
        /// `long_factor` (one per rotated pair, or a single value for all).
        long_factor: Vec<f32>,
        /// Multiplier of the rotated features before rotation.
        mscale: f32,
    },
}

/// Phi-3 hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Phi3Config {
    /// Model width.
    pub hidden_size: i32,
    /// Transformer blocks.
    pub num_layers: i32,
    /// MLP hidden width.
    pub intermediate_size: i32,
    /// Query heads.
    pub num_heads: i32,
    /// Key/value heads.
    pub num_kv_heads: i32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Adjacent-pair rotation.
    pub rope_traditional: bool,
    /// Rotated features per head.
    pub rope_dims: i32,
    /// Scaling variant.
    pub rope: Phi3Rope,
    /// Trained context length.
    pub context_length: i32,
    /// Output head shares the embedding table.
    pub tie_word_embeddings: bool,
}

fn su_mscale(max_pos: f64, original: f64) -> f32 {
    let factor = max_pos / original;
    if factor <= 1.0 {
        1.0
    } else {
        (1.0 + factor.ln() / original.ln()).sqrt() as f32
    }
}

fn floats(v: &Value) -> Option<Vec<f32>> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect(),
        Value::Number(n) => n.as_f64().map(|f| vec![f as f32]),
        _ => None,
    }
}

impl Phi3Config {
    /// Features per head (`hidden / heads`, as mlx-lm computes it).
    pub fn head_dim(&self) -> i32 {
        self.hidden_size / self.num_heads.max(1)
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
        let head_dim = hidden / heads.max(1);
        let prf = cfg["partial_rotary_factor"].as_f64().unwrap_or(1.0);
        let max_pos = cfg["max_position_embeddings"].as_i64().unwrap_or(131072);
        let orig = cfg["original_max_position_embeddings"]
            .as_i64()
            .unwrap_or(4096);
        let rs = &cfg["rope_scaling"];
        let kind = rs["type"].as_str().or(rs["rope_type"].as_str());
        let rope = match kind {
            Some("longrope") | Some("su") => Phi3Rope::Su {
                long_factor: floats(&rs["long_factor"])
                    .ok_or_else(|| ModelError::MissingConfig("rope_scaling.long_factor".into()))?,
                mscale: su_mscale(max_pos as f64, orig as f64),
            },
            Some("linear") => Phi3Rope::Linear {
                factor: rs["factor"].as_f64().unwrap_or(1.0) as f32,
            },
            _ => Phi3Rope::Linear { factor: 1.0 },
        };
        Ok(Phi3Config {
            hidden_size: hidden,
            num_layers: int("num_hidden_layers")?,
            intermediate_size: int("intermediate_size")?,
            num_heads: heads,
            num_kv_heads: cfg["num_key_value_heads"]
                .as_i64()
                .map_or(heads, |v| v as i32),
            rms_norm_eps: cfg["rms_norm_eps"]
                .as_f64()
                .ok_or_else(|| ModelError::MissingConfig("rms_norm_eps".into()))?
                as f32,
            vocab_size: int("vocab_size")?,
            rope_theta: cfg["rope_theta"].as_f64().unwrap_or(10000.0) as f32,
            rope_traditional: cfg["rope_traditional"].as_bool().unwrap_or(false),
            rope_dims: (head_dim as f64 * prf) as i32,
            rope,
            context_length: max_pos as i32,
            tie_word_embeddings: cfg["tie_word_embeddings"].as_bool().unwrap_or(false),
        })
    }

    /// Read `phi3.*` GGUF metadata; `long_factor` comes from the `rope_factors_long` tensor.
    pub fn from_gguf(meta: &GgufMeta<'_>, long_factor: Option<Vec<f32>>) -> Result<Self> {
        let num = |k: &str| meta.number(&format!("phi3.{k}"));
        let req = |k: &str| -> Result<f64> {
            num(k)?.ok_or_else(|| ModelError::MissingConfig(format!("phi3.{k}")))
        };
        let hidden = req("embedding_length")? as i32;
        let heads = req("attention.head_count")? as i32;
        let head_dim = hidden / heads.max(1);
        let ctx = num("context_length")?.unwrap_or(4096.0);
        let orig = num("rope.scaling.original_context_length")?.unwrap_or(ctx);
        let vocab = match num("vocab_size")? {
            Some(v) => v as i32,
            None => meta
                .strings("tokenizer.ggml.tokens")?
                .map_or(0, |t| t.len() as i32),
        };
        let rope = match long_factor {
            Some(long_factor) => Phi3Rope::Su {
                long_factor,
                mscale: match num("rope.scaling.attn_factor")? {
                    Some(a) => a as f32,
                    None => su_mscale(ctx, orig),
                },
            },
            None => Phi3Rope::Linear { factor: 1.0 },
        };
        Ok(Phi3Config {
            hidden_size: hidden,
            num_layers: req("block_count")? as i32,
            intermediate_size: req("feed_forward_length")? as i32,
            num_heads: heads,
            num_kv_heads: num("attention.head_count_kv")?.map_or(heads, |v| v as i32),
            rms_norm_eps: num("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5) as f32,
            vocab_size: vocab,
            rope_theta: num("rope.freq_base")?.unwrap_or(10000.0) as f32,
            rope_traditional: false,
            rope_dims: num("rope.dimension_count")?.map_or(head_dim, |v| v as i32),
            rope,
            context_length: ctx as i32,
            tie_word_embeddings: false,
        })
    }
}

struct Block {
    input_norm: RmsNorm,
    qkv_proj: Linear,
    o_proj: Linear,
    post_norm: RmsNorm,
    gate_up_proj: Linear,
    down_proj: Linear,
}

/// A Phi-3 decoder.
pub struct Phi3 {
    cfg: Phi3Config,
    info: ModelInfo,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
    rope: Rope,
    mscale: Option<Array>,
}

impl Phi3 {
    /// Assemble the model from Hugging Face (or llama.cpp, mapped) tensor names.
    pub fn new(
        cfg: Phi3Config,
        w: &mut Weights,
        architecture: &str,
        plan: &QuantPlan,
    ) -> Result<Self> {
        let gguf = w.format == WeightFormat::Gguf;
        let dtype = w.options().compute_dtype;
        let lin = |w: &mut Weights, name: &str| quant::linear(w, name, name, plan);
        let embed = Embedding {
            table: quant::linear_as(w, "model.embed_tokens", "model.embed_tokens", plan, false)?,
        };
        let mut blocks = Vec::with_capacity(cfg.num_layers as usize);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            // llama.cpp keeps both fusions: `attn_qkv` (unmapped name) and a fused `ffn_up`.
            let (qkv, gate_up) = if gguf {
                (format!("blk.{i}.attn_qkv"), format!("{p}.mlp.up_proj"))
            } else {
                (
                    format!("{p}.self_attn.qkv_proj"),
                    format!("{p}.mlp.gate_up_proj"),
                )
            };
            blocks.push(Block {
                input_norm: w.rms_norm(&format!("{p}.input_layernorm"), cfg.rms_norm_eps)?,
                qkv_proj: lin(w, &qkv)?,
                o_proj: lin(w, &format!("{p}.self_attn.o_proj"))?,
                post_norm: w
                    .rms_norm(&format!("{p}.post_attention_layernorm"), cfg.rms_norm_eps)?,
                gate_up_proj: lin(w, &gate_up)?,
                down_proj: lin(w, &format!("{p}.mlp.down_proj"))?,
            });
        }
        let norm = w.rms_norm("model.norm", cfg.rms_norm_eps)?;
        let lm_head = if w.contains("lm_head.weight") && !cfg.tie_word_embeddings {
            Some(lin(w, "lm_head")?)
        } else {
            None
        };
        let embed = w.tied_head_layout(embed, lm_head.as_ref())?;
        let (rope, mscale) = match &cfg.rope {
            Phi3Rope::Linear { factor } => {
                let scaling = if *factor == 1.0 {
                    RopeScaling::None
                } else {
                    RopeScaling::Linear { factor: *factor }
                };
                (
                    Rope::new(
                        cfg.rope_dims,
                        cfg.rope_traditional,
                        cfg.rope_theta,
                        &scaling,
                    ),
                    None,
                )
            }
            Phi3Rope::Su {
                long_factor,
                mscale,
            } => {
                let pairs = (cfg.rope_dims / 2) as usize;
                let f = if long_factor.len() == 1 {
                    vec![long_factor[0]; pairs]
                } else if long_factor.len() == pairs {
                    long_factor.clone()
                } else {
                    return Err(ModelError::Invalid(format!(
                        "rope_scaling.long_factor has {} values for {pairs} rotated pairs",
                        long_factor.len()
                    )));
                };
                let m = (*mscale != 1.0)
                    .then(|| Array::from_f32(*mscale).as_dtype(dtype))
                    .transpose()?;
                (
                    Rope::new(
                        cfg.rope_dims,
                        false,
                        cfg.rope_theta,
                        &RopeScaling::Factors(f),
                    ),
                    m,
                )
            }
        };
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            num_layers: cfg.num_layers,
            dtype,
        };
        let model = Phi3 {
            cfg,
            info,
            embed,
            blocks,
            norm,
            lm_head,
            rope,
            mscale,
        };
        model.eval_weights()?;
        Ok(model)
    }

    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.embed.table.arrays();
        for b in &self.blocks {
            all.push(&b.input_norm.weight);
            all.push(&b.post_norm.weight);
            for l in [&b.qkv_proj, &b.o_proj, &b.gate_up_proj, &b.down_proj] {
                all.extend(l.arrays());
            }
        }
        all.push(&self.norm.weight);
        if let Some(h) = &self.lm_head {
            all.extend(h.arrays());
        }
        mlx_rs::transforms::eval(all)?;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &Phi3Config {
        &self.cfg
    }

    /// Multiply the rotated features by the longrope attention factor, then rotate.
    fn position(&self, x: &Array, pos: &crate::nn::StepPositions) -> Result<Array> {
        let x = match &self.mscale {
            None => x.clone(),
            Some(s) => {
                let d = self.cfg.rope_dims;
                if d >= x.dim(-1) {
                    x.multiply(s)?
                } else {
                    let rot = x.try_index((.., .., .., ..d))?.multiply(s)?;
                    concatenate(&[rot, x.try_index((.., .., .., d..))?], -1)?
                }
            }
        };
        pos.rope(&self.rope, &x)
    }

    fn attention(&self, b: &Block, x: &Array, cache: &mut KvCache) -> Result<Array> {
        let (bsz, l) = (x.dim(0), x.dim(1));
        let hd = self.cfg.head_dim();
        let (nh, nkv) = (self.cfg.num_heads, self.cfg.num_kv_heads);
        let qkv = b.qkv_proj.forward(x)?;
        let parts = qkv.split_at_indices(&[nh * hd, (nh + nkv) * hd], -1)?;
        let [q, k, v]: [Array; 3] = parts
            .try_into()
            .map_err(|_| ModelError::Invalid("qkv split".into()))?;
        let heads = |y: Array, n: i32| -> Result<Array> {
            Ok(y.reshape(&[bsz, l, n, hd])?.transpose_axes(&[0, 2, 1, 3])?)
        };
        let pos = crate::nn::StepPositions::of(cache, l);
        let q = self.position(&heads(q, nh)?, &pos)?;
        let k = self.position(&heads(k, nkv)?, &pos)?;
        let (k, v) = cache.update(&k, &heads(v, nkv)?)?;
        let scale = (hd as f32).powf(-0.5);
        let o = crate::sdpa::attention(&q, &k, &v, scale, pos.mask(l))?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[bsz, l, nh * hd])?;
        b.o_proj.forward(&o)
    }
}

impl Model for Phi3 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn new_caches(&self) -> Vec<KvCache> {
        crate::decoder::layer_caches(self.blocks.len())
    }

    fn supports_batch(&self) -> bool {
        true // attention positions and masks come from `nn::StepPositions`
    }

    fn forward(&self, tokens: &Array, caches: &mut [KvCache], mode: LogitsMode) -> Result<Array> {
        crate::decoder::check_caches(caches, self.blocks.len())?;
        let mut h = self.embed.forward(tokens)?;
        for (b, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            let a = self.attention(b, &b.input_norm.forward(&h)?, cache)?;
            h = h.add(&a)?;
            let gu = b.gate_up_proj.forward(&b.post_norm.forward(&h)?)?;
            let half = gu.dim(-1) / 2;
            let gated = crate::hostmath::gated_product(&gu, half, Gate::Silu)?;
            h = h.add(b.down_proj.forward(&gated)?)?;
        }
        crate::decoder::logits(h, mode, &self.norm, self.lm_head.as_ref(), &self.embed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longrope_config_uses_long_factor_and_the_attention_factor() {
        let c = Phi3Config::from_hf(&serde_json::json!({
            "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "vocab_size": 100, "partial_rotary_factor": 0.5,
            "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
            "rope_scaling": {"type": "longrope", "long_factor": [1.0, 2.0, 3.0, 4.0],
                             "short_factor": [1.0, 1.0, 1.0, 1.0]}
        }))
        .unwrap();
        assert_eq!((c.head_dim(), c.rope_dims), (16, 8));
        match c.rope {
            Phi3Rope::Su {
                long_factor,
                mscale,
            } => {
                assert_eq!(long_factor, vec![1.0, 2.0, 3.0, 4.0]);
                let want = (1.0 + 32f64.ln() / 4096f64.ln()).sqrt() as f32;
                assert!((mscale - want).abs() < 1e-6);
            }
            other => panic!("expected longrope, got {other:?}"),
        }
    }

    #[test]
    fn without_scaling_rope_is_plain() {
        let c = Phi3Config::from_hf(&serde_json::json!({
            "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
            "num_attention_heads": 4, "rms_norm_eps": 1e-5, "vocab_size": 10
        }))
        .unwrap();
        assert_eq!(c.rope, Phi3Rope::Linear { factor: 1.0 });
        assert_eq!(c.num_kv_heads, 4);
    }
}
