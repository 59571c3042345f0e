//! Tokenizers: Hugging Face `tokenizer.json`, or one rebuilt from GGUF metadata
//! (`tokenizer.ggml.*`), plus incremental UTF-8-safe detokenization.
//!
//! GGUF `gpt2` vocabularies (byte-level BPE: SmolLM2, Llama 3, Qwen...) are turned into an
//! equivalent `tokenizer.json` document and loaded with the `tokenizers` crate; the
//! pre-tokenizer follows `tokenizer.ggml.pre`. Tokens whose `token_type` is control (3) or
//! user-defined (4) become added tokens so that chat-template markers encode as one id.
//! SentencePiece vocabularies (`llama`: Llama 2, Mistral, Gemma) are rebuilt in [`spm`].

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use ollmlx_models::GgufMeta;
use serde_json::{json, Value};

use crate::error::EngineError;

#[path = "tokenizer_spm.rs"]
mod spm;

/// A tokenizer with the ids generation cares about.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Beginning-of-sequence token id, if the model has one.
    pub bos_id: Option<u32>,
    /// Text of the BOS token (for chat templates).
    pub bos_token: String,
    /// Text of the EOS token (for chat templates).
    pub eos_token: String,
    /// Ids that end generation (EOS, EOT, `<|im_end|>`...).
    pub eos_ids: HashSet<u32>,
    /// Whether a BOS must be prepended when the template does not emit it.
    pub add_bos: bool,
}

/// GGUF `tokenizer.ggml.token_type` values.
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

impl Tokenizer {
    /// Rebuild the tokenizer stored in GGUF metadata.
    pub fn from_gguf(meta: &GgufMeta<'_>) -> Result<Self, EngineError> {
        let model = meta.string("tokenizer.ggml.model")?.unwrap_or_default();
        if model != "gpt2" && model != "llama" && model != "bert" {
            return Err(EngineError::Tokenizer(format!(
                "GGUF tokenizer model {model:?} is not supported yet (only gpt2-style byte-level BPE, llama-style SentencePiece and bert WordPiece)"
            )));
        }
        let tokens = meta
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| EngineError::Tokenizer("GGUF has no tokenizer.ggml.tokens".into()))?;
        let types = meta.ints("tokenizer.ggml.token_type")?.unwrap_or_default();
        let id = |key: &str| -> Result<Option<u32>, EngineError> {
            Ok(meta.number(key)?.map(|v| v as u32))
        };
        let add_bos = meta
            .boolean("tokenizer.ggml.add_bos_token")?
            .unwrap_or(false);
        let add_eos = meta
            .boolean("tokenizer.ggml.add_eos_token")?
            .unwrap_or(false);
        let mut doc = if model == "bert" {
            // Ollama's converter spells the separator key "seperator".
            let cls = match id("tokenizer.ggml.cls_token_id")? {
                Some(c) => Some(c),
                None => id("tokenizer.ggml.bos_token_id")?,
            };
            let sep = match id("tokenizer.ggml.seperator_token_id")? {
                Some(s) => Some(s),
                None => id("tokenizer.ggml.eos_token_id")?,
            };
            let unk = id("tokenizer.ggml.unknown_token_id")?;
            crate::embed::wordpiece_tokenizer_json(&tokens, &types, cls, sep, unk)
        } else if model == "llama" {
            let scores = meta.ints("tokenizer.ggml.scores")?.unwrap_or_default();
            let add_space_prefix = meta
                .boolean("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(true);
            let unk = id("tokenizer.ggml.unknown_token_id")?;
            spm::spm_tokenizer_json(&tokens, &scores, &types, add_space_prefix, unk)
        } else {
            let merges = meta.strings("tokenizer.ggml.merges")?.unwrap_or_default();
            let pre = meta
                .string("tokenizer.ggml.pre")?
                .unwrap_or_else(|| "default".into());
            gpt2_tokenizer_json(&tokens, &merges, &types, &pre)
        };
        let bos_id = id("tokenizer.ggml.bos_token_id")?;
        let eos_id = id("tokenizer.ggml.eos_token_id")?;
        if model != "bert" {
            // What `add_bos_token` / `add_eos_token` ask for, applied when special tokens are
            // added (embeddings; generation adds BOS itself and never EOS).
            let bos = bos_id.filter(|_| add_bos);
            let eos = eos_id.filter(|_| add_eos);
            add_special_post_processor(&mut doc, &tokens, bos, eos);
        }
        let inner = tokenizers::Tokenizer::from_str(&doc.to_string())
            .map_err(|e| EngineError::Tokenizer(format!("building tokenizer from GGUF: {e}")))?;
        let text = |i: Option<u32>| {
            i.and_then(|i| tokens.get(i as usize).cloned())
                .unwrap_or_default()
        };
        let mut eos_ids: HashSet<u32> = eos_id.into_iter().collect();
        if let Some(eot) = id("tokenizer.ggml.eot_token_id")? {
            eos_ids.insert(eot);
        }
        add_known_end_tokens(&mut eos_ids, |t| {
            tokens.iter().position(|x| x == t).map(|p| p as u32)
        });
        Ok(Tokenizer {
            inner,
            bos_id,
            bos_token: text(bos_id),
            eos_token: text(eos_id),
            eos_ids,
            add_bos,
        })
    }

    /// Load `tokenizer.json` (+ `tokenizer_config.json`) from a Hugging Face / MLX directory.
    pub fn from_dir(dir: &Path, config: Option<&Value>) -> Result<Self, EngineError> {
        let inner = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| {
            EngineError::Tokenizer(format!("{}: {e}", dir.join("tokenizer.json").display()))
        })?;
        let tc: Value = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        let token_text = |v: &Value| -> Option<String> {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v["content"].as_str().map(str::to_string))
        };
        let bos_token = token_text(&tc["bos_token"]).unwrap_or_default();
        let eos_token = token_text(&tc["eos_token"]).unwrap_or_default();
        let mut eos_ids = HashSet::new();
        if let Some(i) = inner.token_to_id(&eos_token) {
            eos_ids.insert(i);
        }
        match config.map(|c| &c["eos_token_id"]) {
            Some(Value::Number(n)) => eos_ids.extend(n.as_u64().map(|v| v as u32)),
            Some(Value::Array(a)) => {
                eos_ids.extend(a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32))
            }
            _ => {}
        }
        add_known_end_tokens(&mut eos_ids, |t| inner.token_to_id(t));
        Ok(Tokenizer {
            bos_id: inner.token_to_id(&bos_token),
            add_bos: tc["add_bos_token"].as_bool().unwrap_or(false),
            inner,
            bos_token,
            eos_token,
            eos_ids,
        })
    }

    /// A copy that adds the model's special tokens (post-processor) and neither pads nor
    /// truncates (`tokenizer.json` files of encoders often ask for both): for embeddings.
    pub fn embedding_tokenizer(&self) -> tokenizers::Tokenizer {
        let mut t = self.inner.clone();
        t.with_padding(None);
        let _ = t.with_truncation(None);
        t
    }

    /// Encode text; special-token markers in `text` map to their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decode ids, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// End-of-turn markers of common chat formats; generation stops on them too.
fn add_known_end_tokens(ids: &mut HashSet<u32>, lookup: impl Fn(&str) -> Option<u32>) {
    for t in [
        "<|im_end|>",
        "<|eot_id|>",
        "<|end|>",
        "<end_of_turn>",
        "<|endoftext|>",
    ] {
        if let Some(i) = lookup(t) {
            ids.insert(i);
        }
    }
}

/// The `tokenizer.json` document equivalent to a GGUF gpt2 vocabulary.
fn gpt2_tokenizer_json(tokens: &[String], merges: &[String], types: &[i64], pre: &str) -> Value {
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            matches!(
                types.get(*i),
                Some(&TOKEN_TYPE_CONTROL) | Some(&TOKEN_TYPE_USER_DEFINED)
            )
        })
        .map(|(i, t)| {
            let special = types.get(i) == Some(&TOKEN_TYPE_CONTROL);
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": special})
        })
        .collect();
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    let pre_tokenizer = match pre {
        // Llama 3 style: contractions, letters, 1-3 digit groups, punctuation, whitespace.
        "llama3" | "llama-bpe" | "smaug-bpe" | "dbrx" => {
            json!({"type": "Sequence", "pretokenizers": [
            split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            byte_level(false)]})
        }
        "qwen2" | "deepseek-r1-qwen" => json!({"type": "Sequence", "pretokenizers": [
            split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            byte_level(false)]}),
        // StarCoder-family vocabularies (SmolLM/SmolLM2 included): single digits, then GPT-2 rules.
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]})
        }
        _ => byte_level(true),
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    })
}

/// Turns a growing list of generated ids into text deltas that never split a UTF-8 character
/// (the classic prefix/read-offset scheme: re-decode a short window, emit only complete text).
#[derive(Debug, Default)]
pub struct Detokenizer {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl Detokenizer {
    /// A fresh detokenizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one id; returns the newly completed text (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String, EngineError> {
        self.ids.push(id);
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        if full.len() > prefix.len()
            && !full.ends_with('\u{FFFD}')
            && full.is_char_boundary(prefix.len())
        {
            let delta = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(delta)
        } else {
            Ok(String::new())
        }
    }

    /// Whatever is still held back at the end of generation (lossy if incomplete).
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String, EngineError> {
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        Ok(full.get(prefix.len()..).unwrap_or_default().to_string())
    }
}

/// Append `bos`/`eos` around each sequence when special tokens are added (a
/// `TemplateProcessing` after the tokenizer's own post-processor).
fn add_special_post_processor(
    doc: &mut Value,
    tokens: &[String],
    bos: Option<u32>,
    eos: Option<u32>,
) {
    if bos.is_none() && eos.is_none() {
        return;
    }
    let mut special = serde_json::Map::new();
    let mut piece = |id: u32| {
        let text = tokens.get(id as usize).cloned().unwrap_or_default();
        special.insert(
            text.clone(),
            serde_json::json!({"id": text, "ids": [id], "tokens": [text]}),
        );
        serde_json::json!({"SpecialToken": {"id": text, "type_id": 0}})
    };
    let (b, e) = (bos.map(&mut piece), eos.map(&mut piece));
    let seq = |name: &str| serde_json::json!({"Sequence": {"id": name, "type_id": 0}});
    let mut single: Vec<Value> = b.iter().cloned().collect();
    single.push(seq("A"));
    single.extend(e.iter().cloned());
    let mut pair = single.clone();
    pair.extend(b.iter().cloned());
    pair.push(seq("B"));
    pair.extend(e.iter().cloned());
    let template = serde_json::json!({
        "type": "TemplateProcessing",
        "single": single,
        "pair": pair,
        "special_tokens": special,
    });
    doc["post_processor"] = match doc["post_processor"].take() {
        Value::Null => template,
        own => serde_json::json!({"type": "Sequence", "processors": [own, template]}),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level vocabulary with every single byte plus one merge ("h" "i" → "hi").
    fn toy() -> Tokenizer {
        let mut tokens: Vec<String> = Vec::new();
        // GPT-2 byte → unicode map, written out for the printable bytes and offset for the rest.
        let mut n = 0u32;
        for b in 0u32..=255 {
            let printable =
                (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
            let c = if printable {
                char::from_u32(b).unwrap()
            } else {
                n += 1;
                char::from_u32(255 + n).unwrap()
            };
            tokens.push(c.to_string());
        }
        tokens.push("hi".into());
        tokens.push("<|im_end|>".into());
        let mut types = vec![1i64; tokens.len()];
        *types.last_mut().unwrap() = TOKEN_TYPE_CONTROL;
        let doc = gpt2_tokenizer_json(&tokens, &["h i".to_string()], &types, "smollm");
        let inner = tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap();
        Tokenizer {
            inner,
            bos_id: None,
            bos_token: String::new(),
            eos_token: "<|im_end|>".into(),
            eos_ids: HashSet::from([257]),
            add_bos: false,
        }
    }

    #[test]
    fn gguf_style_vocabulary_round_trips_text_and_special_tokens() {
        let t = toy();
        let ids = t.encode("hi<|im_end|>").unwrap();
        assert_eq!(ids, vec![256, 257]);
        assert_eq!(
            t.decode(&t.encode("héllo 42!").unwrap()).unwrap(),
            "héllo 42!"
        );
    }

    #[test]
    fn detokenizer_never_emits_half_a_utf8_character() {
        let t = toy();
        let ids = t.encode("é€").unwrap(); // 2 + 3 bytes, one id per byte
        assert_eq!(ids.len(), 5);
        let mut d = Detokenizer::new();
        let out: Vec<String> = ids.iter().map(|&i| d.push(&t, i).unwrap()).collect();
        assert_eq!(out, vec!["", "é", "", "", "€"]);
        assert_eq!(d.flush(&t).unwrap(), "");
    }
}
