//! Ollama's runtime options (`options` in requests, `PARAMETER` in Modelfiles), typed.
//!
//! The one list of which options exist and their types is [`OPTIONS`]; [`Options`]' decoding,
//! encoding and merging follow it, and so does [`format_param`], which types option text.
//!
//! Decoding follows upstream's `FromMap`: unknown keys are ignored, `null` values skipped,
//! integers accept any JSON number (truncated), and a type mismatch is an error whose text
//! matches upstream (`option "top_k" must be of type integer`). [`format_param`] is upstream's
//! `api.FormatParams` for one key (Modelfile `PARAMETER` lines, the REPL's `/set parameter`),
//! with its error texts (`unknown parameter 'x'`, `invalid float value [x]`, ...).

use serde_json::{Map, Number, Value};

/// Calls `$then!` with every option as `name: Kind`, in upstream's documented order: the single
/// list behind [`OPTIONS`], [`Options::from_map`], [`Options::to_map`] and [`Options::merged_over`].
macro_rules! for_each_option {
    ($then:ident) => {
        $then! {
            num_keep: Int,
            seed: Int,
            num_predict: Int,
            top_k: Int,
            top_p: Float,
            min_p: Float,
            typical_p: Float,
            repeat_last_n: Int,
            temperature: Float,
            repeat_penalty: Float,
            presence_penalty: Float,
            frequency_penalty: Float,
            stop: StringList,
            num_ctx: Int,
            num_batch: Int,
            num_gpu: Int,
            main_gpu: Int,
            use_mmap: Bool,
            num_thread: Int,
            draft_num_predict: Int,
            draft: Text
        }
    };
}

/// The JSON type of an option (the kinds of upstream's `api.Options` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// `int` / `*int`.
    Int,
    /// `float32`.
    Float,
    /// `*bool`.
    Bool,
    /// `[]string`.
    StringList,
    /// `string` (ollmlx's `draft`; upstream has no string option).
    Text,
}

macro_rules! option_table {
    ($($name:ident: $kind:ident),*) => {
        &[$((stringify!($name), OptionKind::$kind)),*]
    };
}

/// Every option Ollama accepts, by JSON name, with its type.
pub const OPTIONS: &[(&str, OptionKind)] = for_each_option!(option_table);

/// The type of option `name`, or `None` for an unknown one.
pub fn option_kind(name: &str) -> Option<OptionKind> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

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
    /// Draft model for speculative decoding, by name (an ollmlx extension: Modelfile `DRAFT
    /// <name>` / `PARAMETER draft <name>`, or per request; upstream ignores unknown options).
    pub draft: Option<String>,
}

/// An option had the wrong type: a JSON value in `options` (upstream answers these with HTTP
/// 500), or text given to [`format_param`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// Parameters upstream dropped: a Modelfile `PARAMETER` naming one is skipped with
/// `warning: parameter <p> is deprecated`, and `options` ignores them.
pub const DEPRECATED_PARAMETERS: &[&str] = &[
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

/// Further keys upstream removed; `options` still accepts and silently ignores them.
const REMOVED_KEYS: &[&str] = &["numa", "tfs_z"];

impl Options {
    /// Decode an `options` object with upstream's rules.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, OptionError> {
        let mut o = Options::default();
        for (k, v) in map {
            if v.is_null()
                || DEPRECATED_PARAMETERS.contains(&k.as_str())
                || REMOVED_KEYS.contains(&k.as_str())
            {
                continue;
            }
            macro_rules! decode {
                ($($name:ident: $kind:ident),*) => {
                    match k.as_str() {
                        $(stringify!($name) => o.$name = Some(FromJson::from_json(k, v)?),)*
                        _ => {} // unknown keys are ignored, as upstream does
                    }
                };
            }
            for_each_option!(decode);
        }
        Ok(o)
    }

    /// Encode the options that are set as a JSON object (keys in upstream's documented order).
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        macro_rules! put {
            ($($name:ident: $kind:ident),*) => {$(
                if let Some(v) = &self.$name {
                    m.insert(stringify!($name).to_string(), serde_json::json!(v));
                }
            )*};
        }
        for_each_option!(put);
        m
    }

    /// Fill every unset field of `self` from `defaults` (request options win).
    pub fn merged_over(mut self, defaults: &Options) -> Options {
        macro_rules! fill {
            ($($name:ident: $kind:ident),*) => {$(
                if self.$name.is_none() {
                    self.$name = defaults.$name.clone();
                }
            )*};
        }
        for_each_option!(fill);
        self
    }
}

fn type_err(k: &str, t: &str) -> OptionError {
    OptionError(format!("option \"{k}\" must be of type {t}"))
}

/// Decoding one option's JSON value into its field's type.
trait FromJson: Sized {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError>;
}

impl FromJson for i64 {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| type_err(k, "integer")),
            _ => Err(type_err(k, "integer")),
        }
    }
}

impl FromJson for f32 {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError> {
        v.as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| type_err(k, "float32"))
    }
}

impl FromJson for bool {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError> {
        v.as_bool().ok_or_else(|| type_err(k, "boolean"))
    }
}

impl FromJson for String {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| type_err(k, "string"))
    }
}

impl FromJson for Vec<String> {
    fn from_json(k: &str, v: &Value) -> Result<Self, OptionError> {
        let arr = v.as_array().ok_or_else(|| type_err(k, "array"))?;
        arr.iter()
            .map(|s| {
                s.as_str().map(str::to_string).ok_or_else(|| {
                    OptionError(format!("option \"{k}\" must be of an array of strings"))
                })
            })
            .collect()
    }
}

/// Upstream's `api.FormatParams` for one key: type an option's text values (ints, float32s,
/// bools, or for `stop` all the values as a string list).
///
/// Errors are upstream's: `unknown parameter 'x'`, `invalid float value [x]`,
/// `invalid int value [x]`, `invalid bool value [x]` (the values as Go prints a `[]string`).
pub fn format_param(key: &str, vals: &[String]) -> Result<Value, OptionError> {
    let kind = option_kind(key).ok_or_else(|| OptionError(format!("unknown parameter '{key}'")))?;
    let first = vals.first().map(String::as_str).unwrap_or("");
    let invalid = |what: &str| OptionError(format!("invalid {what} value [{}]", vals.join(" ")));
    match kind {
        OptionKind::Int => first
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| invalid("int")),
        OptionKind::Float => parse_float32(first).ok_or_else(|| invalid("float")),
        OptionKind::Bool => parse_go_bool(first)
            .map(Value::Bool)
            .ok_or_else(|| invalid("bool")),
        OptionKind::StringList => Ok(Value::Array(
            vals.iter().map(|v| Value::String(v.clone())).collect(),
        )),
        OptionKind::Text => Ok(Value::String(first.to_string())),
    }
}

/// Parse as a float32 and keep its shortest decimal form (Go marshals float32 that way); out of
/// float32's range is invalid, as for Go's `strconv.ParseFloat(s, 32)`.
fn parse_float32(s: &str) -> Option<Value> {
    let f: f32 = s.trim_start_matches('+').parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let shortest: f64 = format!("{f}").parse().ok()?;
    Number::from_f64(shortest).map(Value::Number)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
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

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn format_param_types_values_by_option() {
        assert_eq!(
            format_param("num_ctx", &s(&["4096"])),
            Ok(Value::from(4096))
        );
        assert_eq!(
            format_param("temperature", &s(&["0.7"]))
                .unwrap()
                .to_string(),
            "0.7"
        );
        assert_eq!(
            format_param("use_mmap", &s(&["true"])),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            format_param("stop", &s(&["<|a|>", "b"]))
                .unwrap()
                .to_string(),
            r#"["<|a|>","b"]"#
        );
    }

    #[test]
    fn format_param_reports_upstream_errors() {
        assert_eq!(
            format_param("bogus", &s(&["1"])).unwrap_err().0,
            "unknown parameter 'bogus'"
        );
        assert_eq!(
            format_param("top_p", &s(&["high"])).unwrap_err().0,
            "invalid float value [high]"
        );
        assert_eq!(
            format_param("seed", &s(&["1.5"])).unwrap_err().0,
            "invalid int value [1.5]"
        );
        assert_eq!(
            format_param("use_mmap", &s(&["yes"])).unwrap_err().0,
            "invalid bool value [yes]"
        );
    }

    #[test]
    fn draft_is_a_string_option_naming_the_draft_model() {
        let o = Options::from_map(&map(json!({"draft": "smollm2-draft:latest"}))).unwrap();
        assert_eq!(o.draft.as_deref(), Some("smollm2-draft:latest"));
        assert_eq!(
            Options::from_map(&map(json!({"draft": 3}))).unwrap_err().0,
            "option \"draft\" must be of type string"
        );
        assert_eq!(
            format_param("draft", &s(&["my-draft"])).unwrap(),
            json!("my-draft")
        );
        let model = Options {
            draft: Some("from-modelfile".into()),
            ..Default::default()
        };
        let req = Options {
            draft: Some("from-request".into()),
            ..Default::default()
        };
        assert_eq!(
            req.merged_over(&model).draft.as_deref(),
            Some("from-request")
        );
    }

    #[test]
    fn every_listed_option_round_trips_through_options() {
        let mut m = Map::new();
        for (name, kind) in OPTIONS {
            let text = match kind {
                OptionKind::Int => "3",
                OptionKind::Float => "0.5",
                OptionKind::Bool => "true",
                OptionKind::StringList | OptionKind::Text => "x",
            };
            m.insert(name.to_string(), format_param(name, &s(&[text])).unwrap());
        }
        assert_eq!(Options::from_map(&m).unwrap().to_map(), m);
    }
}
