//! The vocabulary as raw bytes: what each token id appends to the output. Used by constrained
//! decoding (`format`, the token trie in [`crate::constrain`]) and by logprobs (`token`/`bytes`
//! of each reported token). Built once per loaded tokenizer on the engine thread, off the
//! per-token path.
//!
//! Byte-level BPE vocabularies (GPT-2 style: SmolLM2, Llama 3, Qwen) spell bytes with the GPT-2
//! byte→char table and are mapped back through its inverse; SentencePiece-style vocabularies with
//! byte fallback spell bytes as `<0xAB>` and spaces as `▁`. Added tokens are literal text;
//! special ones (`<|im_end|>`...) are flagged so that a grammar never allows them.

use std::collections::HashMap;

use crate::error::EngineError;

/// The bytes of every token id, plus which ids are special (control) tokens.
#[derive(Debug, Clone, Default)]
pub struct VocabBytes {
    /// `bytes[id]`: what the token contributes to the output (for special tokens: their text).
    pub bytes: Vec<Vec<u8>>,
    /// `special[id]`: a control token (never produced by a grammar; text skipped in output).
    pub special: Vec<bool>,
}

/// How a vocabulary spells bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// GPT-2 byte→unicode table (`Ġ` = space).
    ByteLevel,
    /// `▁` = space, `<0xAB>` = one raw byte.
    Metaspace,
}

impl VocabBytes {
    /// The byte table of a Hugging Face tokenizer.
    pub fn from_tokenizer(t: &tokenizers::Tokenizer) -> Result<Self, EngineError> {
        let decoder = t
            .get_decoder()
            .and_then(|d| serde_json::to_string(d).ok())
            .unwrap_or_default();
        let spelling = if decoder.contains("\"ByteLevel\"") {
            Spelling::ByteLevel
        } else if decoder.contains("\"ByteFallback\"") || decoder.contains("\"Metaspace\"") {
            Spelling::Metaspace
        } else {
            return Err(EngineError::InvalidRequest(
                "format is not supported for this tokenizer (unknown byte encoding)".into(),
            ));
        };
        let n = t.get_vocab_size(true);
        let added = t.get_added_tokens_decoder();
        let inverse = gpt2_inverse();
        let mut out = VocabBytes {
            bytes: vec![Vec::new(); n],
            special: vec![false; n],
        };
        for id in 0..n as u32 {
            let i = id as usize;
            if let Some(a) = added.get(&id) {
                out.bytes[i] = a.content.as_bytes().to_vec();
                out.special[i] = a.special;
                continue;
            }
            let Some(piece) = t.id_to_token(id) else {
                out.special[i] = true;
                continue;
            };
            out.bytes[i] = match spelling {
                Spelling::ByteLevel => piece
                    .chars()
                    .map(|c| inverse.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| piece.as_bytes().to_vec()),
                Spelling::Metaspace => metaspace_bytes(&piece),
            };
        }
        Ok(out)
    }

    /// Number of ids in the table.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes of `id` (empty for unknown ids).
    pub fn get(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], |b| b.as_slice())
    }
}

/// The inverse of GPT-2's byte→unicode table: printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100.. in byte order.
fn gpt2_inverse() -> HashMap<char, u8> {
    let mut m = HashMap::with_capacity(256);
    let mut next = 0u32;
    for b in 0u32..=255 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            next += 1;
            255 + next
        };
        if let Some(c) = char::from_u32(c) {
            m.insert(c, b as u8);
        }
    }
    m
}

fn metaspace_bytes(piece: &str) -> Vec<u8> {
    if let Some(hex) = piece
        .strip_prefix("<0x")
        .and_then(|s| s.strip_suffix('>'))
        .filter(|h| h.len() == 2)
    {
        if let Ok(b) = u8::from_str_radix(hex, 16) {
            return vec![b];
        }
    }
    piece.replace('\u{2581}', " ").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A byte-level tokenizer: all 256 byte tokens, `Ġ{` / `ĠHi` merges and one special token.
    pub(crate) fn byte_level_tokenizer() -> tokenizers::Tokenizer {
        let inverse = gpt2_inverse();
        let mut by_byte: Vec<(u8, char)> = inverse.iter().map(|(&c, &b)| (b, c)).collect();
        by_byte.sort();
        let mut vocab = serde_json::Map::new();
        for (b, c) in &by_byte {
            vocab.insert(c.to_string(), serde_json::json!(*b as u32));
        }
        vocab.insert("Ġ{".into(), serde_json::json!(256));
        vocab.insert("<|im_end|>".into(), serde_json::json!(257));
        let doc = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": 257, "content": "<|im_end|>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": false, "vocab": vocab, "merges": ["Ġ {"]}
        });
        tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap()
    }

    #[test]
    fn byte_level_pieces_map_back_to_raw_bytes() {
        let v = VocabBytes::from_tokenizer(&byte_level_tokenizer()).unwrap();
        assert_eq!(v.len(), 258);
        assert_eq!(v.get(b'{' as u32), b"{");
        assert_eq!(v.get(0), &[0u8]);
        assert_eq!(v.get(0xE2), &[0xE2u8]);
        assert_eq!(v.get(256), b" {");
        assert_eq!(v.get(257), b"<|im_end|>");
        assert!(v.special[257] && !v.special[256]);
    }

    #[test]
    fn metaspace_pieces_decode_spaces_and_byte_fallback() {
        assert_eq!(metaspace_bytes("\u{2581}the"), b" the");
        assert_eq!(metaspace_bytes("<0x0A>"), b"\n");
        assert_eq!(metaspace_bytes("<0xZZ>"), b"<0xZZ>");
    }
}
