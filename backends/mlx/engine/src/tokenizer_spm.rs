//! SentencePiece vocabularies stored in GGUF (`tokenizer.ggml.model` = `llama`: Llama 2,
//! Mistral, Gemma...) rebuilt as a Hugging Face `tokenizer.json` document, for
//! [`super::Tokenizer::from_gguf`] at model load.
//!
//! llama.cpp tokenizes these by starting from single characters and repeatedly merging the
//! adjacent pair whose concatenation is the highest-scoring vocabulary entry, falling back to
//! `<0xNN>` byte tokens for characters outside the vocabulary; spaces are `▁` and, when
//! `tokenizer.ggml.add_space_prefix` is true (the default), the text gets a leading `▁`. The
//! equivalent `tokenizers` model is BPE with `byte_fallback` and one merge per way of splitting
//! each vocabulary entry into two entries, ranked by the entry's score (ties: lower id first).
//! Control (3) and user-defined (4) tokens become added tokens, as for gpt2 vocabularies.
//!
//! Scores reach this module as integers (the engine's GGUF metadata accessor reads numeric arrays
//! as i64); SentencePiece BPE vocabularies score entries by rank, so the order is unchanged.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};

const TOKEN_TYPE_NORMAL: i64 = 1;

/// The `tokenizer.json` document equivalent to a GGUF SentencePiece (`llama`) vocabulary.
pub(super) fn spm_tokenizer_json(
    tokens: &[String],
    scores: &[i64],
    types: &[i64],
    add_space_prefix: bool,
    unk_id: Option<u32>,
) -> Value {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        ids.entry(t.as_str()).or_insert(i);
    }
    let mut vocab = serde_json::Map::with_capacity(ids.len());
    for (i, t) in tokens.iter().enumerate() {
        if ids.get(t.as_str()) == Some(&i) {
            vocab.insert(t.clone(), json!(i));
        }
    }
    let score = |i: usize| scores.get(i).copied().unwrap_or(0);
    // (score, id, split position) for ranking; merges of normal entries only
    let mut ranked: Vec<(i64, usize, usize, &str, &str)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let normal = matches!(types.get(i), None | Some(&TOKEN_TYPE_NORMAL));
        if !normal || ids.get(t.as_str()) != Some(&i) {
            continue;
        }
        for (pos, _) in t.char_indices().skip(1) {
            let (l, r) = t.split_at(pos);
            if ids.contains_key(l) && ids.contains_key(r) {
                ranked.push((score(i), i, pos, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges: Vec<Value> = ranked.iter().map(|m| json!([m.3, m.4])).collect();
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
    let unk = unk_id
        .and_then(|i| tokens.get(i as usize))
        .cloned()
        .or_else(|| ids.contains_key("<unk>").then(|| "<unk>".to_string()));
    let scheme = if add_space_prefix { "first" } else { "never" };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_space_prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": false},
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    })
}

#[cfg(test)]
#[path = "tokenizer_spm_tests.rs"]
mod tests;
