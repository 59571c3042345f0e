//! The Gemma 3 text decoder (`Gemma3ForCausalLM` / `gemma3_text`, and the language half of
//! `gemma3` multimodal checkpoints): scaled embeddings, (1+w) RMSNorms, q/k norms, four norms per
//! block, a GELU-tanh gated MLP, and interleaved sliding-window (local RoPE base) and global
//! (scaled RoPE) attention layers.
//!
//! Request path: `ollmlx-engine` → [`crate::Model::forward`] here → `mlx-rs`. Local layers keep
//! the full history in their [`KvCache`] (so prompt-prefix truncation keeps working) but attend
//! only to the last `sliding_window` positions, which is what mlx-lm's `RotatingKVCache` yields.

use mlx_rs::fast::ScaledDotProductAttentionMask;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::{Array, Dtype};
use serde_json::Value;

use crate::cache::KvCache;
use crate::config::GgufMeta;
use crate::error::{ModelError, Result};
use crate::hostmath::Gate;
use crate::nn::{Embedding, Linear, Projections, RmsNorm, Rope, RopeScaling, StepPositions};
use crate::quant::{self, QuantPlan};
use crate::weights::{WeightFormat, Weights};
use crate::{LogitsMode, Model, ModelInfo};

/// Gemma 3 hyper-parameters (defaults are mlx-lm's `gemma3_text.ModelArgs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3Config {
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
    /// Features per head.
    pub head_dim: i32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Vocabulary size.
    pub vocab_size: i32,
    /// RoPE base of global layers.
    pub rope_theta: f32,
    /// RoPE base of sliding-window layers.
    pub rope_local_base_freq: f32,
    /// Attention scale is `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: f32,
    /// Positions a local layer attends to (including the current one).
    pub sliding_window: i32,
    /// Every `pattern`-th layer is global.
    pub sliding_window_pattern: i32,
    /// Trained context length.
    pub context_length: i32,
    /// RoPE scaling of global layers.
    pub rope_scaling: RopeScaling,
    /// `tanh(x / c) * c` on the logits when set.
    pub final_logit_softcapping: Option<f32>,
    /// Explicit per-layer choice (GGUF `attention.sliding_window_pattern` as a bool array);
    /// overrides `sliding_window_pattern`.
    pub layer_sliding: Option<Vec<bool>>,
}

/// Parse a Hugging Face `rope_scaling` object (default, linear, llama3).
pub(crate) fn rope_scaling_from_hf(rs: &Value) -> Result<RopeScaling> {
    if rs.is_null() {
        return Ok(RopeScaling::None);
    }
    let kind = rs["type"]
        .as_str()
        .or(rs["rope_type"].as_str())
        .unwrap_or("default");
    let f = |key: &str, d: f64| rs[key].as_f64().unwrap_or(d) as f32;
    Ok(match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: f("factor", 1.0),
        },
        "llama3" => RopeScaling::Llama3 {
            factor: f("factor", 1.0),
            low_freq_factor: f("low_freq_factor", 1.0),
            high_freq_factor: f("high_freq_factor", 4.0),
            original_max_position_embeddings: f("original_max_position_embeddings", 8192.0),
        },
        other => {
            return Err(ModelError::MissingConfig(format!(
                "rope_scaling type {other:?} (supported: default, linear, llama3)"
            )))
        }
    })
}

impl Gemma3Config {
    /// Read a `gemma3_text` config, or the `text_config` of a `gemma3` wrapper.
    pub fn from_hf(cfg: &Value) -> Result<Self> {
        let wrapped = cfg["text_config"].is_object();
        let t = if wrapped { &cfg["text_config"] } else { cfg };
        let int = |key: &str, d: i64| t[key].as_i64().unwrap_or(d) as i32;
        let float = |key: &str, d: f64| t[key].as_f64().unwrap_or(d) as f32;
        let hidden = t["hidden_size"]
            .as_i64()
            .ok_or_else(|| ModelError::MissingConfig("hidden_size".into()))?
            as i32;
        let (heads_d, kv_d) = if wrapped { (8, 4) } else { (4, 1) };
        let vocab = if wrapped {
            cfg["vocab_size"].as_i64().unwrap_or(262208) as i32
        } else {
            int("vocab_size", 262144)
        };
        Ok(Gemma3Config {
            hidden_size: hidden,
            num_layers: int("num_hidden_layers", 26),
            intermediate_size: int("intermediate_size", 6912),
            num_heads: int("num_attention_heads", heads_d),
            num_kv_heads: int("num_key_value_heads", kv_d),
            head_dim: int("head_dim", 256),
            rms_norm_eps: float("rms_norm_eps", 1e-6),
            vocab_size: vocab,
            rope_theta: float("rope_theta", 1_000_000.0),
            rope_local_base_freq: float("rope_local_base_freq", 10_000.0),
            query_pre_attn_scalar: float("query_pre_attn_scalar", 256.0),
            sliding_window: int("sliding_window", 512),
            sliding_window_pattern: int("sliding_window_pattern", 6),
            context_length: int("max_position_embeddings", 32768),
            rope_scaling: rope_scaling_from_hf(&t["rope_scaling"])?,
            final_logit_softcapping: t["final_logit_softcapping"].as_f64().map(|v| v as f32),
            layer_sliding: None,
        })
    }

    /// Read `gemma3.*` GGUF metadata (llama.cpp fixes the local base at 10000 and scales
    /// queries by `head_dim^-0.5`).
    pub fn from_gguf(meta: &GgufMeta<'_>) -> Result<Self> {
        let num = |k: &str| meta.number(&format!("gemma3.{k}"));
        let req = |k: &str| -> Result<f64> {
            num(k)?.ok_or_else(|| ModelError::MissingConfig(format!("gemma3.{k}")))
        };
        let hidden = req("embedding_length")? as i32;
        let heads = req("attention.head_count")? as i32;
        let head_dim = num("attention.key_length")?.map_or(hidden / heads.max(1), |v| v as i32);
        let vocab = match num("vocab_size")? {
            Some(v) => v as i32,
            None => meta
                .strings("tokenizer.ggml.tokens")?
                .map_or(0, |t| t.len() as i32),
        };
        let scaling = match meta.string("gemma3.rope.scaling.type")?.as_deref() {
            Some("linear") => RopeScaling::Linear {
                factor: num("rope.scaling.factor")?.unwrap_or(1.0) as f32,
            },
            _ => RopeScaling::None,
        };
        // llama.cpp fixes the pattern at 6 for Gemma 3 unless the file says otherwise (a period,
        // or one bool per layer, true = sliding).
        let pattern_key = "gemma3.attention.sliding_window_pattern";
        let (pattern, layer_sliding) = match meta.number(pattern_key)? {
            Some(p) => (p as i32, None),
            None => match meta.ints(pattern_key)? {
                Some(v) if !v.is_empty() => (6, Some(v.iter().map(|&b| b != 0).collect())),
                _ => (6, None),
            },
        };
        Ok(Gemma3Config {
            hidden_size: hidden,
            num_layers: req("block_count")? as i32,
            intermediate_size: req("feed_forward_length")? as i32,
            num_heads: heads,
            num_kv_heads: num("attention.head_count_kv")?.map_or(heads, |v| v as i32),
            head_dim,
            rms_norm_eps: num("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6) as f32,
            vocab_size: vocab,
            rope_theta: num("rope.freq_base")?.unwrap_or(1_000_000.0) as f32,
            rope_local_base_freq: 10_000.0,
            query_pre_attn_scalar: head_dim as f32,
            sliding_window: num("attention.sliding_window")?.map_or(512, |v| v as i32),
            sliding_window_pattern: pattern,
            context_length: num("context_length")?.map_or(32768, |v| v as i32),
            rope_scaling: scaling,
            final_logit_softcapping: num("final_logit_softcapping")?.map(|v| v as f32),
            layer_sliding,
        })
    }

    /// Whether layer `i` attends through the sliding window.
    pub fn is_sliding(&self, i: i32) -> bool {
        if let Some(v) = &self.layer_sliding {
            return v.get(i as usize).copied().unwrap_or(false);
        }
        (i + 1) % self.sliding_window_pattern.max(1) != 0
    }
}

struct Attention {
    /// q, k, v (fused on the CPU layout).
    qkv: Projections,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    rope: Rope,
    window: Option<i32>,
}

struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    post_attn_norm: RmsNorm,
    pre_ff_norm: RmsNorm,
    /// gate, up (fused on the CPU layout).
    gate_up: Projections,
    down_proj: Linear,
    post_ff_norm: RmsNorm,
}

/// A Gemma 3 text decoder.
pub struct Gemma3 {
    cfg: Gemma3Config,
    info: ModelInfo,
    embed: Embedding,
    embed_scale: Array,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
}

/// Where each tensor lives: Hugging Face names (under an optional `language_model.` root) or
/// llama.cpp names (whose `ffn_norm` is Gemma's pre-feed-forward norm, and whose norm weights
/// already carry the +1).
struct Names {
    root: String,
    gguf: bool,
}

impl Names {
    fn layer(&self, i: i32, part: &str) -> String {
        if self.gguf {
            let g = match part {
                "input_layernorm" => return format!("model.layers.{i}.input_layernorm"),
                "post_attention_layernorm" => "post_attention_norm",
                "pre_feedforward_layernorm" => {
                    return format!("model.layers.{i}.post_attention_layernorm")
                }
                "post_feedforward_layernorm" => "post_ffw_norm",
                _ => return format!("model.layers.{i}.{part}"),
            };
            return format!("blk.{i}.{g}");
        }
        format!("{}model.layers.{i}.{part}", self.root)
    }

    fn top(&self, part: &str) -> String {
        format!("{}{part}", self.root)
    }
}

impl Gemma3 {
    /// Assemble the model. `plan` gives quantization group sizes per module.
    pub fn new(
        cfg: Gemma3Config,
        w: &mut Weights,
        architecture: &str,
        plan: &QuantPlan,
    ) -> Result<Self> {
        let gguf = w.format == WeightFormat::Gguf;
        let root = if !gguf && w.contains("language_model.model.embed_tokens.weight") {
            "language_model."
        } else {
            ""
        };
        let n = Names {
            root: root.to_string(),
            gguf,
        };
        let dtype = w.options().compute_dtype;
        let eps = cfg.rms_norm_eps;
        let norm = |w: &mut Weights, name: String| -> Result<RmsNorm> {
            let raw = w.take_float(&format!("{name}.weight"))?;
            // Gemma scales by (1 + w), added in the compute dtype as mlx-lm does at run time
            // (bf16 models in bf16, float32 in float32); llama.cpp's converter already added it.
            let weight = if gguf {
                raw
            } else {
                raw.add(Array::from_f32(1.0).as_dtype(dtype)?)?
            };
            Ok(RmsNorm { weight, eps })
        };
        let lin = |w: &mut Weights, name: String| -> Result<Linear> {
            let path = name.strip_prefix(root).unwrap_or(&name).to_string();
            quant::linear(w, &name, &path, plan)
        };
        let embed = {
            let name = n.top("model.embed_tokens");
            let path = name.strip_prefix(root).unwrap_or(&name).to_string();
            Embedding {
                table: quant::linear_as(w, &name, &path, plan, false)?,
            }
        };
        let mut blocks = Vec::with_capacity(cfg.num_layers as usize);
        for i in 0..cfg.num_layers {
            let sliding = cfg.is_sliding(i);
            let rope = if sliding {
                Rope::new(
                    cfg.head_dim,
                    false,
                    cfg.rope_local_base_freq,
                    &RopeScaling::None,
                )
            } else {
                Rope::new(cfg.head_dim, false, cfg.rope_theta, &cfg.rope_scaling)
            };
            let a = |p: &str| n.layer(i, &format!("self_attn.{p}"));
            blocks.push(Block {
                input_norm: norm(w, n.layer(i, "input_layernorm"))?,
                attn: Attention {
                    qkv: Projections::new(vec![
                        lin(w, a("q_proj"))?,
                        lin(w, a("k_proj"))?,
                        lin(w, a("v_proj"))?,
                    ])?,
                    o_proj: lin(w, a("o_proj"))?,
                    q_norm: norm(w, a("q_norm"))?,
                    k_norm: norm(w, a("k_norm"))?,
                    rope,
                    window: sliding.then_some(cfg.sliding_window),
                },
                post_attn_norm: norm(w, n.layer(i, "post_attention_layernorm"))?,
                pre_ff_norm: norm(w, n.layer(i, "pre_feedforward_layernorm"))?,
                gate_up: Projections::new(vec![
                    lin(w, n.layer(i, "mlp.gate_proj"))?,
                    lin(w, n.layer(i, "mlp.up_proj"))?,
                ])?,
                down_proj: lin(w, n.layer(i, "mlp.down_proj"))?,
                post_ff_norm: norm(w, n.layer(i, "post_feedforward_layernorm"))?,
            });
        }
        let final_norm = norm(w, n.top("model.norm"))?;
        let lm_head = if w.contains(&format!("{}.weight", n.top("lm_head"))) {
            Some(lin(w, n.top("lm_head"))?)
        } else {
            None
        };
        let embed = w.tied_head_layout(embed, lm_head.as_ref())?;
        // mlx-lm multiplies by sqrt(hidden) rounded to bfloat16, then cast to the activations'
        // dtype.
        let embed_scale = Array::from_f32((cfg.hidden_size as f32).sqrt())
            .as_dtype(Dtype::Bfloat16)?
            .as_dtype(dtype)?;
        let info = ModelInfo {
            architecture: architecture.to_string(),
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            num_layers: cfg.num_layers,
            dtype,
        };
        let model = Gemma3 {
            cfg,
            info,
            embed,
            embed_scale,
            blocks,
            norm: final_norm,
            lm_head,
        };
        model.eval_weights()?;
        Ok(model)
    }

    fn eval_weights(&self) -> Result<()> {
        let mut all: Vec<&Array> = self.embed.table.arrays();
        all.push(&self.embed_scale);
        for b in &self.blocks {
            for n in [
                &b.input_norm,
                &b.post_attn_norm,
                &b.pre_ff_norm,
                &b.post_ff_norm,
                &b.attn.q_norm,
                &b.attn.k_norm,
            ] {
                all.push(&n.weight);
            }
            all.extend(b.attn.qkv.arrays());
            all.extend(b.gate_up.arrays());
            all.extend(b.attn.o_proj.arrays());
            all.extend(b.down_proj.arrays());
        }
        all.push(&self.norm.weight);
        if let Some(h) = &self.lm_head {
            all.extend(h.arrays());
        }
        mlx_rs::transforms::eval(all)?;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &Gemma3Config {
        &self.cfg
    }
}

/// Sliding-window attention over a full-history cache: keys before `offset + 1 - window` are
/// never needed, and a query at absolute position `p` sees keys in `(p - window, p]`.
/// Returns the kept keys/values and the mask (None when plain causal masking is exact).
pub(crate) fn window_keys(
    k: Array,
    v: Array,
    offset: i32,
    l: i32,
    window: i32,
) -> Result<(Array, Array, Option<Array>)> {
    let total = offset + l;
    let start = (offset + 1 - window).max(0);
    let (k, v) = if start > 0 {
        (
            k.try_index((.., .., start..total, ..))?,
            v.try_index((.., .., start..total, ..))?,
        )
    } else {
        (k, v)
    };
    if l == 1 || total <= window {
        return Ok((k, v, None));
    }
    let q_pos = mlx_rs::ops::arange::<i32, i32>(offset, total, None)?.reshape(&[l, 1])?;
    let k_pos =
        mlx_rs::ops::arange::<i32, i32>(start, total, None)?.reshape(&[1, total - start])?;
    let mask = q_pos
        .ge(&k_pos)?
        .logical_and(q_pos.lt(k_pos.add(Array::from_int(window))?)?)?;
    Ok((k, v, Some(mask)))
}

impl Attention {
    fn forward(&self, x: &Array, cache: &mut KvCache, cfg: &Gemma3Config) -> Result<Array> {
        let (b, l) = (x.dim(0), x.dim(1));
        let hd = cfg.head_dim;
        let heads = |y: Array, n: i32| -> Result<Array> {
            Ok(y.reshape(&[b, l, n, hd])?.transpose_axes(&[0, 2, 1, 3])?)
        };
        let [q, k, v] = self.qkv.forward_n(x)?;
        let q = self.q_norm.forward(&heads(q, cfg.num_heads)?)?;
        let k = self.k_norm.forward(&heads(k, cfg.num_kv_heads)?)?;
        let v = heads(v, cfg.num_kv_heads)?;
        let pos = StepPositions::of(cache, l);
        let q = pos.rope(&self.rope, &q)?;
        let k = pos.rope(&self.rope, &k)?;
        let (k, v) = cache.update(&k, &v)?;
        let scale = cfg.query_pre_attn_scalar.powf(-0.5);
        let (k, v, window_mask) = match (self.window, &pos) {
            (Some(wnd), StepPositions::Scalar(offset)) => window_keys(k, v, *offset, l, wnd)?,
            // A padded batch decodes one position per row, all ending at the last column: the
            // window is the last `wnd` columns, with the rows' padding still masked.
            (Some(wnd), StepPositions::Rows { mask, .. }) if l == 1 => {
                let cols = k.dim(2);
                if cols > wnd {
                    let last = |a: &Array| a.try_index((.., .., cols - wnd.., ..));
                    let visible = mask.try_index((.., .., .., cols - wnd..))?;
                    (last(&k)?, last(&v)?, Some(visible))
                } else {
                    (k, v, Some(mask.clone()))
                }
            }
            // Several positions per row (a grouped prefill): a row's positions and its columns
            // differ by its padding alone, so the window is a distance in columns.
            (Some(wnd), StepPositions::Rows { mask, .. }) => {
                let cols = k.dim(2);
                let q_col =
                    mlx_rs::ops::arange::<i32, i32>(cols - l, cols, None)?.reshape(&[l, 1])?;
                let k_col = mlx_rs::ops::arange::<i32, i32>(0, cols, None)?.reshape(&[1, cols])?;
                let near = q_col.lt(k_col.add(Array::from_int(wnd))?)?;
                (k, v, Some(mask.logical_and(&near)?))
            }
            (None, _) => (k, v, None),
        };
        let mask = match &window_mask {
            Some(m) => Some(ScaledDotProductAttentionMask::Array(m)),
            None => pos.mask(l),
        };
        let o = crate::sdpa::attention(&q, &k, &v, scale, mask)?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[b, l, cfg.num_heads * hd])?;
        self.o_proj.forward(&o)
    }
}

impl Model for Gemma3 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn new_caches(&self) -> Vec<KvCache> {
        crate::decoder::layer_caches(self.blocks.len())
    }

    fn supports_batch(&self) -> bool {
        true // positions from `nn::StepPositions`; windows cut per column (see `forward`)
    }

    fn forward(&self, tokens: &Array, caches: &mut [KvCache], mode: LogitsMode) -> Result<Array> {
        crate::decoder::check_caches(caches, self.blocks.len())?;
        let mut h = self.embed.forward(tokens)?.multiply(&self.embed_scale)?;
        for (b, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            let r = b
                .attn
                .forward(&b.input_norm.forward(&h)?, cache, &self.cfg)?;
            h = h.add(b.post_attn_norm.forward(&r)?)?;
            let x = b.pre_ff_norm.forward(&h)?;
            let r = b.down_proj.forward(&b.gate_up.gated(&x, Gate::GeluTanh)?)?;
            h = h.add(b.post_ff_norm.forward(&r)?)?;
        }
        let logits =
            crate::decoder::logits(h, mode, &self.norm, self.lm_head.as_ref(), &self.embed)?;
        match self.cfg.final_logit_softcapping {
            Some(c) if c > 0.0 => {
                let c = Array::from_f32(c).as_dtype(logits.dtype())?;
                Ok(mlx_rs::ops::tanh(logits.divide(&c)?)?.multiply(&c)?)
            }
            _ => Ok(logits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sixth_layer_is_global_by_default() {
        let c = Gemma3Config::from_hf(&serde_json::json!({"hidden_size": 64})).unwrap();
        let global: Vec<i32> = (0..12).filter(|&i| !c.is_sliding(i)).collect();
        assert_eq!(global, vec![5, 11]);
        assert_eq!(c.query_pre_attn_scalar, 256.0);
        assert_eq!(c.rope_local_base_freq, 10_000.0);
    }

    #[test]
    fn wrapper_config_reads_text_config_with_wrapper_defaults() {
        let c = Gemma3Config::from_hf(&serde_json::json!({
            "model_type": "gemma3", "vocab_size": 1000,
            "text_config": {"hidden_size": 64, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
        }))
        .unwrap();
        assert_eq!((c.num_heads, c.num_kv_heads, c.vocab_size), (8, 4, 1000));
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 8.0 });
    }

    #[test]
    fn window_mask_limits_each_query_to_the_last_window_positions() {
        // 3 cached positions + 4 new ones, window 3: keys from position 1 on are kept.
        let k = Array::from_slice(&(0..7).map(|i| i as f32).collect::<Vec<_>>(), &[1, 1, 7, 1]);
        let (k, _, m) = window_keys(k.clone(), k, 3, 4, 3).unwrap();
        assert_eq!(k.as_slice::<f32>(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let m = m.unwrap();
        assert_eq!(m.shape(), &[4, 6]);
        let rows: Vec<bool> = m.as_slice::<bool>().to_vec();
        // query at position 3 sees 1,2,3; at 6 sees 4,5,6.
        assert_eq!(&rows[0..6], &[true, true, true, false, false, false]);
        assert_eq!(&rows[18..24], &[false, false, false, true, true, true]);
        // decode step: only the last `window` keys, no mask.
        let k = Array::from_slice(&[0.0f32; 8], &[1, 1, 8, 1]);
        let (k, _, m) = window_keys(k.clone(), k, 7, 1, 3).unwrap();
        assert_eq!(k.shape(), &[1, 1, 3, 1]);
        assert!(m.is_none());
    }
}
