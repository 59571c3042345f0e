//! The Qwen3 mixture-of-experts family (`Qwen3MoeForCausalLM` / `qwen3_moe`, GGUF `qwen3moe`):
//! Qwen3 attention (q/k RMSNorm per head, RoPE) and, on sparse layers, a routed SwitchGLU
//! ([`crate::moe::SparseMoe`]) instead of the dense SwiGLU MLP.
//!
//! Request path: `ollmlx-engine` → [`crate::Model::forward`] here → `mlx-rs`. Sparse layers are
//! those not in `mlp_only_layers` whose `(index + 1)` is a multiple of `decoder_sparse_step`.

use mlx_rs::Array;
use serde_json::Value;

use crate::cache::KvCache;
use crate::config::GgufMeta;
use crate::error::{ModelError, Result};
use crate::moe::{SparseMoe, SwitchGlu};
use crate::nn::{Embedding, Linear, Mlp, Projections, RmsNorm, Rope, RopeScaling};
use crate::quant::{self, QuantPlan, SwitchWeights};
use crate::weights::{WeightFormat, Weights};
use crate::{LogitsMode, Model, ModelInfo};

/// Qwen3-MoE hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen3MoeConfig {
    /// Model width.
    pub hidden_size: i32,
    /// Transformer blocks.
    pub num_layers: i32,
    /// Hidden width of dense MLP layers.
    pub intermediate_size: i32,
    /// Hidden width of each expert.
    pub moe_intermediate_size: i32,
    /// Query heads.
    pub num_heads: i32,
    /// Key/value heads.
    pub num_kv_heads: i32,
    /// Features per head.
    pub head_dim: i32,
    /// Experts per sparse layer.
    pub num_experts: i32,
    /// Experts each token is routed to.
    pub num_experts_per_tok: i32,
    /// Every `decoder_sparse_step`-th layer is sparse.
    pub decoder_sparse_step: i32,
    /// Layers forced dense.
    pub mlp_only_layers: Vec<i32>,
    /// Renormalise the top-k routing probabilities.
    pub norm_topk_prob: bool,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base (mlx-lm applies no RoPE scaling for this family).
    pub rope_theta: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// Trained context length.
    pub context_length: i32,
    /// Output head shares the embedding table.
    pub tie_word_embeddings: bool,
}

impl Qwen3MoeConfig {
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
        Ok(Qwen3MoeConfig {
            hidden_size: hidden,
            num_layers: int("num_hidden_layers")?,
            intermediate_size: int("intermediate_size")?,
            moe_intermediate_size: int("moe_intermediate_size")?,
            num_heads: heads,
            num_kv_heads: cfg["num_key_value_heads"]
                .as_i64()
                .map_or(heads, |v| v as i32),
            head_dim: cfg["head_dim"]
                .as_i64()
                .map_or(hidden / heads.max(1), |v| v as i32),
            num_experts: int("num_experts")?,
            num_experts_per_tok: int("num_experts_per_tok")?,
            decoder_sparse_step: cfg["decoder_sparse_step"].as_i64().unwrap_or(1) as i32,
            mlp_only_layers: cfg["mlp_only_layers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_i64())
                        .map(|v| v as i32)
                        .collect()
                })
                .unwrap_or_default(),
            norm_topk_prob: cfg["norm_topk_prob"].as_bool().unwrap_or(false),
            rms_norm_eps: cfg["rms_norm_eps"].as_f64().unwrap_or(1e-6) as f32,
            rope_theta: cfg["rope_theta"].as_f64().unwrap_or(1_000_000.0) as f32,
            vocab_size: int("vocab_size")?,
            context_length: cfg["max_position_embeddings"]
                .as_i64()
                .map_or(32768, |v| v as i32),
            tie_word_embeddings: cfg["tie_word_embeddings"].as_bool().unwrap_or(false),
        })
    }

    /// Read `qwen3moe.*` GGUF metadata (every layer sparse, top-k renormalised, as llama.cpp
    /// runs it).
    pub fn from_gguf(meta: &GgufMeta<'_>, has_output: bool) -> Result<Self> {
        let num = |k: &str| meta.number(&format!("qwen3moe.{k}"));
        let req = |k: &str| -> Result<f64> {
            num(k)?.ok_or_else(|| ModelError::MissingConfig(format!("qwen3moe.{k}")))
        };
        let hidden = req("embedding_length")? as i32;
        let heads = req("attention.head_count")? as i32;
        let vocab = match num("vocab_size")? {
            Some(v) => v as i32,
            None => meta
                .strings("tokenizer.ggml.tokens")?
                .map_or(0, |t| t.len() as i32),
        };
        let moe_ff = req("expert_feed_forward_length")? as i32;
        Ok(Qwen3MoeConfig {
            hidden_size: hidden,
            num_layers: req("block_count")? as i32,
            intermediate_size: num("feed_forward_length")?.map_or(moe_ff, |v| v as i32),
            moe_intermediate_size: moe_ff,
            num_heads: heads,
            num_kv_heads: num("attention.head_count_kv")?.map_or(heads, |v| v as i32),
            head_dim: num("attention.key_length")?.map_or(hidden / heads.max(1), |v| v as i32),
            num_experts: req("expert_count")? as i32,
            num_experts_per_tok: req("expert_used_count")? as i32,
            decoder_sparse_step: 1,
            mlp_only_layers: Vec::new(),
            norm_topk_prob: true,
            rms_norm_eps: num("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6) as f32,
            rope_theta: num("rope.freq_base")?.unwrap_or(1_000_000.0) as f32,
            vocab_size: vocab,
            context_length: num("context_length")?.map_or(32768, |v| v as i32),
            tie_word_embeddings: !has_output,
        })
    }

    /// Whether layer `i` uses the routed experts.
    pub fn is_sparse(&self, i: i32) -> bool {
        !self.mlp_only_layers.contains(&i)
            && self.num_experts > 0
            && (i + 1) % self.decoder_sparse_step.max(1) == 0
    }
}

enum Ffn {
    Dense(Mlp),
    Sparse(SparseMoe),
}

struct Block {
    input_norm: RmsNorm,
    /// q, k, v (fused on the CPU layout).
    qkv: Projections,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_norm: RmsNorm,
    ffn: Ffn,
}

/// A Qwen3-MoE decoder.
pub struct Qwen3Moe {
    cfg: Qwen3MoeConfig,
    info: ModelInfo,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
    rope: Rope,
}

/// Stack per-expert Hugging Face tensors (`mlp.experts.{e}.{name}.weight`) into one
/// `[E, out, in]` tensor, as mlx-lm's `sanitize` does.
fn stack_experts(w: &mut Weights, p: &str, name: &str, experts: i32) -> Result<SwitchWeights> {
    let mut parts = Vec::with_capacity(experts as usize);
    for e in 0..experts {
        let t = w.take_raw(&format!("{p}.mlp.experts.{e}.{name}.weight"))?;
        parts.push(t);
    }
    quant::dense_experts(w, mlx_rs::ops::stack(&parts, 0)?)
}

impl Qwen3Moe {
    /// Assemble the model.
    pub fn new(
        cfg: Qwen3MoeConfig,
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
            let ffn = if cfg.is_sparse(i) {
                let (router, sw) = if gguf {
                    (format!("blk.{i}.ffn_gate_inp"), format!("blk.{i}.ffn_"))
                } else {
                    (format!("{p}.mlp.gate"), format!("{p}.mlp.switch_mlp."))
                };
                let sw_name = |n: &str| {
                    if gguf {
                        format!("{sw}{}_exps", n.trim_end_matches("_proj"))
                    } else {
                        format!("{sw}{n}")
                    }
                };
                let unstacked = !gguf && w.contains(&format!("{p}.mlp.experts.0.up_proj.weight"));
                let load = |w: &mut Weights, n: &str| -> Result<SwitchWeights> {
                    if unstacked {
                        stack_experts(w, &p, n, cfg.num_experts)
                    } else {
                        let name = sw_name(n);
                        quant::switch_weights(w, &name, &name, plan)
                    }
                };
                let experts = SwitchGlu {
                    gate_proj: load(w, "gate_proj")?,
                    up_proj: load(w, "up_proj")?,
                    down_proj: load(w, "down_proj")?,
                };
                if experts.gate_proj.num_experts() != cfg.num_experts {
                    return Err(ModelError::Invalid(format!(
                        "layer {i}: {} stacked experts, config says {}",
                        experts.gate_proj.num_experts(),
                        cfg.num_experts
                    )));
                }
                Ffn::Sparse(SparseMoe {
                    gate: lin(w, &router)?,
                    experts,
                    top_k: cfg.num_experts_per_tok,
                    norm_topk_prob: cfg.norm_topk_prob,
                })
            } else {
                Ffn::Dense(Mlp::new(
                    lin(w, &format!("{p}.mlp.gate_proj"))?,
                    lin(w, &format!("{p}.mlp.up_proj"))?,
                    lin(w, &format!("{p}.mlp.down_proj"))?,
                )?)
            };
            let eps = cfg.rms_norm_eps;
            blocks.push(Block {
                input_norm: w.rms_norm(&format!("{p}.input_layernorm"), eps)?,
                qkv: Projections::new(vec![
                    lin(w, &format!("{p}.self_attn.q_proj"))?,
                    lin(w, &format!("{p}.self_attn.k_proj"))?,
                    lin(w, &format!("{p}.self_attn.v_proj"))?,
                ])?,
                o_proj: lin(w, &format!("{p}.self_attn.o_proj"))?,
                q_norm: w.rms_norm(&format!("{p}.self_attn.q_norm"), eps)?,
                k_norm: w.rms_norm(&format!("{p}.self_attn.k_norm"), eps)?,
                post_norm: w.rms_norm(&format!("{p}.post_attention_layernorm"), eps)?,
                ffn,
            });
        }
        let norm = w.rms_norm("model.norm", cfg.rms_norm_eps)?;
        let lm_head = if w.contains("lm_head.weight") && !cfg.tie_word_embeddings {
            Some(lin(w, "lm_head")?)
        } else {
            None
        };
        let embed = w.tied_head_layout(embed, lm_head.as_ref())?;
        let rope = Rope::new(cfg.head_dim, false, cfg.rope_theta, &RopeScaling::None);
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            num_layers: cfg.num_layers,
            dtype,
        };
        let model = Qwen3Moe {
            cfg,
            info,
            embed,
            blocks,
            norm,
            lm_head,
            rope,
        };
        model.eval_weights()?;
        Ok(model)
    }

    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.embed.table.arrays();
        for b in &self.blocks {
            for n in [&b.input_norm, &b.q_norm, &b.k_norm, &b.post_norm] {
                all.push(&n.weight);
            }
            all.extend(b.qkv.arrays());
            all.extend(b.o_proj.arrays());
            match &b.ffn {
                Ffn::Dense(m) => all.extend(m.arrays()),
                Ffn::Sparse(s) => all.extend(s.arrays()),
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
    pub fn config(&self) -> &Qwen3MoeConfig {
        &self.cfg
    }

    fn attention(&self, b: &Block, x: &Array, cache: &mut KvCache) -> Result<Array> {
        let (bsz, l) = (x.dim(0), x.dim(1));
        let hd = self.cfg.head_dim;
        let (nh, nkv) = (self.cfg.num_heads, self.cfg.num_kv_heads);
        let heads = |y: Array, n: i32| -> Result<Array> {
            Ok(y.reshape(&[bsz, l, n, hd])?.transpose_axes(&[0, 2, 1, 3])?)
        };
        let [q, k, v] = b.qkv.forward_n(x)?;
        let q = b.q_norm.forward(&heads(q, nh)?)?;
        let k = b.k_norm.forward(&heads(k, nkv)?)?;
        let v = heads(v, nkv)?;
        let pos = crate::nn::StepPositions::of(cache, l);
        let q = pos.rope(&self.rope, &q)?;
        let k = pos.rope(&self.rope, &k)?;
        let (k, v) = cache.update(&k, &v)?;
        let scale = (hd as f32).powf(-0.5);
        let o = crate::sdpa::attention(&q, &k, &v, scale, pos.mask(l))?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[bsz, l, nh * hd])?;
        b.o_proj.forward(&o)
    }
}

impl Model for Qwen3Moe {
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
            let x = b.post_norm.forward(&h)?;
            let m = match &b.ffn {
                Ffn::Dense(mlp) => mlp.forward(&x)?,
                Ffn::Sparse(moe) => moe.forward(&x)?,
            };
            h = h.add(&m)?;
        }
        crate::decoder::logits(h, mode, &self.norm, self.lm_head.as_ref(), &self.embed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_layers_follow_step_and_mlp_only_layers() {
        let c = Qwen3MoeConfig::from_hf(&serde_json::json!({
            "hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 128,
            "moe_intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
            "decoder_sparse_step": 2, "mlp_only_layers": [3], "norm_topk_prob": true,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": 100,
            "tie_word_embeddings": false, "max_position_embeddings": 512
        }))
        .unwrap();
        let sparse: Vec<i32> = (0..4).filter(|&i| c.is_sparse(i)).collect();
        assert_eq!(sparse, vec![1]);
        assert!(c.norm_topk_prob);
    }
}
