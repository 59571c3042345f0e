//! Ollama's runtime options (`options` in requests, `PARAMETER` in Modelfiles), typed.
//!
//! Decoding follows upstream's `FromMap`: unknown keys are ignored, `null` values skipped,
//! integers accept any JSON number (truncated), and a type mismatch is an error whose text
//! matches upstream (`option "top_k" must be of type integer`).

use serde_json::{Map, Value};

/// Every option Ollama accepts; `None` means "not set here" (fall back to the model/server default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Tokens of the prompt to keep when the context shifts (default 4).
    pub num_keep: Option<i64>,
    /// RNG seed; -1 (default) means random.
    pub seed: Option<i64>,
    /// Maximum tokens to generate; -1 (default) means unbounded.
    pub num_predict: Option<i64>,
    /// Keep only the k most likely tokens (default 40; 0 disables).
    pub top_k: Option<i64>,
    /// Nucleus sampling mass (default 0.9).
    pub top_p: Option<f32>,
    /// Minimum probability relative to the top token (default 0).
    pub min_p: Option<f32>,
    /// Locally typical sampling mass (default 1.0, off).
    pub typical_p: Option<f32>,
    /// How many recent tokens the penalties look at (default 64; -1 = num_ctx).
    pub repeat_last_n: Option<i64>,
    /// Sampling temperature (default 0.8; 0 = greedy).
    pub temperature: Option<f32>,
    /// Multiplicative penalty on repeated tokens (default 1.0).
    pub repeat_penalty: Option<f32>,
    /// Additive penalty on tokens already present (default 0).
    pub presence_penalty: Option<f32>,
    /// Penalty proportional to a token's count so far (default 0).
    pub frequency_penalty: Option<f32>,
    /// Stop sequences.
    pub stop: Option<Vec<String>>,
    /// Context window in tokens.
    pub num_ctx: Option<i64>,
    /// Prompt-processing batch size (default 512).
    pub num_batch: Option<i64>,
    /// Layers to offload (-1 = auto). Accepted for compatibility.
    pub num_gpu: Option<i64>,
    /// Primary GPU index. Accepted for compatibility.
    pub main_gpu: Option<i64>,
    /// Memory-map weights.
    pub use_mmap: Option<bool>,
    /// Compute threads (0 = runtime default).
    pub num_thread: Option<i64>,
    /// Tokens the draft model proposes per step (speculative decoding).
    pub draft_num_predict: Option<i64>,
}

/// An option had the wrong JSON type (upstream answers these with HTTP 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// Keys upstream removed; still accepted and silently ignored.
const LEGACY_KEYS: &[&str] = &[
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "numa",
    "tfs_z",
];

impl Options {
    /// Decode an `options` object with upstream's rules.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, OptionError> {
        let mut o = Options::default();
        for (k, v) in map {
            if v.is_null() || LEGACY_KEYS.contains(&k.as_str()) {
                continue;
            }
            match k.as_str() {
                "num_keep" => o.num_keep = Some(int(k, v)?),
                "seed" => o.seed = Some(int(k, v)?),
                "num_predict" => o.num_predict = Some(int(k, v)?),
                "top_k" => o.top_k = Some(int(k, v)?),
                "top_p" => o.top_p = Some(float(k, v)?),
                "min_p" => o.min_p = Some(float(k, v)?),
                "typical_p" => o.typical_p = Some(float(k, v)?),
                "repeat_last_n" => o.repeat_last_n = Some(int(k, v)?),
                "temperature" => o.temperature = Some(float(k, v)?),
                "repeat_penalty" => o.repeat_penalty = Some(float(k, v)?),
                "presence_penalty" => o.presence_penalty = Some(float(k, v)?),
                "frequency_penalty" => o.frequency_penalty = Some(float(k, v)?),
                "stop" => o.stop = Some(strings(k, v)?),
                "num_ctx" => o.num_ctx = Some(int(k, v)?),
                "num_batch" => o.num_batch = Some(int(k, v)?),
                "num_gpu" => o.num_gpu = Some(int(k, v)?),
                "main_gpu" => o.main_gpu = Some(int(k, v)?),
                "use_mmap" => o.use_mmap = Some(boolean(k, v)?),
                "num_thread" => o.num_thread = Some(int(k, v)?),
                "draft_num_predict" => o.draft_num_predict = Some(int(k, v)?),
                _ => {} // unknown keys are ignored, as upstream does
            }
        }
        Ok(o)
    }

    /// Encode the options that are set as a JSON object (keys in upstream's documented order).
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        macro_rules! put {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f { m.insert(stringify!($f).to_string(), serde_json::json!(v)); }
            )*};
        }
        put!(
            num_keep,
            seed,
            num_predict,
            top_k,
            top_p,
            min_p,
            typical_p,
            repeat_last_n,
            temperature,
            repeat_penalty,
            presence_penalty,
            frequency_penalty,
            stop,
            num_ctx,
            num_batch,
            num_gpu,
            main_gpu,
            use_mmap,
            num_thread,
            draft_num_predict
        );
        m
    }

    /// Fill every unset field of `self` from `defaults` (request options win).
    pub fn merged_over(mut self, defaults: &Options) -> Options {
        macro_rules! fill {
            ($($f:ident),*) => {$(
                if self.$f.is_none() { self.$f = defaults.$f.clone(); }
            )*};
        }
        fill!(
            num_keep,
            seed,
            num_predict,
            top_k,
            top_p,
            min_p,
            typical_p,
            repeat_last_n,
            temperature,
            repeat_penalty,
            presence_penalty,
            frequency_penalty,
            stop,
            num_ctx,
            num_batch,
            num_gpu,
            main_gpu,
            use_mmap,
            num_thread,
            draft_num_predict
        );
        self
    }
}

fn type_err(k: &str, t: &str) -> OptionError {
    OptionError(format!("option \"{k}\" must be of type {t}"))
}

fn int(k: &str, v: &Value) -> Result<i64, OptionError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| type_err(k, "integer")),
        _ => Err(type_err(k, "integer")),
    }
}

fn float(k: &str, v: &Value) -> Result<f32, OptionError> {
    v.as_f64()
        .map(|f| f as f32)
        .ok_or_else(|| type_err(k, "float32"))
}

fn boolean(k: &str, v: &Value) -> Result<bool, OptionError> {
    v.as_bool().ok_or_else(|| type_err(k, "boolean"))
}

fn strings(k: &str, v: &Value) -> Result<Vec<String>, OptionError> {
    let arr = v.as_array().ok_or_else(|| type_err(k, "array"))?;
    arr.iter()
        .map(|s| {
            s.as_str().map(str::to_string).ok_or_else(|| {
                OptionError(format!("option \"{k}\" must be of an array of strings"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn from_map_ignores_unknown_legacy_and_null_keys() {
        let o = Options::from_map(&map(
            json!({"bogus": 1, "mirostat": 2, "seed": null, "top_k": 7}),
        ))
        .unwrap();
        assert_eq!(
            o,
            Options {
                top_k: Some(7),
                ..Default::default()
            }
        );
    }

    #[test]
    fn from_map_truncates_float_for_integer_options() {
        let o = Options::from_map(&map(json!({"num_predict": 12.9}))).unwrap();
        assert_eq!(o.num_predict, Some(12));
    }

    #[test]
    fn from_map_reports_type_mismatch_like_upstream() {
        let e = Options::from_map(&map(json!({"top_k": "x"}))).unwrap_err();
        assert_eq!(e.0, "option \"top_k\" must be of type integer");
        let e = Options::from_map(&map(json!({"temperature": true}))).unwrap_err();
        assert_eq!(e.0, "option \"temperature\" must be of type float32");
        let e = Options::from_map(&map(json!({"stop": "x"}))).unwrap_err();
        assert_eq!(e.0, "option \"stop\" must be of type array");
        let e = Options::from_map(&map(json!({"stop": [1]}))).unwrap_err();
        assert_eq!(e.0, "option \"stop\" must be of an array of strings");
    }

    #[test]
    fn merged_over_keeps_request_values_and_fills_the_rest() {
        let req = Options {
            temperature: Some(0.0),
            ..Default::default()
        };
        let defaults = Options {
            temperature: Some(0.8),
            top_k: Some(40),
            ..Default::default()
        };
        let m = req.merged_over(&defaults);
        assert_eq!(m.temperature, Some(0.0));
        assert_eq!(m.top_k, Some(40));
    }

    #[test]
    fn to_map_round_trips_through_from_map() {
        let o = Options {
            seed: Some(3),
            stop: Some(vec!["a".into()]),
            use_mmap: Some(true),
            ..Default::default()
        };
        assert_eq!(Options::from_map(&o.to_map()).unwrap(), o);
    }
}
