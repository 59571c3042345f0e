//! GGUF embedding models from text: the `embed-gguf/*.gguf` fixtures of
//! `scripts/parity/make_embed_fixtures.py` carry their Hugging Face directory's vocabulary the
//! way llama.cpp's / Ollama's converters write it (BERT and nomic-bert: `bert` WordPiece in the
//! phantom-space form with cls/sep/unk ids; Qwen3-Embedding: `gpt2` byte-level BPE with merges,
//! `pre = qwen2`, `add_eos_token = true`). Through the `Engine` (tokenizer rebuilt by
//! `Tokenizer::from_gguf` → context fit → encoder → pooling) each GGUF must embed a text with
//! the same tokens and vector as its directory (tokenizer.json) and as the reference. A GGUF
//! has no sentence-transformers Normalize module: its vectors are the raw pooled states (the
//! server L2-normalizes `/api/embed`), so directory vectors are compared after normalizing.

use std::path::PathBuf;

use mlx_rs::io::GgufFile;
use ollmlx_engine::embed::{EmbedJob, EmbedOutput, INPUT_TOO_LONG};
use ollmlx_engine::tokenizer::Tokenizer;
use ollmlx_engine::{Engine, EngineConfig, EngineError, ModelRef};
use serde_json::Value;

/// (GGUF file, its Hugging Face directory)
const PAIRS: [(&str, &str); 4] = [
    ("embed-gguf/bert-cls.gguf", "embed-bert-cls"),
    ("embed-gguf/bert-cls-q8_0.gguf", "embed-bert-cls"),
    ("embed-gguf/nomic-bert.gguf", "embed-nomic"),
    ("embed-gguf/qwen3-embed.gguf", "embed-qwen3"),
];

/// Texts beyond the references: case, accents, unknown words and characters, digits,
/// punctuation runs, odd whitespace, CJK, special-token markers typed as text (`[PAD9]` names
/// the BERT vocabulary's unused id 9: an UNUSED GGUF token, never produced from text).
const EXTRA: [&str; 10] = [
    "Hello, WORLD! The CAT Sat On The Mat.",
    "Ünïcödé café naïve résumé — déjà vu",
    "unknownword 42 cats... why?!",
    "  leading and   multiple   spaces  ",
    "tab\tand\nnew\r\nlines",
    "中文 text ☃ 🙂",
    "what's the sky's colour? it's blue.",
    "[CLS] hello [SEP] world [UNK]",
    "<|endoftext|> hello",
    "[PAD9] [pad] hello [MASK]",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures")
        .join(name)
}

fn reference(dir: &str) -> Value {
    let text = std::fs::read_to_string(fixture(dir).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn embed(
    engine: &Engine,
    path: &str,
    text: &str,
    truncate: bool,
    num_ctx: Option<usize>,
) -> Result<EmbedOutput, EngineError> {
    embed_all(engine, path, vec![text.to_string()], truncate, num_ctx)
}

fn embed_all(
    engine: &Engine,
    path: &str,
    inputs: Vec<String>,
    truncate: bool,
    num_ctx: Option<usize>,
) -> Result<EmbedOutput, EngineError> {
    let job = EmbedJob {
        model: ModelRef {
            name: path.into(),
            path: fixture(path),
        },
        inputs,
        truncate,
        num_ctx,
        keep_alive: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.embed(job, tx).unwrap();
    rx.blocking_recv().unwrap()
}

fn gguf_tokenizer(path: &str) -> Tokenizer {
    let file = GgufFile::load(fixture(path)).unwrap();
    Tokenizer::from_gguf(&ollmlx_models::GgufMeta::new(&file)).unwrap()
}

fn dir_tokenizer(dir: &str) -> Tokenizer {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(dir).join("config.json")).unwrap())
            .unwrap();
    Tokenizer::from_dir(&fixture(dir), Some(&config)).unwrap()
}

/// Ids with special tokens added (the embedding path).
fn embed_ids(t: &Tokenizer, text: &str) -> Vec<u32> {
    t.embedding_tokenizer()
        .encode(text, true)
        .unwrap()
        .get_ids()
        .to_vec()
}

#[test]
fn gguf_vocabularies_tokenize_text_like_their_tokenizer_json() {
    for (gguf, dir) in PAIRS {
        let (g, d) = (gguf_tokenizer(gguf), dir_tokenizer(dir));
        let r = reference(dir);
        for e in r["inputs"].as_array().unwrap() {
            let text = e["text"].as_str().unwrap();
            assert_eq!(embed_ids(&g, text), ids(&e["ids"]), "{gguf} {text:?}");
        }
        for text in EXTRA {
            assert_eq!(embed_ids(&g, text), embed_ids(&d, text), "{gguf} {text:?}");
            // Generation tokenization (no special tokens added) agrees too.
            assert_eq!(
                g.encode(text).unwrap(),
                d.encode(text).unwrap(),
                "{gguf} {text:?}"
            );
        }
    }
}

#[test]
fn each_gguf_embeds_text_with_its_directorys_tokens_and_vectors() {
    let engine = Engine::start(EngineConfig::default()).unwrap();
    for (gguf, dir) in PAIRS {
        let r = reference(dir);
        // Q8_0 weights are compared with their own dequantized reference.
        let q8: Option<Vec<Vec<f32>>> = gguf.contains("q8_0").then(|| {
            r["gguf_q8_0"]
                .as_array()
                .unwrap()
                .iter()
                .map(floats)
                .collect()
        });
        for (i, e) in r["inputs"].as_array().unwrap().iter().enumerate() {
            let text = e["text"].as_str().unwrap();
            let out = embed(&engine, gguf, text, true, None).unwrap();
            assert_eq!(
                out.prompt_eval_count as usize,
                e["ids"].as_array().unwrap().len(),
                "{gguf} {text:?}: token count"
            );
            let want = q8
                .as_ref()
                .map_or_else(|| floats(&e["pooled"]), |q| q[i].clone());
            let d = max_diff(&out.embeddings[0], &want);
            eprintln!("{gguf} {text:?}: max |diff| to the reference {d:.2e}");
            assert!(d <= 1e-4, "{gguf} {text:?}: max |diff| {d}");
        }
        if q8.is_some() {
            continue;
        }
        // All of them in one right-padded batch: the same vectors, one per text.
        let texts: Vec<String> = r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_string())
            .collect();
        let batch = embed_all(&engine, gguf, texts, true, None).unwrap();
        for (e, got) in r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&batch.embeddings)
        {
            let d = max_diff(got, &floats(&e["pooled"]));
            assert!(d <= 1e-4, "{gguf} batched {:?}: max |diff| {d}", e["text"]);
        }
        for text in EXTRA {
            let a = embed(&engine, gguf, text, true, None).unwrap();
            let b = embed(&engine, dir, text, true, None).unwrap();
            assert_eq!(a.prompt_eval_count, b.prompt_eval_count, "{gguf} {text:?}");
            let d = max_diff(&normalized(&a.embeddings[0]), &normalized(&b.embeddings[0]));
            eprintln!("{gguf} {text:?}: max |diff| to the directory (normalized) {d:.2e}");
            assert!(d <= 1e-4, "{gguf} {text:?}: max |diff| {d}");
        }
    }
}

#[test]
fn gguf_inputs_over_num_ctx_are_cut_keeping_the_final_special_token_or_refused() {
    let engine = Engine::start(EngineConfig::default()).unwrap();
    for (gguf, dir) in PAIRS {
        if gguf.contains("q8_0") {
            continue;
        }
        let r = reference(dir);
        let t = &r["truncated"];
        let ctx = t["ctx"].as_u64().unwrap() as usize;
        let text = t["text"].as_str().unwrap();
        let out = embed(&engine, gguf, text, true, Some(ctx)).unwrap();
        assert_eq!(out.prompt_eval_count as usize, ctx, "{gguf}");
        let d = max_diff(&out.embeddings[0], &floats(&t["pooled"]));
        assert!(d <= 1e-4, "{gguf}: truncated max |diff| {d}");
        let e = embed(&engine, gguf, text, false, Some(ctx)).unwrap_err();
        assert_eq!(
            e,
            EngineError::InvalidRequest(INPUT_TOO_LONG.into()),
            "{gguf}"
        );
    }
}

#[test]
fn qwen3_embedding_gguf_appends_its_eos_for_last_token_pooling_but_not_when_generating() {
    let g = gguf_tokenizer("embed-gguf/qwen3-embed.gguf");
    let d = dir_tokenizer("embed-qwen3");
    let eos = d
        .embedding_tokenizer()
        .token_to_id("<|endoftext|>")
        .unwrap();
    assert!(g.eos_ids.contains(&eos));
    for text in ["hello world", "the cat sat on the mat"] {
        let with = embed_ids(&g, text);
        assert_eq!(with.last(), Some(&eos), "{text:?}");
        assert_eq!(with, embed_ids(&d, text), "{text:?}");
        // Generation never appends the EOS (nor a BOS: add_bos_token is false).
        let plain = g.encode(text).unwrap();
        assert_eq!(&with[..with.len() - 1], plain.as_slice(), "{text:?}");
    }
}

#[test]
fn bert_ggufs_wrap_text_in_cls_and_sep_with_llama_cpp_or_ollama_keys_and_map_unknown_words_to_unk()
{
    // bert-cls.gguf: llama.cpp's keys (bos = [CLS], eos = seperator = [SEP]);
    // bert-cls-q8_0.gguf: Ollama's converter keys (cls_token_id, seperator_token_id, no bos/eos).
    for (path, llama_cpp_keys) in [
        ("embed-gguf/bert-cls.gguf", true),
        ("embed-gguf/bert-cls-q8_0.gguf", false),
    ] {
        let file = GgufFile::load(fixture(path)).unwrap();
        let meta = ollmlx_models::GgufMeta::new(&file);
        let key = |k: &str| meta.number(&format!("tokenizer.ggml.{k}")).unwrap();
        assert_eq!(key("bos_token_id").is_some(), llama_cpp_keys, "{path}");
        assert_eq!(key("cls_token_id").is_some(), !llama_cpp_keys, "{path}");
        assert_eq!(key("seperator_token_id"), Some(3.0), "{path}");
        assert_eq!(key("unknown_token_id"), Some(1.0), "{path}");
        let g = Tokenizer::from_gguf(&meta).unwrap();
        let ids = embed_ids(&g, "HELLO 42 world");
        // [CLS] "hello" (lower-cased) [UNK] ("42" has no pieces) "world" [SEP]
        assert_eq!(ids.len(), 5, "{path}: {ids:?}");
        assert_eq!((ids[0], ids[2], ids[4]), (2, 1, 3), "{path}: {ids:?}");
    }
}

/// all-MiniLM-L6-v2 (`scripts/fetch-models.sh`), when present: its real 30522-entry uncased
/// vocabulary (`[unusedN]`, CJK, accented pieces) converted to the GGUF form the converters
/// write (phantom-space tokens, control type for the special added tokens) and rebuilt by
/// `wordpiece_tokenizer_json` tokenizes like its tokenizer.json.
#[test]
fn real_minilm_vocabulary_in_gguf_form_tokenizes_like_its_tokenizer_json() {
    use std::str::FromStr;
    let dir = std::env::var_os("OLLMLX_TEST_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../.ollmlx-cache/models/all-minilm-l6-v2")
        });
    if !dir.join("tokenizer.json").is_file() {
        eprintln!("SKIPPED: no all-MiniLM-L6-v2 at {}", dir.display());
        return;
    }
    let mut original = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    original.with_padding(None);
    let _ = original.with_truncation(None);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = doc["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    let mut types = vec![1i64; vocab.len()];
    for (t, id) in vocab {
        let id = id.as_u64().unwrap() as usize;
        tokens[id] = if t.starts_with('[') && t.ends_with(']') {
            t.clone()
        } else if let Some(rest) = t.strip_prefix("##") {
            rest.to_string()
        } else {
            format!("\u{2581}{t}")
        };
    }
    for a in doc["added_tokens"].as_array().unwrap() {
        if a["special"].as_bool() == Some(true) {
            types[a["id"].as_u64().unwrap() as usize] = 3;
        }
    }
    let find = |t: &str| tokens.iter().position(|x| x == t).map(|p| p as u32);
    let json = ollmlx_engine::embed::wordpiece_tokenizer_json(
        &tokens,
        &types,
        find("[CLS]"),
        find("[SEP]"),
        find("[UNK]"),
    );
    let rebuilt = tokenizers::Tokenizer::from_str(&json.to_string()).unwrap();
    let long_word = "pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3);
    let texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Héllo, WORLD! Ünïcödé café naïve résumé — déjà vu; Øresund Straße",
        "Don't stop-believing: it's 3.14159 or 42% (approx.) #hashtag @user",
        "中文文本和日本語のテキスト、한국어 텍스트",
        "emoji 🙂👍🏽 and symbols ☃ ™ © ½ ∑",
        "[CLS] [SEP] [MASK] [UNK] [PAD] [unused0] [unused17] typed as text",
        "tab\tnew\nline\r\n  multiple   spaces\u{00a0}nbsp\u{200b}zero-width",
        long_word.as_str(),
        "unbelievably antidisestablishmentarianism supercalifragilistic",
        "",
    ];
    for t in texts {
        let a = original.encode(t, true).unwrap();
        let b = rebuilt.encode(t, true).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{t:?}");
    }
}
