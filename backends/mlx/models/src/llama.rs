//! The llama family (Llama 1/2/3.x, SmolLM/SmolLM2, Mistral-style dense models, Qwen2, Qwen3):
//! pre-norm blocks of grouped-query attention with RoPE and a SwiGLU MLP.
//!
//! Sits under [`crate::load`]: the registry maps every dense llama-like architecture here, and
//! the differences are options read from the config: q/k/v biases (Qwen2) are picked up from the
//! weights (`*.bias`), per-head q/k RMSNorm before RoPE (Qwen3) from [`LlamaConfig::qk_norm`],
//! an untied `lm_head` (Mistral, some Llamas) when the file has one and the config does not tie.

use mlx_rs::Array;

use crate::cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::nn::{Attention, Embedding, Linear, Mlp, Projections, RmsNorm, Rope, RopeScaling};
use crate::weights::{WeightFormat, Weights};
use crate::{LogitsMode, Model, ModelInfo};

struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

/// A llama-family decoder.
pub struct Llama {
    cfg: LlamaConfig,
    info: ModelInfo,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
}

impl Llama {
    /// Assemble the model from weights named the Hugging Face way.
    pub fn new(mut cfg: LlamaConfig, w: &mut Weights, architecture: &str) -> Result<Self> {
        if w.format == WeightFormat::Gguf && w.contains("rope_freqs.weight") {
            let f = w
                .take_raw("rope_freqs.weight")?
                .as_dtype(mlx_rs::Dtype::Float32)?;
            cfg.rope_scaling = RopeScaling::Factors(f.as_slice::<f32>().to_vec());
        }
        let embed = w.embedding("model.embed_tokens")?;
        let mut blocks = Vec::with_capacity(cfg.num_layers as usize);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            blocks.push(Block {
                input_norm: w.rms_norm(&format!("{p}.input_layernorm"), cfg.rms_norm_eps)?,
                attn: Attention {
                    qkv: Projections::new(vec![
                        w.linear(&format!("{p}.self_attn.q_proj"))?,
                        w.linear(&format!("{p}.self_attn.k_proj"))?,
                        w.linear(&format!("{p}.self_attn.v_proj"))?,
                    ])?,
                    o_proj: w.linear(&format!("{p}.self_attn.o_proj"))?,
                    n_heads: cfg.num_heads,
                    n_kv_heads: cfg.num_kv_heads,
                    head_dim: cfg.head_dim,
                    rope: Rope::new(
                        cfg.rope_dims,
                        cfg.rope_traditional,
                        cfg.rope_theta,
                        &cfg.rope_scaling,
                    ),
                    qk_norm: if cfg.qk_norm {
                        Some((
                            w.rms_norm(&format!("{p}.self_attn.q_norm"), cfg.rms_norm_eps)?,
                            w.rms_norm(&format!("{p}.self_attn.k_norm"), cfg.rms_norm_eps)?,
                        ))
                    } else {
                        None
                    },
                },
                post_norm: w
                    .rms_norm(&format!("{p}.post_attention_layernorm"), cfg.rms_norm_eps)?,
                mlp: Mlp::new(
                    w.linear(&format!("{p}.mlp.gate_proj"))?,
                    w.linear(&format!("{p}.mlp.up_proj"))?,
                    w.linear(&format!("{p}.mlp.down_proj"))?,
                )?,
            });
        }
        let norm = w.rms_norm("model.norm", cfg.rms_norm_eps)?;
        let lm_head = if w.contains("lm_head.weight") && !cfg.tie_word_embeddings {
            Some(w.linear("lm_head")?)
        } else {
            None
        };
        let embed = w.tied_head_layout(embed, lm_head.as_ref())?;
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            num_layers: cfg.num_layers,
            dtype: w.options().compute_dtype,
        };
        let model = Llama {
            cfg,
            info,
            embed,
            blocks,
            norm,
            lm_head,
        };
        model.eval_weights()?;
        Ok(model)
    }

    /// Materialise every weight now (dequantization and casts happen at load, not first use).
    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.embed.table.arrays();
        for b in &self.blocks {
            all.push(&b.input_norm.weight);
            all.push(&b.post_norm.weight);
            if let Some((qn, kn)) = &b.attn.qk_norm {
                all.extend([&qn.weight, &kn.weight]);
            }
            all.extend(b.attn.qkv.arrays());
            all.extend(b.attn.o_proj.arrays());
            all.extend(b.mlp.arrays());
        }
        all.push(&self.norm.weight);
        if let Some(h) = &self.lm_head {
            all.extend(h.arrays());
        }
        mlx_rs::transforms::eval(all)?;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }
}

impl Model for Llama {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn new_caches(&self) -> Vec<KvCache> {
        crate::decoder::layer_caches(self.blocks.len())
    }

    fn supports_batch(&self) -> bool {
        true // attention is `nn::Attention`, which honours padded batches
    }

    fn forward(&self, tokens: &Array, caches: &mut [KvCache], mode: LogitsMode) -> Result<Array> {
        crate::decoder::check_caches(caches, self.blocks.len())?;
        let mut h = self.embed.forward(tokens)?;
        for (b, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            let a = b.attn.forward(&b.input_norm.forward(&h)?, cache)?;
            h = h.add(&a)?;
            let m = b.mlp.forward(&b.post_norm.forward(&h)?)?;
            h = h.add(&m)?;
        }
        crate::decoder::logits(h, mode, &self.norm, self.lm_head.as_ref(), &self.embed)
    }
}
