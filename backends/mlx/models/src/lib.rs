//! ollmlx-models: model architectures over mlx-rs.
//!
//! Request path: `ollmlx-mlx` (Backend) → `ollmlx-engine` (engine thread) → **this crate**
//! ([`Model::forward`] over per-layer [`KvCache`]s) → `mlx-rs` → `mlx-sys` → libmlx.
//!
//! Weights come from a GGUF file (read by MLX's own loader; Q4_0/Q4_1/Q8_0 stay affine-quantized
//! with group size 32, or are dequantized at load on the CPU device) or an MLX/Hugging Face
//! safetensors directory. Architectures are looked up in [`registry`]. Everything here must run on
//! the engine thread that owns the MLX state.

pub mod bert;
pub mod cache;
pub mod config;
mod decoder;
pub mod decoder_embed;
pub mod embedding_kind;
pub mod encoder_gguf;
pub mod error;
pub mod gemma3;
pub mod hostmath;
pub mod llama;
pub mod lora;
pub mod moe;
pub mod nn;
pub mod nomic_bert;
pub mod packed;
pub mod phi3;
pub mod pooling;
pub mod quant;
pub mod qwen3_moe;
pub mod registry;
pub mod rope;
pub mod sdpa;
pub mod weights;

use std::path::Path;

use mlx_rs::io::GgufFile;
use mlx_rs::{Array, Dtype};

pub use cache::{KvCache, KvQuant};
pub use config::GgufMeta;
pub use error::{ModelError, Result};
pub use weights::{LoadOptions, WeightFormat, Weights};

/// Which positions [`Model::forward`] returns logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsMode {
    /// Every input position (`[B, L, vocab]`).
    All,
    /// Only the last position (`[B, 1, vocab]`): what generation needs.
    Last,
}

/// Facts about a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Architecture string it was loaded as.
    pub architecture: String,
    /// Vocabulary size (logits width).
    pub vocab_size: i32,
    /// Trained context length.
    pub context_length: i32,
    /// Transformer blocks.
    pub num_layers: i32,
    /// Compute dtype.
    pub dtype: Dtype,
}

/// A causal language model.
pub trait Model {
    /// Facts about the model.
    fn info(&self) -> &ModelInfo;
    /// Fresh, empty caches (one per layer).
    fn new_caches(&self) -> Vec<KvCache>;
    /// Run `tokens` (`[B, L]` int32) after what `caches` already hold, appending to them; returns
    /// logits (lazy MLX array).
    fn forward(&self, tokens: &Array, caches: &mut [KvCache], mode: LogitsMode) -> Result<Array>;
    /// The model as a sentence encoder, when it is an embedding model.
    fn as_encoder(&self) -> Option<&dyn bert::Encoder> {
        None
    }

    /// Whether `forward` accepts caches holding several sequences of different lengths (rows
    /// stacked with [`KvCache::stack`]) and keeps each row's result equal to running it alone.
    fn supports_batch(&self) -> bool {
        false
    }
}

/// A model plus what its files carry besides weights.
pub struct Loaded {
    /// The model.
    pub model: Box<dyn Model>,
    /// The GGUF container (for tokenizer metadata). It still references the raw tensors: read what
    /// you need and drop it.
    pub gguf: Option<GgufFile>,
    /// `config.json` of a safetensors directory.
    pub hf_config: Option<serde_json::Value>,
}

/// File name of the GGUF weights in a model directory (see [`load`]).
pub const GGUF_IN_DIR: &str = "model.gguf";

/// Load a model from a `.gguf` file, a safetensors directory (`config.json` + `*.safetensors`),
/// or a directory holding `model.gguf` (and no `config.json`). A directory with
/// `adapters/adapter_config.json` gets that LoRA adapter merged at load ([`lora`]).
pub fn load(path: &Path, opts: LoadOptions) -> Result<Loaded> {
    let loaded = if path.is_dir() {
        let gguf = path.join(GGUF_IN_DIR);
        if !path.join("config.json").exists() && gguf.exists() {
            let adapter = lora::adapter_dir(path);
            load_gguf_with_adapter(&gguf, opts, adapter.as_deref())?
        } else {
            load_safetensors_dir(path, opts)?
        }
    } else {
        load_gguf(path, opts)?
    };
    register_packed(loaded.model.as_ref());
    Ok(loaded)
}

/// Hand a decoder's packed twins ([`packed`]) to the BLAS shim now, as part of loading, by
/// running one throw-away token through it: each layer registers its twin on its first
/// decode-sized product, which would otherwise land in the first request's second token. A
/// failure here is not the load's: the layers then register on their first real decode step.
fn register_packed(model: &dyn Model) {
    if model.as_encoder().is_some() || !mlx_sys::packed::available() || !hostmath::enabled() {
        return;
    }
    let mut caches = model.new_caches();
    let token = Array::from_slice(&[0i32], &[1, 1]);
    if let Ok(logits) = model.forward(&token, &mut caches, LogitsMode::Last) {
        let _ = logits.eval();
    }
}

/// Load a GGUF file.
pub fn load_gguf(path: &Path, opts: LoadOptions) -> Result<Loaded> {
    load_gguf_with_adapter(path, opts, None)
}

/// Load a GGUF file and merge the mlx-lm LoRA adapter in `adapter` (a directory) into it.
pub fn load_gguf_with_adapter(
    path: &Path,
    opts: LoadOptions,
    adapter: Option<&Path>,
) -> Result<Loaded> {
    let file = GgufFile::load(gguf_named(path)?)?;
    let meta = GgufMeta::new(&file);
    let arch = meta
        .string("general.architecture")?
        .ok_or_else(|| ModelError::MissingConfig("general.architecture".into()))?;
    let family =
        registry::family(&arch).ok_or_else(|| ModelError::UnsupportedArchitecture(arch.clone()))?;
    let mut w = Weights::from_gguf(&file, opts)?;
    if let Some(dir) = adapter {
        // llama.cpp stores llama q/k rows permuted for adjacent-pair RoPE: permute the deltas too.
        let qk = match family {
            registry::Family::Llama => {
                let c = config::LlamaConfig::from_gguf(&meta, &arch, w.contains("lm_head.weight"))?;
                c.rope_traditional.then_some(lora::QkPermute {
                    num_heads: c.num_heads,
                    num_kv_heads: c.num_kv_heads,
                })
            }
            _ => {
                return Err(ModelError::Adapter(format!(
                    "LoRA adapters on GGUF {arch} models are not supported (use a safetensors base)"
                )))
            }
        };
        lora::apply(&mut w, dir, qk)?;
    }
    let model: Box<dyn Model> = match family {
        registry::Family::Llama => {
            let cfg = config::LlamaConfig::from_gguf(&meta, &arch, w.contains("lm_head.weight"))?;
            match encoder_gguf::pooling_type(&meta, &arch)? {
                Some(p) => Box::new(decoder_embed::DecoderEmbedder::new(
                    cfg,
                    &mut w,
                    &arch,
                    pooling::PoolingConfig::from_gguf_type(Some(p), pooling::Pooling::Last)?,
                )?),
                None => Box::new(llama::Llama::new(cfg, &mut w, &arch)?),
            }
        }
        registry::Family::Gemma3 => Box::new(gemma3::Gemma3::new(
            gemma3::Gemma3Config::from_gguf(&meta)?,
            &mut w,
            &arch,
            &quant::QuantPlan::uniform(32),
        )?),
        registry::Family::Phi3 => {
            let long = if w.contains("rope_factors_long.weight") {
                let f = w
                    .take_raw("rope_factors_long.weight")?
                    .as_dtype(Dtype::Float32)?;
                Some(f.as_slice::<f32>().to_vec())
            } else {
                None
            };
            Box::new(phi3::Phi3::new(
                phi3::Phi3Config::from_gguf(&meta, long)?,
                &mut w,
                &arch,
                &quant::QuantPlan::uniform(32),
            )?)
        }
        registry::Family::Qwen3Moe => Box::new(qwen3_moe::Qwen3Moe::new(
            qwen3_moe::Qwen3MoeConfig::from_gguf(&meta, w.contains("lm_head.weight"))?,
            &mut w,
            &arch,
            &quant::QuantPlan::uniform(32),
        )?),
        registry::Family::Bert => {
            let cfg = bert::BertConfig::from_gguf(&meta, &arch)?;
            let p = encoder_gguf::pooling_type(&meta, &arch)?;
            encoder_gguf::rename_bert(&mut w);
            Box::new(bert::Bert::new(
                cfg,
                &mut w,
                &arch,
                pooling::PoolingConfig::from_gguf_type(p, pooling::Pooling::Mean)?,
            )?)
        }
        registry::Family::NomicBert => {
            let cfg = nomic_bert::NomicBertConfig::from_gguf(&meta, &arch)?;
            let p = encoder_gguf::pooling_type(&meta, &arch)?;
            encoder_gguf::rename_nomic_bert(&mut w);
            Box::new(nomic_bert::NomicBert::new(
                cfg,
                &mut w,
                &arch,
                pooling::PoolingConfig::from_gguf_type(p, pooling::Pooling::Mean)?,
            )?)
        }
    };
    drop(w);
    Ok(Loaded {
        model,
        gguf: Some(file),
        hf_config: None,
    })
}

/// MLX only opens files named `*.gguf`; store blobs are named by digest. Give such a file a
/// `.gguf`-named symlink in the temp directory. The link's name carries a hash of the target's
/// full path (two stores holding the same digest get two links) and it is made under a
/// temporary name and renamed into place, so concurrent loads never see each other's
/// half-made link (they used to fail with "File exists").
fn gguf_named(path: &Path) -> Result<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    if path.extension().is_some_and(|e| e == "gguf") {
        return Ok(path.to_path_buf());
    }
    let err = |e: std::io::Error| ModelError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let target = path.canonicalize().map_err(err)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut h);
    let dir = std::env::temp_dir().join("ollmlx-gguf-links");
    std::fs::create_dir_all(&dir).map_err(err)?;
    let link = dir.join(format!("{name}-{:016x}.gguf", h.finish()));
    if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
        let tmp = dir.join(format!(
            ".{name}-{}-{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp).map_err(err)?;
        #[cfg(not(unix))]
        std::fs::copy(&target, &tmp).map(|_| ()).map_err(err)?;
        if let Err(e) = std::fs::rename(&tmp, &link) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e));
        }
    }
    Ok(link)
}

/// Load an MLX / Hugging Face safetensors directory.
pub fn load_safetensors_dir(dir: &Path, opts: LoadOptions) -> Result<Loaded> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::File {
        path: cfg_path.display().to_string(),
        message: e.to_string(),
    })?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::File {
        path: cfg_path.display().to_string(),
        message: e.to_string(),
    })?;
    let arch = cfg["architectures"][0]
        .as_str()
        .or(cfg["model_type"].as_str())
        .ok_or_else(|| ModelError::MissingConfig("architectures".into()))?
        .to_string();
    let family = registry::family(&arch)
        .or_else(|| cfg["model_type"].as_str().and_then(registry::family))
        .ok_or_else(|| ModelError::UnsupportedArchitecture(arch.clone()))?;
    let group = cfg["quantization"]["group_size"].as_i64().unwrap_or(64) as i32;
    let mut w = Weights::from_safetensors_dir(dir, opts, group)?;
    if let Some(adapter) = lora::adapter_dir(dir) {
        lora::apply(&mut w, &adapter, None)?;
    }
    let model: Box<dyn Model> = match family {
        registry::Family::Llama if pooling::has_sentence_transformers_files(dir) => {
            decoder_embed::check_hf_config(&cfg)?;
            Box::new(decoder_embed::DecoderEmbedder::new(
                config::LlamaConfig::from_hf(&cfg)?,
                &mut w,
                &arch,
                pooling::PoolingConfig::from_dir_or(dir, pooling::Pooling::Last)?,
            )?)
        }
        registry::Family::Llama => Box::new(llama::Llama::new(
            config::LlamaConfig::from_hf(&cfg)?,
            &mut w,
            &arch,
        )?),
        registry::Family::Gemma3 => {
            let plan = quant::QuantPlan::from_hf(&cfg, "language_model.");
            Box::new(gemma3::Gemma3::new(
                gemma3::Gemma3Config::from_hf(&cfg)?,
                &mut w,
                &arch,
                &plan,
            )?)
        }
        registry::Family::Phi3 => Box::new(phi3::Phi3::new(
            phi3::Phi3Config::from_hf(&cfg)?,
            &mut w,
            &arch,
            &quant::QuantPlan::from_hf(&cfg, ""),
        )?),
        registry::Family::Qwen3Moe => Box::new(qwen3_moe::Qwen3Moe::new(
            qwen3_moe::Qwen3MoeConfig::from_hf(&cfg)?,
            &mut w,
            &arch,
            &quant::QuantPlan::from_hf(&cfg, ""),
        )?),
        registry::Family::Bert => Box::new(bert::Bert::new(
            bert::BertConfig::from_hf(&cfg)?,
            &mut w,
            &arch,
            bert::PoolingConfig::from_dir(dir)?,
        )?),
        registry::Family::NomicBert => Box::new(nomic_bert::NomicBert::new(
            nomic_bert::NomicBertConfig::from_hf(&cfg)?,
            &mut w,
            &arch,
            bert::PoolingConfig::from_dir(dir)?,
        )?),
    };
    Ok(Loaded {
        model,
        gguf: None,
        hf_config: Some(cfg),
    })
}

#[cfg(test)]
mod smoke {
    use mlx_rs::Array;

    #[test]
    fn concurrent_loads_of_same_named_blobs_each_get_a_link_to_their_own_file() {
        // Two stores holding a blob of the same digest name, linked from 8 threads at once:
        // every call succeeds and each link leads to its own store's file.
        let root = std::env::temp_dir().join(format!("ollmlx-link-race-{}", std::process::id()));
        let blob = "sha256-0123456789abcdef-link-race";
        let files: Vec<_> = (0..2)
            .map(|i| {
                let d = root.join(format!("store{i}"));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(blob), format!("store {i}")).unwrap();
                d.join(blob)
            })
            .collect();
        std::thread::scope(|s| {
            for t in 0..8 {
                let file = &files[t % 2];
                s.spawn(move || {
                    for _ in 0..50 {
                        let link = super::gguf_named(file).unwrap();
                        let text = std::fs::read_to_string(&link).unwrap();
                        assert_eq!(text, format!("store {}", t % 2));
                    }
                });
            }
        });
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn matmul_runs_on_the_cpu_device() {
        let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
        let b = Array::from_slice(&[5.0f32, 6.0, 7.0, 8.0], &[2, 2]);
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.as_slice::<f32>(), &[19.0, 22.0, 43.0, 50.0]);
    }
}
