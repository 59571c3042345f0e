//! GGUF encoders (llama.cpp `bert` and `nomic-bert` files, as Ollama ships all-minilm,
//! mxbai-embed-large and nomic-embed-text): tensor names mapped onto the Hugging Face names
//! [`crate::bert`] and [`crate::nomic_bert`] load, and their hyper-parameters read from the
//! `<arch>.*` metadata.
//!
//! Sits inside [`crate::load_gguf`], between [`Weights::from_gguf`] (which already maps the
//! llama-style names: `token_embd` → `model.embed_tokens`, `blk.N.attn_q` →
//! `model.layers.N.self_attn.q_proj`, ...) and the encoder constructors.

use crate::bert::BertConfig;
use crate::config::GgufMeta;
use crate::error::{ModelError, Result};
use crate::nomic_bert::NomicBertConfig;
use crate::weights::Weights;

/// `(name after Weights::from_gguf, Hugging Face name)` for tensors outside the blocks.
type Table = &'static [(&'static str, &'static str)];

/// llama.cpp `bert` → Hugging Face `BertModel`.
const BERT_GLOBAL: Table = &[
    ("model.embed_tokens", "embeddings.word_embeddings"),
    ("position_embd", "embeddings.position_embeddings"),
    ("token_types", "embeddings.token_type_embeddings"),
    ("token_embd_norm", "embeddings.LayerNorm"),
];
const BERT_LAYER: Table = &[
    ("self_attn.q_proj", "attention.self.query"),
    ("self_attn.k_proj", "attention.self.key"),
    ("self_attn.v_proj", "attention.self.value"),
    ("self_attn.o_proj", "attention.output.dense"),
    ("attn_output_norm", "attention.output.LayerNorm"),
    ("mlp.up_proj", "intermediate.dense"),
    ("mlp.down_proj", "output.dense"),
    ("layer_output_norm", "output.LayerNorm"),
];

/// llama.cpp `nomic-bert` → Hugging Face `NomicBertModel` (`fc11` is the up projection, `fc12`
/// the SiLU-gated one, as llama.cpp's converter maps them).
const NOMIC_GLOBAL: Table = &[
    ("model.embed_tokens", "embeddings.word_embeddings"),
    ("token_types", "embeddings.token_type_embeddings"),
    ("token_embd_norm", "emb_ln"),
];
const NOMIC_LAYER: Table = &[
    ("attn_qkv", "attn.Wqkv"),
    ("self_attn.o_proj", "attn.out_proj"),
    ("attn_output_norm", "norm1"),
    ("mlp.up_proj", "mlp.fc11"),
    ("mlp.gate_proj", "mlp.fc12"),
    ("mlp.down_proj", "mlp.fc2"),
    ("layer_output_norm", "norm2"),
];

/// The Hugging Face name of one tensor, or `None` when the tables do not know it.
fn hf_name(name: &str, global: Table, layer: Table, layer_prefix: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    if let Some((_, to)) = global.iter().find(|(from, _)| *from == stem) {
        return Some(format!("{to}.{suffix}"));
    }
    let rest = stem
        .strip_prefix("model.layers.")
        .or_else(|| stem.strip_prefix("blk."))?;
    let (n, part) = rest.split_once('.')?;
    n.parse::<u32>().ok()?;
    let (_, to) = layer.iter().find(|(from, _)| *from == part)?;
    Some(format!("{layer_prefix}.{n}.{to}.{suffix}"))
}

fn rename(w: &mut Weights, global: Table, layer: Table, layer_prefix: &str) {
    let map = w.map_mut();
    let names: Vec<String> = map.keys().cloned().collect();
    for name in names {
        if let Some(to) = hf_name(&name, global, layer, layer_prefix) {
            if let Some(a) = map.remove(&name) {
                map.insert(to, a);
            }
        }
    }
}

/// Rename the tensors of a GGUF `bert` file to `BertModel` names.
pub fn rename_bert(w: &mut Weights) {
    rename(w, BERT_GLOBAL, BERT_LAYER, "encoder.layer");
}

/// Rename the tensors of a GGUF `nomic-bert` file to `NomicBertModel` names.
pub fn rename_nomic_bert(w: &mut Weights) {
    rename(w, NOMIC_GLOBAL, NOMIC_LAYER, "encoder.layers");
}

fn req(meta: &GgufMeta<'_>, key: &str) -> Result<i32> {
    meta.number(key)?
        .map(|v| v as i32)
        .ok_or_else(|| ModelError::MissingConfig(key.to_string()))
}

fn vocab(meta: &GgufMeta<'_>, arch: &str) -> Result<i32> {
    Ok(match meta.number(&format!("{arch}.vocab_size"))? {
        Some(v) => v as i32,
        None => meta
            .strings("tokenizer.ggml.tokens")?
            .map_or(0, |t| t.len() as i32),
    })
}

/// The `<arch>.pooling_type` value, when the file has one.
pub fn pooling_type(meta: &GgufMeta<'_>, arch: &str) -> Result<Option<i64>> {
    Ok(meta
        .number(&format!("{arch}.pooling_type"))?
        .map(|v| v as i64))
}

impl BertConfig {
    /// Read the `bert.*` keys of a GGUF file (llama.cpp's BERT converter).
    pub fn from_gguf(meta: &GgufMeta<'_>, arch: &str) -> Result<Self> {
        let k = |s: &str| format!("{arch}.{s}");
        Ok(BertConfig {
            hidden_size: req(meta, &k("embedding_length"))?,
            num_layers: req(meta, &k("block_count"))?,
            num_heads: req(meta, &k("attention.head_count"))?,
            intermediate_size: req(meta, &k("feed_forward_length"))?,
            max_position_embeddings: meta.number(&k("context_length"))?.map_or(512, |v| v as i32),
            layer_norm_eps: meta
                .number(&k("attention.layer_norm_epsilon"))?
                .unwrap_or(1e-12) as f32,
            type_vocab_size: 2,
            vocab_size: vocab(meta, arch)?,
            // llama.cpp runs BERT with ggml's tanh GELU; the checkpoints were trained with the
            // exact one, which is what the Hugging Face path computes too.
            gelu_tanh: false,
        })
    }
}

impl NomicBertConfig {
    /// Read the `nomic-bert.*` keys of a GGUF file (llama.cpp's NomicBertModel converter:
    /// rotary over the whole head, NeoX layout, SwiGLU).
    pub fn from_gguf(meta: &GgufMeta<'_>, arch: &str) -> Result<Self> {
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = req(meta, &k("embedding_length"))?;
        let heads = req(meta, &k("attention.head_count"))?;
        Ok(NomicBertConfig {
            hidden_size: hidden,
            num_layers: req(meta, &k("block_count"))?,
            num_heads: heads,
            intermediate_size: req(meta, &k("feed_forward_length"))?,
            context_length: meta
                .number(&k("context_length"))?
                .map_or(2048, |v| v as i32),
            layer_norm_eps: meta
                .number(&k("attention.layer_norm_epsilon"))?
                .unwrap_or(1e-12) as f32,
            rope_base: meta.number(&k("rope.freq_base"))?.unwrap_or(1000.0) as f32,
            rope_dims: hidden / heads.max(1),
            rope_traditional: false,
            vocab_size: vocab(meta, arch)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::gguf_to_hf_name;

    fn to_bert(gguf: &str) -> Option<String> {
        hf_name(
            &gguf_to_hf_name(gguf),
            BERT_GLOBAL,
            BERT_LAYER,
            "encoder.layer",
        )
    }

    fn to_nomic(gguf: &str) -> Option<String> {
        hf_name(
            &gguf_to_hf_name(gguf),
            NOMIC_GLOBAL,
            NOMIC_LAYER,
            "encoder.layers",
        )
    }

    #[test]
    fn llama_cpp_bert_names_map_to_bert_model_names() {
        for (g, h) in [
            ("token_embd.weight", "embeddings.word_embeddings.weight"),
            (
                "position_embd.weight",
                "embeddings.position_embeddings.weight",
            ),
            (
                "token_types.weight",
                "embeddings.token_type_embeddings.weight",
            ),
            ("token_embd_norm.bias", "embeddings.LayerNorm.bias"),
            (
                "blk.3.attn_q.weight",
                "encoder.layer.3.attention.self.query.weight",
            ),
            (
                "blk.0.attn_v.bias",
                "encoder.layer.0.attention.self.value.bias",
            ),
            (
                "blk.1.attn_output.weight",
                "encoder.layer.1.attention.output.dense.weight",
            ),
            (
                "blk.1.attn_output_norm.weight",
                "encoder.layer.1.attention.output.LayerNorm.weight",
            ),
            (
                "blk.2.ffn_up.weight",
                "encoder.layer.2.intermediate.dense.weight",
            ),
            ("blk.2.ffn_down.bias", "encoder.layer.2.output.dense.bias"),
            (
                "blk.2.layer_output_norm.bias",
                "encoder.layer.2.output.LayerNorm.bias",
            ),
        ] {
            assert_eq!(to_bert(g).as_deref(), Some(h), "{g}");
        }
        assert_eq!(to_bert("cls.output.weight"), None);
    }

    #[test]
    fn llama_cpp_nomic_bert_names_map_to_nomic_bert_model_names() {
        for (g, h) in [
            ("token_embd.weight", "embeddings.word_embeddings.weight"),
            ("token_embd_norm.weight", "emb_ln.weight"),
            ("blk.0.attn_qkv.weight", "encoder.layers.0.attn.Wqkv.weight"),
            (
                "blk.0.attn_output.weight",
                "encoder.layers.0.attn.out_proj.weight",
            ),
            ("blk.0.attn_output_norm.bias", "encoder.layers.0.norm1.bias"),
            ("blk.0.ffn_up.weight", "encoder.layers.0.mlp.fc11.weight"),
            ("blk.0.ffn_gate.weight", "encoder.layers.0.mlp.fc12.weight"),
            ("blk.0.ffn_down.weight", "encoder.layers.0.mlp.fc2.weight"),
            (
                "blk.0.layer_output_norm.weight",
                "encoder.layers.0.norm2.weight",
            ),
        ] {
            assert_eq!(to_nomic(g).as_deref(), Some(h), "{g}");
        }
    }
}
