//! A real K-quant GGUF (Gemma 3 270M Q4_K_M, 253 MB) through create: the stored blob has only
//! types MLX loads, metadata identical but `general.file_type`, and each converted tensor within
//! Q8_0's rounding of the K-quant values (the max errors are printed; docs/store.md quotes them).
//! Skips loudly when the file is absent (`scripts/fetch-models.sh` fetches it, or point
//! `OLLMLX_TEST_GEMMA_GGUF` at it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use futures::StreamExt;
use ollmlx_infer::{Backend, ManageRequest};
use ollmlx_store::gguf::rewrite::Source;
use ollmlx_store::gguf::{GgufValue, TensorInfo};
use ollmlx_store::name::Name;
use ollmlx_store::quantize::ggml;
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;

fn gemma_path() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GEMMA_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.ollmlx-cache/models/gemma-3-270m-q4_k_m.gguf"
            ))
        });
    p.is_file().then_some(p)
}

fn values(f: &mut File, src: &Source, t: &TensorInfo) -> Vec<f32> {
    let size = ggml::byte_size(t.kind, t.elements()).unwrap() as usize;
    let mut raw = vec![0u8; size];
    f.seek(SeekFrom::Start(src.data_start + t.offset)).unwrap();
    f.read_exact(&mut raw).unwrap();
    let mut out = Vec::new();
    assert!(ggml::dequantize(t.kind, &raw, &mut out), "{}", t.name);
    out
}

#[tokio::test]
async fn real_gemma3_q4_k_m_imports_as_q8_0_within_rounding() {
    let Some(path) = gemma_path() else {
        eprintln!(
            "SKIPPED real_gemma3_q4_k_m_imports_as_q8_0_within_rounding: no GGUF at \
             OLLMLX_TEST_GEMMA_GGUF or .ollmlx-cache/models/gemma-3-270m-q4_k_m.gguf \
             (scripts/fetch-models.sh)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let (digest, _, _) = store
        .blobs()
        .put_reader(&mut File::open(&path).unwrap(), None)
        .unwrap();
    let backend = StoreBackend::new(store.clone());
    let req: wire::CreateRequest = serde_json::from_value(serde_json::json!({
        "model": "gemma3:270m", "files": {"gemma-3-270m-q4_k_m.gguf": digest}
    }))
    .unwrap();
    let started = std::time::Instant::now();
    let mut s = backend
        .manage(ManageRequest::Create(req.into()))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    while let Some(p) = s.next().await {
        statuses.push(p.unwrap().status);
    }
    eprintln!("create took {:?}", started.elapsed());
    assert!(statuses.contains(&"quantizing Q4_K_M model to Q8_0".to_string()));
    assert_eq!(statuses.last().map(String::as_str), Some("success"));

    let m = store
        .read_manifest(&Name::parse("gemma3:270m"))
        .unwrap()
        .unwrap();
    let new_path = store.blobs().path(&m.manifest.layers[0].digest).unwrap();
    let a = Source::scan(&path).unwrap();
    let b = Source::scan(&new_path).unwrap();
    assert_eq!(b.header.file_type(), "Q8_0");
    assert_eq!(a.header.kv.len(), b.header.kv.len());
    for ((ka, va), (kb, vb)) in a.header.kv.iter().zip(&b.header.kv) {
        assert_eq!(ka, kb);
        if ka != "general.file_type" {
            assert_eq!(va, vb, "{ka}");
        }
    }
    assert_eq!(b.header.get("general.file_type"), Some(&GgufValue::U32(7)));
    let (mut fa, mut fb) = (File::open(&path).unwrap(), File::open(&new_path).unwrap());
    let mut converted = 0;
    let (mut worst_abs, mut worst_rel) = (0f32, 0f32);
    for (ta, tb) in a.header.tensors.iter().zip(&b.header.tensors) {
        assert_eq!((&ta.name, &ta.shape), (&tb.name, &tb.shape));
        assert!(
            matches!(tb.kind, 0 | 1 | 2 | 3 | 8 | 30),
            "{} stored as {}",
            tb.name,
            tb.type_name()
        );
        if ta.kind == tb.kind {
            continue;
        }
        converted += 1;
        let (va, vb) = (values(&mut fa, &a, ta), values(&mut fb, &b, tb));
        let amax = va.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = va
            .iter()
            .zip(&vb)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        // Q8_0: half a step of the block's largest value / 127, plus f16 rounding of the scale
        assert!(
            err <= amax / 127.0,
            "{}: max err {err}, amax {amax}",
            ta.name
        );
        worst_abs = worst_abs.max(err);
        worst_rel = worst_rel.max(err / amax);
    }
    eprintln!(
        "converted {converted} of {} tensors; max abs error {worst_abs:e}, max error / tensor max |w| {worst_rel:e}; sizes {} -> {} bytes",
        a.header.tensors.len(),
        std::fs::metadata(&path).unwrap().len(),
        std::fs::metadata(&new_path).unwrap().len()
    );
    assert!(converted > 0);
}
