//! Continuous batching on the real SmolLM2-135M-Instruct GGUF: concurrent requests of one model
//! decode together (`OLLAMA_NUM_PARALLEL` rows) and each produces what it produces alone —
//! greedy rows token for token, seeded sampled rows the same text — through joins, leaves,
//! cancellations and context shifts. Skips loudly without the weights.

mod common;

use std::path::Path;
use std::time::Instant;

use common::model_path;
use ollmlx_engine::{
    BatchStats, Done, Engine, EngineConfig, EngineEvent, GenerateRequest, ModelRef, Prompt,
    SamplerConfig,
};

const PROMPTS: [&str; 4] = [
    "Write a short poem about the sea.",
    "List three uses of copper.",
    "Explain in one paragraph why the sky is blue, for a child who keeps asking questions.",
    "Hi",
];

fn greedy() -> SamplerConfig {
    SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..Default::default()
    }
}

fn request(path: &Path, prompt: &str, n: usize, sampler: SamplerConfig) -> GenerateRequest {
    let mut req = GenerateRequest::new(
        ModelRef {
            name: "smollm2".into(),
            path: path.to_path_buf(),
        },
        Prompt::Text {
            prompt: prompt.into(),
            system: String::new(),
            raw: false,
        },
    );
    req.sampler = sampler;
    req.num_predict = Some(n);
    req.return_context = true;
    req
}

fn engine(parallel: usize) -> Engine {
    Engine::start(EngineConfig {
        num_parallel: parallel,
        ..Default::default()
    })
    .unwrap()
}

type Rx = tokio::sync::mpsc::Receiver<EngineEvent>;

fn submit(engine: &Engine, req: GenerateRequest) -> Rx {
    let (tx, rx) = tokio::sync::mpsc::channel(512);
    engine.generate(req, tx).unwrap();
    rx
}

/// Read a stream to its end: the text, the final event, when the first text and the end came.
fn drain(mut rx: Rx) -> (String, Done, Instant, Instant) {
    let mut text = String::new();
    let mut first = None;
    loop {
        match rx.blocking_recv().expect("stream closed without Done") {
            EngineEvent::Text(t) => {
                first.get_or_insert_with(Instant::now);
                text.push_str(&t);
            }
            EngineEvent::Done(d) => {
                let now = Instant::now();
                return (text, d, first.unwrap_or(now), now);
            }
            EngineEvent::Error(e) => panic!("engine error: {e}"),
            _ => {}
        }
    }
}

fn alone(engine: &Engine, req: GenerateRequest) -> (String, Vec<u32>) {
    let (text, done, ..) = drain(submit(engine, req));
    (text, done.context.unwrap_or_default())
}

/// Submit all at once (they queue together), read each on its own thread.
fn together(engine: &Engine, reqs: Vec<GenerateRequest>) -> Vec<Run> {
    let rxs: Vec<Rx> = reqs.into_iter().map(|r| submit(engine, r)).collect();
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|rx| std::thread::spawn(move || drain(rx)))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

type Run = (String, Done, Instant, Instant);

/// Each of [`PROMPTS`] greedily alone (`n` tokens), then all four at once: every batched run must
/// give the token ids and text of its solo run. Returns the batched runs and the engine's stats
/// from between the two phases.
fn alone_then_together(e: &Engine, path: &Path, n: usize) -> (Vec<Run>, BatchStats) {
    let want: Vec<_> = PROMPTS
        .iter()
        .map(|p| alone(e, request(path, p, n, greedy())))
        .collect();
    let before = e.batch_stats();
    let got = together(
        e,
        PROMPTS
            .iter()
            .map(|p| request(path, p, n, greedy()))
            .collect(),
    );
    for (i, ((text, done, ..), (want_text, want_ids))) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            done.context.as_ref(),
            Some(want_ids),
            "request {i}: token ids"
        );
        assert_eq!(text, want_text, "request {i}: text");
    }
    (got, before)
}

#[test]
fn concurrent_greedy_requests_decode_token_for_token_as_they_do_alone() {
    let Some(path) = model_path() else { return };
    let e = engine(4);
    let (_, before) = alone_then_together(&e, &path, 24);
    let after = e.batch_stats();
    assert_eq!(after.peak, 4, "the four requests decoded in one batch");
    let mean = (after.rows - before.rows) as f64 / (after.steps - before.steps) as f64;
    assert!(mean > 2.0, "mean batch size {mean:.2} while four ran");
}

#[test]
fn requests_waiting_together_prefill_as_one_group_and_decode_as_they_do_alone() {
    let Some(path) = model_path() else { return };
    // No prefix cache: the prompts are evaluated for real (only the live cache of the previous
    // request can serve one of them a prefix, so the group mixes fresh and continuing rows).
    let e = Engine::start(EngineConfig {
        num_parallel: 4,
        prefix_cache_bytes: 0,
        ..Default::default()
    })
    .unwrap();
    let (got, before) = alone_then_together(&e, &path, 16);
    assert_eq!(
        before.prefill_groups, 0,
        "one request at a time never groups"
    );
    for (i, (_, done, ..)) in got.iter().enumerate() {
        assert!(
            done.stats.prompt_eval_count > 0,
            "request {i}: prompt tokens evaluated"
        );
    }
    let after = e.batch_stats();
    assert!(
        after.prefill_groups > before.prefill_groups && after.grouped_rows >= 2,
        "requests that waited together were prefilled as a group: {after:?}"
    );
}

#[test]
fn an_idle_engine_waits_its_batch_window_so_a_burst_prefills_as_one_group() {
    let Some(path) = model_path() else { return };
    // One request, then three more 10 ms later: without a window the first one is prefilled
    // alone (the engine starts at once) and the other three as a group; with a 200 ms window
    // the engine gathers all four first.
    for (window_ms, grouped) in [(0u64, 3u64), (200, 4)] {
        let e = Engine::start(EngineConfig {
            num_parallel: 4,
            prefix_cache_bytes: 0,
            admit_window: std::time::Duration::from_millis(window_ms),
            ..Default::default()
        })
        .unwrap();
        // Load the model first, so the burst meets an idle engine with the model resident.
        let _ = alone(&e, request(&path, "Hi", 1, greedy()));
        let before = e.batch_stats();
        let first = submit(&e, request(&path, PROMPTS[0], 4, greedy()));
        std::thread::sleep(std::time::Duration::from_millis(10));
        let rest: Vec<Rx> = PROMPTS[1..]
            .iter()
            .map(|p| submit(&e, request(&path, p, 4, greedy())))
            .collect();
        for rx in std::iter::once(first).chain(rest) {
            drain(rx);
        }
        let after = e.batch_stats();
        assert_eq!(
            (
                after.prefill_groups - before.prefill_groups,
                after.grouped_rows - before.grouped_rows
            ),
            (1, grouped),
            "window {window_ms} ms"
        );
    }
}

#[test]
fn seeded_sampling_gives_the_same_text_inside_a_batch_as_alone() {
    let Some(path) = model_path() else { return };
    let e = engine(3);
    let sampled = |seed| SamplerConfig {
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        seed: Some(seed),
        ..Default::default()
    };
    let reqs = || {
        vec![
            request(&path, PROMPTS[0], 20, sampled(7)),
            request(&path, PROMPTS[1], 20, greedy()),
            request(&path, PROMPTS[2], 20, sampled(11)),
        ]
    };
    let want: Vec<_> = reqs().into_iter().map(|r| alone(&e, r)).collect();
    let got = together(&e, reqs());
    for (i, ((text, done, ..), (want_text, want_ids))) in got.iter().zip(&want).enumerate() {
        assert_eq!(text, want_text, "request {i}: text");
        assert_eq!(done.context.as_ref(), Some(want_ids), "request {i}: ids");
    }
    assert!(e.batch_stats().peak >= 2, "sampled rows batched");
}

#[test]
fn random_cancellations_never_change_the_other_rows() {
    let Some(path) = model_path() else { return };
    let e = engine(4);
    let want: Vec<_> = PROMPTS
        .iter()
        .map(|p| alone(&e, request(&path, p, 30, greedy())))
        .collect();
    // A fixed pseudo-random plan: which requests hang up, after how many events.
    let mut state = 0x9e37_79b9_u32;
    let mut rand = move |n: u32| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state % n
    };
    for round in 0..3 {
        let cancel: Vec<Option<u32>> = (0..4)
            .map(|_| (rand(2) == 0).then(|| 1 + rand(12)))
            .collect();
        let rxs: Vec<Rx> = PROMPTS
            .iter()
            .map(|p| submit(&e, request(&path, p, 30, greedy())))
            .collect();
        let handles: Vec<_> = rxs
            .into_iter()
            .zip(cancel.clone())
            .map(|(mut rx, stop_after)| {
                std::thread::spawn(move || match stop_after {
                    Some(k) => {
                        for _ in 0..k {
                            if rx.blocking_recv().is_none() {
                                break;
                            }
                        }
                        drop(rx); // hang up mid-stream
                        None
                    }
                    None => Some(drain(rx)),
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            if let Some((text, done, ..)) = h.join().unwrap() {
                assert_eq!(
                    text, want[i].0,
                    "round {round} ({cancel:?}): request {i} text"
                );
                assert_eq!(
                    done.context.as_ref(),
                    Some(&want[i].1),
                    "round {round}: ids"
                );
            }
        }
    }
    // The engine keeps serving, with the same output.
    let again = alone(&e, request(&path, PROMPTS[0], 30, greedy()));
    assert_eq!(again, want[0]);
}

#[test]
fn num_parallel_bounds_the_batch_and_admits_in_arrival_order() {
    let Some(path) = model_path() else { return };
    let e = engine(2);
    let got = together(
        &e,
        PROMPTS
            .iter()
            .map(|p| request(&path, p, 16, greedy()))
            .collect(),
    );
    assert_eq!(
        e.batch_stats().peak,
        2,
        "never more than OLLAMA_NUM_PARALLEL rows"
    );
    // The last two started only after one of the first two finished.
    let first_done = got[0].3.min(got[1].3);
    for (i, r) in got.iter().enumerate().skip(2) {
        assert!(
            r.2 >= first_done,
            "request {i} started before a slot was free"
        );
        assert!(r.1.stats.eval_count > 0, "request {i} ran");
    }
}

#[test]
fn rows_shifting_their_context_inside_a_batch_match_their_solo_runs() {
    let Some(path) = model_path() else { return };
    let e = engine(2);
    let req = |prompt: &str| {
        let mut r = request(&path, prompt, 70, greedy());
        r.num_ctx = 64; // both shift (at different steps: different prompt lengths)
        r
    };
    let want: Vec<_> = [PROMPTS[0], PROMPTS[2]]
        .iter()
        .map(|p| alone(&e, req(p)))
        .collect();
    let got = together(&e, vec![req(PROMPTS[0]), req(PROMPTS[2])]);
    for (i, (text, done, ..)) in got.iter().enumerate() {
        assert_eq!(
            done.stats.eval_count, 70,
            "request {i} generated past the window"
        );
        assert_eq!(text, &want[i].0, "request {i} text");
        assert_eq!(done.context.as_ref(), Some(&want[i].1), "request {i} ids");
    }
}

#[test]
fn a_long_prompt_is_prefilled_in_chunks_between_the_running_rows_decode_steps() {
    let Some(path) = model_path() else { return };
    // No prefix cache: the long prompt's solo run must not serve the batched one.
    let e = Engine::start(EngineConfig {
        num_parallel: 2,
        prefix_cache_bytes: 0,
        ..Default::default()
    })
    .unwrap();
    let long_prompt =
        "The quick brown fox jumps over the lazy dog near the river bank. ".repeat(40);
    let long = || {
        let mut r = request(&path, &long_prompt, 8, greedy());
        r.num_batch = 64; // prefill chunk while others decode
        r
    };
    let want_long = alone(&e, long());
    // Other requests next, so the live cache does not hold the long prompt either.
    let want_short = alone(&e, request(&path, PROMPTS[1], 48, greedy()));
    let _ = alone(&e, request(&path, PROMPTS[3], 2, greedy()));

    // A short request decodes; the long one arrives once it streams.
    let mut rx_a = submit(&e, request(&path, PROMPTS[1], 48, greedy()));
    let mut a_times = Vec::new();
    let mut a_text = String::new();
    while a_times.len() < 2 {
        if let Some(EngineEvent::Text(t)) = rx_a.blocking_recv() {
            a_times.push(Instant::now());
            a_text.push_str(&t);
        }
    }
    let b_submitted = Instant::now();
    let rx_b = submit(&e, long());
    let reader_b = std::thread::spawn(move || drain(rx_b));
    let a_done = loop {
        match rx_a.blocking_recv().expect("stream closed") {
            EngineEvent::Text(t) => {
                a_times.push(Instant::now());
                a_text.push_str(&t);
            }
            EngineEvent::Done(d) => break d,
            EngineEvent::Error(err) => panic!("{err}"),
            _ => {}
        }
    };
    let (b_text, b_done, b_first, _) = reader_b.join().unwrap();
    assert_eq!(
        a_text, want_short.0,
        "the running row's output is unchanged"
    );
    assert_eq!(a_done.context.as_ref(), Some(&want_short.1));
    assert_eq!(b_text, want_long.0, "the long prompt's output is unchanged");
    assert_eq!(b_done.context.as_ref(), Some(&want_long.1));
    let prompt_tokens = b_done.stats.prompt_eval_count;
    assert!(
        prompt_tokens > 400,
        "long prompt: {prompt_tokens} tokens evaluated"
    );
    // ~10 chunks of 64: the running row keeps decoding between them instead of waiting for
    // the whole prompt.
    let during = a_times
        .iter()
        .filter(|t| **t > b_submitted && **t < b_first)
        .count();
    assert!(
        during >= 4,
        "only {during} tokens of the running row while {prompt_tokens} prompt tokens were prefilled"
    );
}

#[test]
fn requests_abandoned_while_queued_are_skipped_without_prefilling() {
    let Some(path) = model_path() else { return };
    let e = engine(1);
    let before = e.prefix_cache_stats().prefilled_tokens;
    // A decodes; five long prompts queue behind it and their clients hang up at once.
    let rx_a = submit(&e, request(&path, PROMPTS[0], 24, greedy()));
    let long = "Tell me everything about rivers, lakes and oceans. ".repeat(30);
    for _ in 0..5 {
        drop(submit(&e, request(&path, &long, 8, greedy())));
    }
    let (_, a, ..) = drain(rx_a);
    let (_, c, ..) = drain(submit(&e, request(&path, PROMPTS[3], 4, greedy())));
    let prefilled = e.prefix_cache_stats().prefilled_tokens - before;
    assert_eq!(
        prefilled,
        a.stats.prompt_eval_count + c.stats.prompt_eval_count,
        "only the requests with a client were prefilled"
    );
}

#[test]
fn a_client_that_stops_reading_does_not_stall_the_batch_and_still_gets_its_whole_stream() {
    let Some(path) = model_path() else { return };
    let e = engine(4);
    let (want_text, want_ids) = alone(&e, request(&path, PROMPTS[0], 32, greedy()));
    // A client that reads nothing: its channel holds one event, it never hangs up.
    let (tx, stalled) = tokio::sync::mpsc::channel(1);
    e.generate(request(&path, PROMPTS[0], 32, greedy()), tx)
        .unwrap();
    // Other requests in the same batch must finish while it is stalled (a bounded wait, so
    // an engine that blocks on the stalled client fails here instead of hanging).
    let t0 = Instant::now();
    let rxs: Vec<Rx> = PROMPTS[1..]
        .iter()
        .map(|p| submit(&e, request(&path, p, 16, greedy())))
        .collect();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outs: Vec<_> = rxs.into_iter().map(drain).collect();
        let _ = done_tx.send(outs);
    });
    let others = done_rx
        .recv_timeout(std::time::Duration::from_secs(600))
        .expect("the other requests did not finish beside a client that stopped reading");
    for (text, done, ..) in &others {
        assert!(!text.is_empty());
        assert!(done.stats.eval_count > 0);
    }
    eprintln!("others done in {:?} beside a stalled reader", t0.elapsed());
    // The stalled client then reads: every event arrives, in order, and ends with Done.
    let (text, done, ..) = drain(stalled);
    assert_eq!(text, want_text);
    assert_eq!(done.context.unwrap_or_default(), want_ids);
}
