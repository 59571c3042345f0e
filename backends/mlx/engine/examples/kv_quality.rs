//! Quality cost of KV-cache quantization: teacher-forced decoding of a fixed text with an
//! unquantized, an 8-bit and a 4-bit KV cache; reports top-1 agreement with the unquantized run
//! and the logit deltas. `cargo run --release -p ollmlx-engine --example kv_quality [GGUF] [N]`.

use std::path::PathBuf;

use mlx_rs::{Array, Dtype};
use ollmlx_engine::tokenizer::Tokenizer;
use ollmlx_models::{GgufMeta, KvQuant, LoadOptions, LogitsMode};

const TEXT: &str = "The history of the printing press begins in the fifteenth century, when \
Johannes Gutenberg combined movable metal type, oil-based ink and a wooden screw press. Before \
that, books were copied by hand in monasteries, and a single volume could take months to \
finish. The new method spread quickly through Europe: within fifty years, presses operated in \
more than two hundred cities, and millions of books had been printed. Cheaper books meant that \
more people learned to read, scientists could share their results, and new ideas travelled \
faster than ever before. Historians often describe the printing press as one of the inventions \
that shaped the modern world, together with the compass, gunpowder and the steam engine. \
Today, digital publishing plays a similar role, letting anyone share a text with readers \
around the globe in seconds.";

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(160);
    mlx_rs::Device::set_default(&mlx_rs::Device::cpu());
    let loaded = ollmlx_models::load(&path, LoadOptions::for_device(true)).expect("load");
    let tok = Tokenizer::from_gguf(&GgufMeta::new(loaded.gguf.as_ref().unwrap())).unwrap();
    let model = loaded.model;
    let ids = tok.encode(TEXT).unwrap();
    let prefix = 16.min(ids.len());
    let n = n.min(ids.len() - prefix);
    // Logits (f32 rows) after each of the n teacher-forced steps.
    let run = |q: Option<KvQuant>| -> Vec<Vec<f32>> {
        let mut caches = model.new_caches();
        caches.iter_mut().for_each(|c| c.set_quant(q));
        let input = |t: &[u32]| {
            let v: Vec<i32> = t.iter().map(|&x| x as i32).collect();
            Array::from_slice(&v, &[1, v.len() as i32])
        };
        let mut rows = Vec::new();
        let mut l = model
            .forward(&input(&ids[..prefix]), &mut caches, LogitsMode::Last)
            .unwrap();
        for i in 0..n {
            let r = l.as_dtype(Dtype::Float32).unwrap();
            rows.push(r.as_slice::<f32>().to_vec());
            l = model
                .forward(
                    &input(&ids[prefix + i..prefix + i + 1]),
                    &mut caches,
                    LogitsMode::Last,
                )
                .unwrap();
        }
        rows
    };
    let argmax = |r: &[f32]| {
        r.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap()
    };
    let base = run(None);
    println!(
        "model {} | {n} teacher-forced positions after a {prefix}-token prefill",
        path.display()
    );
    for (name, q) in [
        (
            "q8_0 (8-bit, group 32)",
            KvQuant {
                bits: 8,
                group_size: 32,
            },
        ),
        (
            "q4_0 (4-bit, group 32)",
            KvQuant {
                bits: 4,
                group_size: 32,
            },
        ),
    ] {
        let got = run(Some(q));
        let mut agree = 0;
        let (mut max_d, mut sum_d, mut count) = (0f32, 0f64, 0usize);
        let mut top1_delta = 0f64;
        for (a, b) in base.iter().zip(&got) {
            if argmax(a) == argmax(b) {
                agree += 1;
            }
            for (x, y) in a.iter().zip(b) {
                let d = (x - y).abs();
                max_d = max_d.max(d);
                sum_d += d as f64;
                count += 1;
            }
            let t = argmax(a);
            top1_delta += (a[t] - b[t]).abs() as f64;
        }
        println!(
            "{name}: top-1 agreement {agree}/{} ({:.1}%) | mean |dlogit| {:.4} | max |dlogit| {:.3} | mean |dlogit| at the reference top-1 {:.4}",
            base.len(),
            100.0 * agree as f64 / base.len() as f64,
            sum_d / count as f64,
            max_d,
            top1_delta / base.len() as f64
        );
    }
}
