//! Speculative vs plain greedy decode speed on SmolLM2-135M (CPU), `speculative::step` in a loop
//! vs one pipelined target forward per token; every speculative run must give the plain tokens.
//! Drafts: either the first layers of the target (built in memory, `tests/speculative_support`)
//! or a draft model directory (e.g. one distilled by `scripts/bench/draft.sh`), and a
//! prompt-lookup draft (no model: copies n-grams, isolates the cost/gain of `step` itself).
//! `cargo run --release -p ollmlx-engine --example speculative_bench -- [N] [DRAFT] [ROUNDS]`
//! (defaults 128, `0-5`, 2; DRAFT is a layer list such as `0-5` or a path; the GGUF from
//! `OLLMLX_TEST_GGUF` or `scripts/fetch-models.sh`).

#[path = "../tests/speculative_support/mod.rs"]
mod support;

use ollmlx_engine::sampler::{Sampler, SamplerConfig};
use ollmlx_engine::speculative::Draft;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(128);
    let draft_spec = args.next().unwrap_or_else(|| "0-5".into());
    let draft_dir = std::path::Path::new(&draft_spec).is_dir();
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let Some(path) = support::smollm2() else {
        return;
    };
    let (target, tok) = support::load_target(&path);
    let greedy = SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..Default::default()
    };
    for prompt in [
        "Count from 1 to 100 separated by commas.",
        "Repeat this paragraph three times: The quick brown fox jumps over the lazy dog. \
         The lazy dog sleeps in the sun.",
        "Describe a busy market in a small town on a Saturday morning.",
    ] {
        let ids = support::chat_ids(&tok, prompt);
        println!("prompt {prompt:?} ({} tokens), {n} new tokens", ids.len());
        let mut want = None;
        for round in 0..rounds {
            let (plain, dt) = support::plain_greedy(target.as_ref(), &ids, n);
            let plain_tps = n as f64 / dt.as_secs_f64();
            println!("  round {round} plain: {plain_tps:.2} tok/s");
            if want.is_none() {
                println!("    text: {:?}", tok.decode(&plain).unwrap());
                want = Some(plain);
            }
            let drafts: Vec<(String, Box<dyn ollmlx_models::Model>)> = vec![
                if draft_dir {
                    (
                        format!("model {draft_spec}"),
                        ollmlx_models::load(std::path::Path::new(&draft_spec), support::cpu())
                            .expect("load draft")
                            .model,
                    )
                } else {
                    (
                        format!("layers {draft_spec}"),
                        support::layer_draft(&path, &support::parse_layers(&draft_spec)),
                    )
                },
                (
                    "prompt lookup".into(),
                    Box::new(support::Lookup::new(target.info())),
                ),
            ];
            for (name, model) in drafts {
                let mut draft = Draft::new(model, target.info()).unwrap();
                let (out, dt) = support::speculative_decode(
                    target.as_ref(),
                    &mut draft,
                    &ids,
                    n,
                    &mut Sampler::new(greedy.clone()),
                );
                let tps = n as f64 / dt.as_secs_f64();
                println!(
                    "  round {round} speculative ({name}): {tps:.2} tok/s = {:.2}x plain, \
                     acceptance {:.2} ({}/{} drafts, {} rounds + {} paused, final k {}), \
                     identical: {}",
                    tps / plain_tps,
                    draft.acceptance(),
                    draft.stats.accepted,
                    draft.stats.proposed,
                    draft.stats.rounds,
                    draft.stats.paused,
                    draft.k,
                    Some(&out) == want.as_ref()
                );
            }
        }
    }
}
