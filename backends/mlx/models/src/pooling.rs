//! Sentence pooling shared by every embedding model: how per-token hidden states become one
//! vector, read from where the model's files say it.
//!
//! Sits between an encoder's (or decoder's) hidden-state pass and the engine's embed job
//! (`ollmlx_engine::embed`): `Encoder::embed` runs the network, then [`pool`] here.
//!
//! Sources of the mode:
//! - Hugging Face / sentence-transformers directories: `modules.json` names the Pooling module
//!   (default `1_Pooling`) whose `config.json` sets one of `pooling_mode_cls_token`,
//!   `pooling_mode_mean_tokens`, `pooling_mode_max_tokens`, `pooling_mode_lasttoken`; a
//!   `Normalize` module in `modules.json` asks for L2 normalization.
//! - GGUF: `<arch>.pooling_type` as llama.cpp numbers it (0 none, 1 mean, 2 cls, 3 last, 4 rank).

use std::path::Path;

use mlx_rs::ops::{maximum, select};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average over the non-padding tokens.
    Mean,
    /// The first (`[CLS]`) position.
    Cls,
    /// The last non-padding position (decoder embedders: Qwen3-Embedding, gte-Qwen2).
    Last,
    /// Element-wise maximum over the non-padding tokens.
    Max,
}

/// Pooling and normalization of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingConfig {
    /// Pooling mode.
    pub pooling: Pooling,
    /// L2-normalize the pooled vector (a `Normalize` module in `modules.json`).
    pub normalize: bool,
}

impl Default for PoolingConfig {
    fn default() -> Self {
        PoolingConfig {
            pooling: Pooling::Mean,
            normalize: false,
        }
    }
}

/// llama.cpp's `LLAMA_POOLING_TYPE_*` numbers (GGUF `<arch>.pooling_type`).
pub const GGUF_POOLING_NONE: i64 = 0;
/// Mean pooling.
pub const GGUF_POOLING_MEAN: i64 = 1;
/// `[CLS]` pooling.
pub const GGUF_POOLING_CLS: i64 = 2;
/// Last-token pooling.
pub const GGUF_POOLING_LAST: i64 = 3;
/// Reranker head (not an embedding).
pub const GGUF_POOLING_RANK: i64 = 4;

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Whether `dir` carries sentence-transformers files (`modules.json` or `1_Pooling/config.json`):
/// what marks a decoder checkpoint (Qwen3-Embedding, gte-Qwen2) as an embedding model.
pub fn has_sentence_transformers_files(dir: &Path) -> bool {
    dir.join("modules.json").is_file() || dir.join("1_Pooling/config.json").is_file()
}

impl PoolingConfig {
    /// Read `modules.json` and the pooling module's `config.json`. Without them: `default`
    /// pooling, no normalization. Concatenated or weighted modes are refused.
    pub fn from_dir_or(dir: &Path, default: Pooling) -> Result<Self> {
        let modules = read_json(&dir.join("modules.json"));
        let list = modules.as_ref().and_then(Value::as_array);
        let of_type = |suffix: &str| -> Option<&Value> {
            list?
                .iter()
                .find(|m| m["type"].as_str().is_some_and(|t| t.ends_with(suffix)))
        };
        let pool_dir = of_type(".Pooling")
            .and_then(|m| m["path"].as_str())
            .unwrap_or("1_Pooling");
        let pooling = match read_json(&dir.join(pool_dir).join("config.json")) {
            Some(c) => from_sentence_transformers(&c)?.unwrap_or(default),
            None => default,
        };
        Ok(PoolingConfig {
            pooling,
            normalize: of_type(".Normalize").is_some(),
        })
    }

    /// [`PoolingConfig::from_dir_or`] with mean pooling as the default (BERT-style encoders).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::from_dir_or(dir, Pooling::Mean)
    }

    /// The pooling of a GGUF `<arch>.pooling_type` value; `none` (0) and an absent key give
    /// `default`. The vector is not normalized here (Ollama's server normalizes `/api/embed`).
    pub fn from_gguf_type(value: Option<i64>, default: Pooling) -> Result<Self> {
        let pooling = match value {
            None | Some(GGUF_POOLING_NONE) => default,
            Some(GGUF_POOLING_MEAN) => Pooling::Mean,
            Some(GGUF_POOLING_CLS) => Pooling::Cls,
            Some(GGUF_POOLING_LAST) => Pooling::Last,
            Some(GGUF_POOLING_RANK) => {
                return Err(ModelError::Invalid(
                    "reranker models (pooling_type rank) are not supported".into(),
                ))
            }
            Some(other) => {
                return Err(ModelError::Invalid(format!(
                    "unknown pooling_type {other} in the GGUF metadata"
                )))
            }
        };
        Ok(PoolingConfig {
            pooling,
            normalize: false,
        })
    }
}

/// The mode a sentence-transformers `1_Pooling/config.json` selects (`None`: no mode set).
fn from_sentence_transformers(c: &Value) -> Result<Option<Pooling>> {
    let on = |k: &str| c[k].as_bool() == Some(true);
    for k in [
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
    ] {
        if on(k) {
            return Err(ModelError::Invalid(format!(
                "sentence-transformers pooling mode {k} is not supported"
            )));
        }
    }
    let modes: Vec<Pooling> = [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_lasttoken", Pooling::Last),
    ]
    .into_iter()
    .filter(|(k, _)| on(k))
    .map(|(_, p)| p)
    .collect();
    match modes.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(ModelError::Invalid(
            "several sentence-transformers pooling modes at once (concatenated vectors) are not supported"
                .into(),
        )),
    }
}

/// Pool `h` (`[B, L, D]`) over `mask` (`[B, L]`, 1 = token, 0 = right padding) into float32
/// `[B, D]`, L2-normalized when `cfg.normalize`.
pub fn pool(h: &Array, mask: &Array, cfg: PoolingConfig) -> Result<Array> {
    let h = h.as_dtype(Dtype::Float32)?;
    let m = mask.as_dtype(Dtype::Float32)?.expand_dims(-1)?;
    let pooled = match cfg.pooling {
        Pooling::Cls => h.take_axis(Array::from_int(0), 1)?,
        Pooling::Mean => {
            let sum = h.multiply(&m)?.sum_axis(1, false)?;
            let count = maximum(m.sum_axis(1, false)?, Array::from_f32(1e-9))?;
            sum.divide(&count)?
        }
        Pooling::Last => {
            // Right padding: the last token sits at (number of tokens - 1).
            let last = m
                .sum_axis(1, true)?
                .subtract(Array::from_f32(1.0))?
                .as_dtype(Dtype::Int32)?;
            let last = maximum(last, Array::from_int(0))?;
            h.take_along_axis(&last, 1)?.squeeze_axes(&[1])?
        }
        Pooling::Max => {
            let padded = m.eq(Array::from_f32(0.0))?;
            let masked = select(&padded, Array::from_f32(f32::NEG_INFINITY), &h)?;
            masked.max_axis(1, false)?
        }
    };
    if !cfg.normalize {
        return Ok(pooled);
    }
    l2_normalize(&pooled)
}

/// Divide each row of `v` (`[B, D]`) by its L2 norm (at least 1e-12).
pub fn l2_normalize(v: &Array) -> Result<Array> {
    let norm = maximum(
        v.square()?.sum_axis(-1, true)?.sqrt()?,
        Array::from_f32(1e-12),
    )?;
    Ok(v.divide(&norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ollmlx-pool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
        d
    }

    #[test]
    fn pooling_defaults_to_mean_and_reads_cls_and_normalize() {
        let dir = tmp("cls");
        assert_eq!(
            PoolingConfig::from_dir(&dir).unwrap(),
            PoolingConfig::default()
        );
        std::fs::write(
            dir.join("modules.json"),
            r#"[{"path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
        let p = PoolingConfig::from_dir(&dir).unwrap();
        assert_eq!(p.pooling, Pooling::Cls);
        assert!(p.normalize);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lasttoken_and_max_modes_are_read_and_concatenations_refused() {
        let dir = tmp("modes");
        let cfg = |body: &str| {
            std::fs::write(dir.join("1_Pooling/config.json"), body).unwrap();
            PoolingConfig::from_dir_or(&dir, Pooling::Mean)
        };
        assert_eq!(
            cfg(r#"{"pooling_mode_lasttoken": true}"#).unwrap().pooling,
            Pooling::Last
        );
        assert_eq!(
            cfg(r#"{"pooling_mode_max_tokens": true}"#).unwrap().pooling,
            Pooling::Max
        );
        assert!(
            cfg(r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#).is_err()
        );
        assert!(cfg(r#"{"pooling_mode_weightedmean_tokens": true}"#).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gguf_pooling_types_follow_llama_cpp_numbering() {
        let p = |v| PoolingConfig::from_gguf_type(v, Pooling::Mean).map(|c| c.pooling);
        assert_eq!(p(Some(1)).unwrap(), Pooling::Mean);
        assert_eq!(p(Some(2)).unwrap(), Pooling::Cls);
        assert_eq!(p(Some(3)).unwrap(), Pooling::Last);
        assert_eq!(p(Some(0)).unwrap(), Pooling::Mean);
        assert_eq!(p(None).unwrap(), Pooling::Mean);
        assert!(p(Some(4)).is_err());
        assert!(p(Some(9)).is_err());
    }

    #[test]
    fn every_mode_ignores_right_padding() {
        // Two rows: [a b c] and [d _ _] (padded), D = 2.
        let h = Array::from_slice(
            &[
                1.0f32, 2.0, 3.0, -4.0, 5.0, 0.5, 7.0, 8.0, 100.0, 100.0, 100.0, 100.0,
            ],
            &[2, 3, 2],
        );
        let mask = Array::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0], &[2, 3]);
        let run = |pooling| {
            let c = PoolingConfig {
                pooling,
                normalize: false,
            };
            pool(&h, &mask, c).unwrap().as_slice::<f32>().to_vec()
        };
        assert_eq!(run(Pooling::Cls), vec![1.0, 2.0, 7.0, 8.0]);
        assert_eq!(run(Pooling::Mean), vec![3.0, -0.5, 7.0, 8.0]);
        assert_eq!(run(Pooling::Last), vec![5.0, 0.5, 7.0, 8.0]);
        assert_eq!(run(Pooling::Max), vec![5.0, 2.0, 7.0, 8.0]);
        let n = pool(
            &h,
            &mask,
            PoolingConfig {
                pooling: Pooling::Cls,
                normalize: true,
            },
        )
        .unwrap();
        let v = n.as_slice::<f32>();
        assert!((v[0] * v[0] + v[1] * v[1] - 1.0).abs() < 1e-6);
    }
}
