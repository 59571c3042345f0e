//! SentencePiece GGUF vocabularies: merges by score, byte fallback, `▁` spaces, the space
//! prefix, special tokens; and the real Gemma 3 vocabulary when its GGUF is on disk.

use std::collections::HashSet;
use std::str::FromStr;

use super::super::Tokenizer;
use super::*;

/// `<unk> <s> </s>`, 256 byte tokens, then pieces scored by rank (higher = merged first).
fn toy(add_space_prefix: bool) -> (Tokenizer, Vec<String>) {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let pieces = [
        "▁", "h", "e", "l", "o", "w", "r", "d", "el", "ll", "ell", "hell", "hello", "▁hello", "▁w",
        "or", "▁wor", "▁world", "ld",
    ];
    for p in pieces {
        tokens.push(p.to_string());
        types.push(1);
    }
    tokens.push("<start_of_turn>".into());
    types.push(3);
    tokens.push("\n\n".into());
    types.push(4);
    // later pieces in the list are longer merges: give them higher scores than their parts,
    // except "ll" which must lose to "el" (score below it)
    let scores: Vec<i64> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| match t.as_str() {
            "ll" => -1000,
            _ => i as i64,
        })
        .collect();
    let doc = spm_tokenizer_json(&tokens, &scores, &types, add_space_prefix, Some(0));
    let inner = tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap();
    let t = Tokenizer {
        inner,
        bos_id: Some(1),
        bos_token: "<s>".into(),
        eos_token: "</s>".into(),
        eos_ids: HashSet::from([2]),
        add_bos: true,
    };
    (t, tokens)
}

fn pieces(t: &Tokenizer, tokens: &[String], text: &str) -> Vec<String> {
    t.encode(text)
        .unwrap()
        .iter()
        .map(|&i| tokens[i as usize].clone())
        .collect()
}

#[test]
fn spm_merges_by_score_with_space_prefix_and_round_trips() {
    let (t, tokens) = toy(true);
    assert_eq!(pieces(&t, &tokens, "hello world"), ["▁hello", "▁world"]);
    assert_eq!(
        t.decode(&t.encode("hello world").unwrap()).unwrap(),
        "hello world"
    );
    // "ell" is built from "el"+"l" because "el" outranks "ll"
    assert_eq!(pieces(&t, &tokens, "well"), ["▁w", "ell"]);
}

#[test]
fn spm_without_space_prefix_starts_mid_word() {
    let (t, tokens) = toy(false);
    assert_eq!(pieces(&t, &tokens, "hello world"), ["hello", "▁world"]);
    assert_eq!(
        t.decode(&t.encode("hello world").unwrap()).unwrap(),
        "hello world"
    );
}

#[test]
fn characters_outside_the_vocabulary_fall_back_to_byte_tokens() {
    let (t, tokens) = toy(false);
    assert_eq!(pieces(&t, &tokens, "hé"), ["h", "<0xC3>", "<0xA9>"]);
    assert_eq!(t.decode(&t.encode("hé€d").unwrap()).unwrap(), "hé€d");
}

#[test]
fn control_and_user_defined_tokens_encode_as_one_id() {
    let (t, tokens) = toy(false);
    let ids = t.encode("<start_of_turn>hello\n\nworld").unwrap();
    let p: Vec<&str> = ids.iter().map(|&i| tokens[i as usize].as_str()).collect();
    assert_eq!(p[0], "<start_of_turn>");
    assert!(p.contains(&"\n\n"), "{p:?}");
    // control tokens are skipped on decode, user-defined ones are text
    assert_eq!(t.decode(&ids).unwrap(), "hello\n\nworld");
}

/// The tokenizer KVs of a GGUF file (little-endian v3), parsed just far enough for this test.
fn gguf_vocab(path: &std::path::Path) -> (Vec<String>, Vec<i64>, Vec<i64>, bool) {
    use std::io::Read;
    let mut r = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut b8 = [0u8; 8];
    let mut u64_ = |r: &mut std::io::BufReader<std::fs::File>| {
        r.read_exact(&mut b8).unwrap();
        u64::from_le_bytes(b8)
    };
    let mut head = [0u8; 8];
    r.read_exact(&mut head).unwrap();
    let _n_tensors = u64_(&mut r);
    let n_kv = u64_(&mut r);
    fn string(r: &mut impl Read) -> String {
        let mut n = [0u8; 8];
        r.read_exact(&mut n).unwrap();
        let mut s = vec![0u8; u64::from_le_bytes(n) as usize];
        r.read_exact(&mut s).unwrap();
        String::from_utf8_lossy(&s).into_owned()
    }
    fn scalar(r: &mut impl Read, t: u32) -> f64 {
        let size = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            _ => 8,
        };
        let mut b = [0u8; 8];
        r.read_exact(&mut b[..size]).unwrap();
        match t {
            0 | 7 => b[0] as f64,
            1 => b[0] as i8 as f64,
            4 => u32::from_le_bytes(b[..4].try_into().unwrap()) as f64,
            5 => i32::from_le_bytes(b[..4].try_into().unwrap()) as f64,
            6 => f32::from_le_bytes(b[..4].try_into().unwrap()) as f64,
            2 => u16::from_le_bytes(b[..2].try_into().unwrap()) as f64,
            3 => i16::from_le_bytes(b[..2].try_into().unwrap()) as f64,
            12 => f64::from_le_bytes(b),
            _ => u64::from_le_bytes(b) as f64,
        }
    }
    let (mut tokens, mut scores, mut types, mut prefix) = (vec![], vec![], vec![], true);
    for _ in 0..n_kv {
        let key = string(&mut r);
        let mut t4 = [0u8; 4];
        r.read_exact(&mut t4).unwrap();
        match u32::from_le_bytes(t4) {
            8 => {
                string(&mut r);
            }
            9 => {
                r.read_exact(&mut t4).unwrap();
                let et = u32::from_le_bytes(t4);
                let n = u64_(&mut r);
                for _ in 0..n {
                    if et == 8 {
                        let s = string(&mut r);
                        if key == "tokenizer.ggml.tokens" {
                            tokens.push(s);
                        }
                    } else {
                        let v = scalar(&mut r, et);
                        match key.as_str() {
                            "tokenizer.ggml.scores" => scores.push(v as i64),
                            "tokenizer.ggml.token_type" => types.push(v as i64),
                            _ => {}
                        }
                    }
                }
            }
            t => {
                let v = scalar(&mut r, t);
                if key == "tokenizer.ggml.add_space_prefix" {
                    prefix = v != 0.0;
                }
            }
        }
    }
    (tokens, scores, types, prefix)
}

#[test]
fn real_gemma3_vocabulary_tokenizes_a_sentence_plausibly() {
    let path = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../.ollmlx-cache/models/gemma-3-270m-q4_k_m.gguf"
    ));
    if !path.is_file() {
        eprintln!("SKIPPED real_gemma3_vocabulary_tokenizes_a_sentence_plausibly: no {} (scripts/fetch-models.sh)", path.display());
        return;
    }
    let (tokens, scores, types, prefix) = gguf_vocab(&path);
    assert_eq!(tokens.len(), 262_144);
    assert_eq!(tokens[2], "<bos>");
    assert!(!prefix, "Gemma GGUFs set add_space_prefix false");
    let doc = spm_tokenizer_json(&tokens, &scores, &types, prefix, Some(3));
    let inner = tokenizers::Tokenizer::from_str(&doc.to_string()).unwrap();
    let text = "<start_of_turn>user\nThe quick brown fox jumps over the lazy dog. Ünïcödé ✓ 12345<end_of_turn>\n";
    let ids = inner.encode(text, false).unwrap().get_ids().to_vec();
    let p: Vec<&str> = ids.iter().map(|&i| tokens[i as usize].as_str()).collect();
    eprintln!("{} ids: {:?}", ids.len(), &p[..12.min(p.len())]);
    assert_eq!(p[0], "<start_of_turn>");
    assert_eq!(
        &p[1..8],
        ["user", "\n", "The", "▁quick", "▁brown", "▁fox", "▁jumps"]
    );
    assert_eq!(ids[0], 105);
    assert_eq!(*ids.last().unwrap(), 107); // "\n" is a user-defined token
    let back = inner.decode(&ids, false).unwrap();
    assert_eq!(back, text);
}
