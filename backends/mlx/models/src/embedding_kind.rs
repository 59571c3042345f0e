//! Is a model on disk an embedding model? Answered cheaply (a `config.json` or the GGUF
//! key/value header, never the tensors), for the MLX backend's capability report
//! (`embedding` vs `completion`) and its embed-request gate, which reach it through
//! `ollmlx_engine::embed::is_embedding_dir`. [`crate::load`] applies the same rules when it
//! picks the model class.
//!
//! Embedding models are: encoder families ([`registry::Family::is_embedding`]: BERT,
//! nomic-bert); llama-family decoders with sentence-transformers files next to `config.json`;
//! llama-family GGUF files with an `<arch>.pooling_type` key (what Ollama's capability check
//! looks at too).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::Value;

use crate::pooling::has_sentence_transformers_files;
use crate::registry::{self, Family};

/// See the module docs. `path`: a safetensors directory, a GGUF file, or a directory holding
/// `model.gguf` (and no `config.json`).
pub fn is_embedding_model(path: &Path) -> bool {
    if path.is_dir() {
        if let Some(cfg) = std::fs::read_to_string(path.join("config.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        {
            return hf_is_embedding(&cfg, path);
        }
        let gguf = path.join(crate::GGUF_IN_DIR);
        return gguf.is_file() && gguf_is_embedding(&gguf);
    }
    path.is_file() && gguf_is_embedding(path)
}

fn hf_is_embedding(cfg: &Value, dir: &Path) -> bool {
    let fam = cfg["architectures"][0]
        .as_str()
        .and_then(registry::family)
        .or_else(|| cfg["model_type"].as_str().and_then(registry::family));
    match fam {
        Some(f) if f.is_embedding() => true,
        Some(Family::Llama) => has_sentence_transformers_files(dir),
        _ => false,
    }
}

fn gguf_is_embedding(path: &Path) -> bool {
    let Some((arch, pooling)) = peek_gguf(path) else {
        return false;
    };
    match registry::family(&arch) {
        Some(f) if f.is_embedding() => true,
        Some(Family::Llama) => pooling.is_some(),
        _ => false,
    }
}

/// `general.architecture` and `<arch>.pooling_type` from a GGUF header (`None`: not a readable
/// GGUF v2/v3 file).
pub fn peek_gguf(path: &Path) -> Option<(String, Option<i64>)> {
    let mut r = BufReader::new(File::open(path).ok()?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).ok()?;
    if &magic != b"GGUF" || !(2..=3).contains(&read_u32(&mut r)?) {
        return None;
    }
    let _tensors = read_u64(&mut r)?;
    let kvs = read_u64(&mut r)?;
    let mut arch: Option<String> = None;
    let mut pooling: Vec<(String, i64)> = Vec::new();
    for _ in 0..kvs {
        let key = read_string(&mut r)?;
        let ty = read_u32(&mut r)?;
        if key == "general.architecture" && ty == TYPE_STRING {
            arch = Some(read_string(&mut r)?);
        } else if key.ends_with(".pooling_type") && ty != TYPE_STRING && ty != TYPE_ARRAY {
            pooling.push((key, read_int(&mut r, ty)?));
        } else {
            skip_value(&mut r, ty)?;
        }
    }
    let arch = arch?;
    let want = format!("{arch}.pooling_type");
    let p = pooling
        .into_iter()
        .find(|(k, _)| *k == want)
        .map(|(_, v)| v);
    Some((arch, p))
}

const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

/// Bytes of one scalar of GGUF value type `ty` (`None`: string, array or unknown).
fn scalar_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn read_u32(r: &mut impl Read) -> Option<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> Option<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

fn read_string(r: &mut impl Read) -> Option<String> {
    let n = read_u64(r)?;
    if n > 1 << 20 {
        return None;
    }
    let mut b = vec![0u8; n as usize];
    r.read_exact(&mut b).ok()?;
    String::from_utf8(b).ok()
}

/// An integer scalar of type `ty` (floats truncated).
fn read_int(r: &mut impl Read, ty: u32) -> Option<i64> {
    let mut b = [0u8; 8];
    let n = scalar_size(ty)? as usize;
    r.read_exact(&mut b[..n]).ok()?;
    Some(match ty {
        0 | 7 => b[0] as i64,
        1 => b[0] as i8 as i64,
        2 => u16::from_le_bytes([b[0], b[1]]) as i64,
        3 => i16::from_le_bytes([b[0], b[1]]) as i64,
        4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        5 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        6 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        10 | 11 => i64::from_le_bytes(b),
        12 => f64::from_le_bytes(b) as i64,
        _ => return None,
    })
}

fn skip_value<R: Read + Seek>(r: &mut R, ty: u32) -> Option<()> {
    match ty {
        TYPE_STRING => {
            let n = read_u64(r)?;
            r.seek(SeekFrom::Current(i64::try_from(n).ok()?)).ok()?;
        }
        TYPE_ARRAY => {
            let elem = read_u32(r)?;
            let n = read_u64(r)?;
            match scalar_size(elem) {
                Some(s) => {
                    let bytes = n.checked_mul(s)?;
                    r.seek(SeekFrom::Current(i64::try_from(bytes).ok()?)).ok()?;
                }
                None if elem == TYPE_STRING => {
                    for _ in 0..n {
                        let len = read_u64(r)?;
                        r.seek(SeekFrom::Current(i64::try_from(len).ok()?)).ok()?;
                    }
                }
                None => return None, // nested arrays do not occur in model files
            }
        }
        _ => {
            let s = scalar_size(ty)?;
            r.seek(SeekFrom::Current(s as i64)).ok()?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with the given key/values (no tensors).
    fn header(kvs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend((kvs.len() as u64).to_le_bytes());
        for (k, ty, v) in kvs {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
            b.extend(ty.to_le_bytes());
            b.extend(v);
        }
        b
    }

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    fn strings(items: &[&str]) -> Vec<u8> {
        let mut v = TYPE_STRING.to_le_bytes().to_vec();
        v.extend((items.len() as u64).to_le_bytes());
        for s in items {
            v.extend(string(s));
        }
        v
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("ollmlx-peek-{name}-{}.gguf", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn gguf_pooling_type_marks_a_decoder_as_an_embedding_model() {
        let with = write(
            "qwen3emb",
            &header(&[
                ("general.architecture", TYPE_STRING, string("qwen3")),
                ("tokenizer.ggml.tokens", TYPE_ARRAY, strings(&["a", "bc"])),
                ("qwen3.context_length", 4, 32768u32.to_le_bytes().to_vec()),
                ("qwen3.pooling_type", 4, 3u32.to_le_bytes().to_vec()),
            ]),
        );
        assert_eq!(peek_gguf(&with), Some(("qwen3".to_string(), Some(3))));
        assert!(is_embedding_model(&with));
        let without = write(
            "qwen3chat",
            &header(&[("general.architecture", TYPE_STRING, string("qwen3"))]),
        );
        assert_eq!(peek_gguf(&without), Some(("qwen3".to_string(), None)));
        assert!(!is_embedding_model(&without));
        let bert = write(
            "bert",
            &header(&[("general.architecture", TYPE_STRING, string("nomic-bert"))]),
        );
        assert!(is_embedding_model(&bert));
        let junk = write("junk", b"not a gguf file at all");
        assert!(!is_embedding_model(&junk));
        // A runner directory holding `model.gguf` (and no config.json) is judged by that file.
        let dir = std::env::temp_dir().join(format!("ollmlx-peek-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&with, dir.join(crate::GGUF_IN_DIR)).unwrap();
        assert!(is_embedding_model(&dir));
        std::fs::copy(&without, dir.join(crate::GGUF_IN_DIR)).unwrap();
        assert!(!is_embedding_model(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        for p in [with, without, bert, junk] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn decoder_dirs_are_embedding_models_only_with_sentence_transformers_files() {
        let dir = std::env::temp_dir().join(format!("ollmlx-kind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3"}"#,
        )
        .unwrap();
        assert!(!is_embedding_model(&dir));
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        std::fs::write(
            dir.join("1_Pooling/config.json"),
            r#"{"pooling_mode_lasttoken":true}"#,
        )
        .unwrap();
        assert!(is_embedding_model(&dir));
        std::fs::write(
            dir.join("config.json"),
            r#"{"architectures":["NomicBertModel"],"model_type":"nomic_bert"}"#,
        )
        .unwrap();
        assert!(is_embedding_model(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
