//! The graph of one decode step at the model layer: how many MLX nodes a one-token forward
//! pass builds after a prompt, and how long building it takes on the host (no evaluation).
//! On a GPU every node is host work (and most are kernel launches) per generated token, so
//! this is the per-token overhead to keep down; compare with the reference engine's graph for
//! the same checkpoint (scripts/bench/decode_graph_ref.py).
//! `cargo run --release -p ollmlx-models --example decode_graph -- <model> [prompt] [gpu|cpu]
//! [rows] [dot]` (`gpu`: the GPU's weight layout and dtype, built here whatever the device;
//! `rows`: a padded batch of that many sequences with prompts of different lengths, as
//! continuous batching decodes them; `dot`: a Graphviz file of the step).

use std::path::PathBuf;
use std::time::Instant;

use mlx_rs::Array;
use ollmlx_models::{load, KvCache, LoadOptions, LogitsMode};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        return eprintln!(
            "usage: decode_graph <model dir | gguf> [prompt tokens] [gpu|cpu] [rows] [out.dot]"
        );
    };
    let l: i32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let gpu_layout = args.next().is_some_and(|s| s == "gpu");
    let rows: i32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let dot = args.next();
    let loaded = match load(&path, LoadOptions::for_device(!gpu_layout)) {
        Ok(m) => m,
        Err(e) => return eprintln!("load: {e}"),
    };
    let model = loaded.model;
    let vocab = model.info().vocab_size;
    // Row r's prompt is l - 3r tokens long, so rows after the first are left-padded.
    let mut per_row: Vec<Vec<KvCache>> = Vec::new();
    let mut firsts = Vec::new();
    for r in 0..rows {
        let n = (l - 3 * r).max(1);
        let ids: Vec<i32> = (0..n).map(|i| (i * 7919 + 11 + r) % vocab).collect();
        let mut caches = model.new_caches();
        let tokens = Array::from_slice(&ids, &[1, n]);
        match model.forward(&tokens, &mut caches, LogitsMode::Last) {
            Ok(x) => firsts.push(x),
            Err(e) => return eprintln!("prefill: {e}"),
        }
        per_row.push(caches);
    }
    let caches: Vec<KvCache> = (0..per_row[0].len())
        .map(|layer| {
            let parts: Vec<&KvCache> = per_row.iter().map(|c| &c[layer]).collect();
            KvCache::stack(&parts).expect("stack")
        })
        .collect();
    let logits = mlx_rs::ops::concatenate(&firsts, 0).expect("concatenate");
    let token = mlx_rs::ops::indexing::argmax_axis(&logits, -1, false).expect("argmax");
    token.eval().expect("eval");

    // Graph building alone, repeated on copies of the caches (nothing is evaluated).
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        let mut c = caches.clone();
        let l = model
            .forward(&token, &mut c, LogitsMode::Last)
            .expect("forward");
        let _next = mlx_rs::ops::indexing::argmax_axis(&l, -1, false).expect("argmax");
    }
    let build_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;

    let mut c = caches.clone();
    let step = model
        .forward(&token, &mut c, LogitsMode::Last)
        .expect("forward");
    let next = mlx_rs::ops::indexing::argmax_axis(&step, -1, false).expect("argmax");
    let text = graph_text(&next, dot.as_deref());
    let nodes = text.lines().filter(|s| s.contains("label")).count();
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text.lines().filter(|s| s.contains("label")) {
        if let Some(k) = line
            .split("label =\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            // Primitive nodes are labelled with the primitive's name; arrays with their shapes.
            *kinds.entry(k.to_string()).or_default() += 1;
        }
    }
    println!(
        "{} layout, {rows} row(s), prompt {l}: {nodes} nodes in one decode step, graph built \
         in {build_ms:.3} ms",
        if gpu_layout { "gpu" } else { "cpu" }
    );
    let mut top: Vec<_> = kinds.into_iter().collect();
    top.sort_by_key(|b| std::cmp::Reverse(b.1));
    for (k, n) in top.iter().take(25) {
        println!("  {n:5} {k}");
    }
}

/// `out`'s graph as Graphviz text (also kept at `keep` when given).
fn graph_text(out: &Array, keep: Option<&str>) -> String {
    let path = keep.map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("decode_graph_{}.dot", std::process::id()))
    });
    if let Err(e) = mlx_sys::graph::export_dot(&[out.as_ptr()], &path) {
        eprintln!("export: {e}");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if keep.is_none() {
        let _ = std::fs::remove_file(&path);
    }
    text
}
