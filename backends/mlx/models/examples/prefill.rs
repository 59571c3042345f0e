//! Prefill timing at the model layer (no engine, no tokenizer): one forward pass over `L`
//! token ids from an empty cache, logits for the last position only, as the engine's prefill
//! does, for `rows` sequences at once (`[rows, L]`, default 1).
//! `cargo run --release -p ollmlx-models --example prefill -- <model> [L] [reps] [rows]`;
//! `OLLMLX_CAUSAL_BLOCK=0` turns the CPU's query-block attention off for A/B runs.

use std::path::PathBuf;
use std::time::Instant;

use mlx_rs::Array;
use ollmlx_models::{load, LoadOptions, LogitsMode};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        return eprintln!("usage: prefill <model.gguf | model dir> [tokens] [reps]");
    };
    let l: i32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(512);
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let rows: i32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let cpu = mlx_rs::Device::try_default()
        .and_then(|d| d.get_type())
        .is_ok_and(|t| matches!(t, mlx_rs::DeviceType::Cpu));
    let loaded = match load(&path, LoadOptions::for_device(cpu)) {
        Ok(m) => m,
        Err(e) => return eprintln!("load: {e}"),
    };
    let model = loaded.model;
    let vocab = model.info().vocab_size;
    // Token ids spread over the vocabulary (what they are does not change the work).
    let ids: Vec<i32> = (0..l * rows).map(|i| (i * 7919 + 11) % vocab).collect();
    let tokens = Array::from_slice(&ids, &[rows, l]);
    for rep in 0..=reps {
        let mut caches = model.new_caches();
        let t = Instant::now();
        let logits = match model.forward(&tokens, &mut caches, LogitsMode::Last) {
            Ok(x) => x,
            Err(e) => return eprintln!("forward: {e}"),
        };
        if let Err(e) = logits.eval() {
            return eprintln!("eval: {e}");
        }
        let s = t.elapsed().as_secs_f64();
        let what = if rep == 0 { "warm-up" } else { "run" };
        println!(
            "{what} {rep}: {rows} x {l} tokens in {:.1} ms = {:.1} tok/s",
            s * 1e3,
            (l * rows) as f64 / s
        );
    }
}
