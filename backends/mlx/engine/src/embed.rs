//! Embeddings on the engine thread: tokenize each input with the model's own tokenizer (its
//! post-processor adds `[CLS]`/`[SEP]`, or the `<|endoftext|>` a decoder embedder pools),
//! fit it to the context (truncate, or refuse with upstream's message), run right-padded
//! batches through the encoder (`ollmlx_models::bert::Encoder`: BERT, nomic-bert, pooled
//! llama-family decoders) and return pooled vectors.

use std::time::Duration;

use mlx_rs::Array;

use crate::engine::{KeepAlive, ModelRef, Resident};
use crate::error::EngineError;

pub use ollmlx_models::bert::is_embedding_dir;

/// Inputs per encoder forward pass.
pub const BATCH_SIZE: usize = 16;

/// Upstream's error when an input does not fit and `truncate` is false.
pub const INPUT_TOO_LONG: &str = "the input length exceeds the context length";

/// An embedding request as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedJob {
    /// The model.
    pub model: ModelRef,
    /// Texts to embed, in order.
    pub inputs: Vec<String>,
    /// Cut inputs longer than the context (otherwise refuse them).
    pub truncate: bool,
    /// Requested context (`num_ctx`); capped by the model's positions.
    pub num_ctx: Option<usize>,
    /// Keep-alive override.
    pub keep_alive: Option<KeepAlive>,
}

/// What an [`EmbedJob`] produces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbedOutput {
    /// One vector per input (pooled; normalized when the model's modules say so).
    pub embeddings: Vec<Vec<f32>>,
    /// Tokens processed, summed over inputs.
    pub prompt_eval_count: u64,
    /// Time spent loading the model.
    pub load: Duration,
    /// Time from dequeue to the result.
    pub total: Duration,
}

/// Fit `ids` into `ctx` tokens. Too long and `truncate`: when the sequence ends with a special
/// token the post-processor appended (`[SEP]`, `<|endoftext|>`: `ends_special`), keep the first
/// `ctx - 1` tokens plus that one — the tail of the text is cut, as Ollama cuts the text and the
/// runner re-adds the specials; otherwise keep the first `ctx`. Too long otherwise → error.
pub fn fit_to_context(
    mut ids: Vec<u32>,
    ctx: usize,
    truncate: bool,
    ends_special: bool,
) -> Result<Vec<u32>, EngineError> {
    if ids.len() <= ctx {
        return Ok(ids);
    }
    if !truncate || ctx < 2 {
        return Err(EngineError::InvalidRequest(INPUT_TOO_LONG.into()));
    }
    if !ends_special {
        ids.truncate(ctx);
        return Ok(ids);
    }
    let last = ids[ids.len() - 1];
    ids.truncate(ctx - 1);
    ids.push(last);
    Ok(ids)
}

/// Embed `job.inputs` with the resident model. Returns the vectors and the token count.
pub(crate) fn run(m: &Resident, job: &EmbedJob) -> Result<(Vec<Vec<f32>>, u64), EngineError> {
    let Some(enc) = m.model.as_encoder() else {
        return Err(EngineError::InvalidRequest(format!(
            "\"{}\" does not support embeddings",
            job.model.name
        )));
    };
    let positions = enc.info().context_length.max(1) as usize;
    let ctx = job
        .num_ctx
        .filter(|&n| n > 0)
        .map_or(positions, |n| n.min(positions));
    let tok = m.tokenizer.embedding_tokenizer();
    let mut seqs = Vec::with_capacity(job.inputs.len());
    for text in &job.inputs {
        let e = tok
            .encode(text.as_str(), true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let ends_special = e.get_special_tokens_mask().last() == Some(&1);
        seqs.push(fit_to_context(
            e.get_ids().to_vec(),
            ctx,
            job.truncate,
            ends_special,
        )?);
    }
    let count = seqs.iter().map(|s| s.len() as u64).sum();
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(BATCH_SIZE) {
        let (tokens, mask) = pad_batch(chunk);
        let v = enc.embed(&tokens, &mask)?;
        v.eval()?;
        let dim = v.dim(-1).max(0) as usize;
        let flat = v.as_slice::<f32>();
        out.extend(flat.chunks(dim.max(1)).map(<[f32]>::to_vec));
    }
    Ok((out, count))
}

/// The `tokenizer.json` document equivalent to a GGUF `bert` (WordPiece) vocabulary, as
/// llama.cpp's converter stores it for BERT / nomic-bert / mxbai-style models: word-initial
/// pieces carry a `▁` (U+2581) prefix, continuation pieces none, `[XXX]` specials as they are.
/// Rebuilt as BERT's own pipeline: `##` continuations, BERT normalizer (lower-casing, as
/// llama.cpp's WPM tokenizer does), BERT pre-tokenizer, `[CLS] … [SEP]` post-processor.
/// `types` (`tokenizer.ggml.token_type`) decide which `[XXX]` tokens text can produce: control
/// (3) ones become special added tokens (`[CLS]`, `[MASK]`... typed in the text match, as with
/// the original tokenizer.json), user-defined (4) ones plain added tokens, the others stay
/// unreachable vocabulary entries (`[unused0]`, a converter's `[PAD<id>]` filler); without
/// types every `[XXX]` token is taken as special.
/// `cls`/`sep`/`unk`: ids from the GGUF (`bos_token_id`/`cls_token_id`,
/// `seperator_token_id`/`eos_token_id`, `unknown_token_id`); absent ones are looked up by name.
pub fn wordpiece_tokenizer_json(
    tokens: &[String],
    types: &[i64],
    cls: Option<u32>,
    sep: Option<u32>,
    unk: Option<u32>,
) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    const CONTROL: i64 = 3;
    const USER_DEFINED: i64 = 4;
    let bracketed = |t: &str| t.len() > 2 && t.starts_with('[') && t.ends_with(']');
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let kind = types.get(i).copied();
        let added_as = match kind {
            Some(CONTROL) => Some(true),
            Some(USER_DEFINED) => Some(false),
            None if types.is_empty() && bracketed(t) => Some(true),
            _ => None,
        };
        let piece = if let Some(special) = added_as {
            added.push(
                json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": special}),
            );
            t.clone()
        } else if bracketed(t) {
            t.clone()
        } else if let Some(word) = t.strip_prefix('\u{2581}') {
            word.to_string()
        } else {
            format!("##{t}")
        };
        vocab.entry(piece).or_insert(Value::from(i));
    }
    let find = |name: &str| tokens.iter().position(|t| t == name).map(|p| p as u32);
    let name = |id: Option<u32>, default: &str| -> (String, u32) {
        let id = id.or_else(|| find(default)).unwrap_or(0);
        let text = tokens
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| default.to_string());
        (text, id)
    };
    let (cls_t, cls_id) = name(cls, "[CLS]");
    let (sep_t, sep_id) = name(sep, "[SEP]");
    let (unk_t, _) = name(unk, "[UNK]");
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": [sep_t, sep_id], "cls": [cls_t, cls_id]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk_t, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// Right-pad `seqs` with id 0 into `[B, L]` int32 tokens and a `[B, L]` float32 mask.
fn pad_batch(seqs: &[Vec<u32>]) -> (Array, Array) {
    let b = seqs.len();
    let l = seqs.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut tokens = vec![0i32; b * l];
    let mut mask = vec![0f32; b * l];
    for (i, s) in seqs.iter().enumerate() {
        for (j, &t) in s.iter().enumerate() {
            tokens[i * l + j] = t as i32;
            mask[i * l + j] = 1.0;
        }
    }
    let shape = [b as i32, l as i32];
    (
        Array::from_slice(&tokens, &shape),
        Array::from_slice(&mask, &shape),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_inputs_keep_their_final_separator_when_truncated() {
        assert_eq!(
            fit_to_context(vec![101, 1, 2, 3, 102], 4, true, true).unwrap(),
            vec![101, 1, 2, 102]
        );
        assert_eq!(
            fit_to_context(vec![101, 102], 4, false, true).unwrap(),
            vec![101, 102]
        );
    }

    #[test]
    fn long_inputs_without_a_final_special_token_are_simply_cut() {
        assert_eq!(
            fit_to_context(vec![5, 6, 7, 8, 9], 3, true, false).unwrap(),
            vec![5, 6, 7]
        );
    }

    #[test]
    fn long_inputs_without_truncation_get_upstreams_error() {
        let e = fit_to_context(vec![1, 2, 3], 2, false, true).unwrap_err();
        assert_eq!(e, EngineError::InvalidRequest(INPUT_TOO_LONG.into()));
        assert_eq!(e.to_string(), "the input length exceeds the context length");
    }

    #[test]
    fn gguf_wordpiece_vocab_tokenizes_like_the_original_tokenizer_json() {
        use std::str::FromStr;
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/tests/fixtures/embed-bert-cls");
        let original = tokenizers::Tokenizer::from_file(fixture.join("tokenizer.json")).unwrap();
        // The vocabulary the way llama.cpp's converter writes it into a GGUF.
        // (Ids the original vocabulary skips become `[unusedN]`, as in BERT vocabularies.)
        let vocab = original.get_vocab(false);
        let n = vocab.values().max().map_or(0, |m| *m as usize + 1);
        let mut tokens: Vec<String> = (0..n).map(|i| format!("[unused{i}]")).collect();
        for (t, id) in vocab {
            tokens[id as usize] = if t.starts_with('[') && t.ends_with(']') {
                t
            } else if let Some(rest) = t.strip_prefix("##") {
                rest.to_string()
            } else {
                format!("\u{2581}{t}")
            };
        }
        let doc = wordpiece_tokenizer_json(&tokens, &[], None, None, None);
        let rebuilt = tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap();
        let text = std::fs::read_to_string(fixture.join("reference.json")).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut inputs: Vec<String> = reference["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_string())
            .collect();
        inputs.push("Hello, WORLD! unknownword cats".into());
        for t in &inputs {
            let a = original.encode(t.as_str(), true).unwrap();
            let b = rebuilt.encode(t.as_str(), true).unwrap();
            assert_eq!(a.get_ids(), b.get_ids(), "{t:?}");
        }
        let e = rebuilt.encode("hello world", true).unwrap();
        assert_eq!(e.get_special_tokens_mask().last(), Some(&1));
    }

    #[test]
    fn only_control_type_bracket_tokens_match_when_typed_in_text() {
        use std::str::FromStr;
        let tokens: Vec<String> = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "[unused0]",
            "\u{2581}hello",
        ]
        .map(String::from)
        .to_vec();
        let doc = wordpiece_tokenizer_json(&tokens, &[3, 3, 3, 3, 1, 1], None, None, None);
        let t = tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap();
        let ids = |text: &str| t.encode(text, true).unwrap().get_ids().to_vec();
        // A control token typed in the text is that token, as with BERT's tokenizer.json.
        assert_eq!(ids("[CLS] hello"), vec![2, 2, 5, 3]);
        // A normal-type `[unused0]` is an ordinary entry: the text splits into "[", "unused0",
        // "]", none of which the vocabulary has.
        assert_eq!(ids("[unused0] hello"), vec![2, 1, 1, 1, 5, 3]);
    }

    #[test]
    fn batches_are_right_padded_with_a_mask() {
        let (t, m) = pad_batch(&[vec![5, 6, 7], vec![8]]);
        assert_eq!(t.as_slice::<i32>(), &[5, 6, 7, 8, 0, 0]);
        assert_eq!(m.as_slice::<f32>(), &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
