//! Speculative decoding inside the engine's scheduler on the real SmolLM2 GGUF: a request naming
//! a draft model decodes in draft-and-verify rounds when it is the only row, and its output is
//! the output without a draft — greedy token for token, through stop strings, a context shift
//! and another request joining mid-way (the speculating row goes back to batched decoding).
//! The draft here is the target itself (every draft accepted: the integration is what is under
//! test; acceptance rules and a smaller draft are in `speculative_smollm2.rs`). Skips loudly
//! without the weights.

mod common;

use std::path::{Path, PathBuf};

use common::model_path;
use ollmlx_engine::{
    Done, Engine, EngineConfig, EngineEvent, GenerateRequest, LookupPolicy, ModelRef, Prompt,
    SamplerConfig,
};

fn greedy() -> SamplerConfig {
    SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..Default::default()
    }
}

fn request(path: &Path, prompt: &str, n: usize, draft: bool) -> GenerateRequest {
    let model = ModelRef {
        name: "smollm2".into(),
        path: path.to_path_buf(),
    };
    let mut req = GenerateRequest::new(
        model,
        Prompt::Text {
            prompt: prompt.into(),
            system: String::new(),
            raw: false,
        },
    );
    req.sampler = greedy();
    req.num_predict = Some(n);
    req.return_context = true;
    if draft {
        req.draft = Some(ModelRef {
            name: "smollm2-draft".into(),
            path: path.to_path_buf(),
        });
    }
    req
}

type Rx = tokio::sync::mpsc::Receiver<EngineEvent>;

fn submit(e: &Engine, req: GenerateRequest) -> Rx {
    let (tx, rx) = tokio::sync::mpsc::channel(512);
    e.generate(req, tx).unwrap();
    rx
}

fn drain(mut rx: Rx) -> (String, Done) {
    let mut text = String::new();
    loop {
        match rx.blocking_recv().expect("stream closed without Done") {
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Done(d) => return (text, d),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
            _ => {}
        }
    }
}

fn run(e: &Engine, req: GenerateRequest) -> (String, Vec<u32>, Done) {
    let (text, done) = drain(submit(e, req));
    (text, done.context.clone().unwrap_or_default(), done)
}

const COUNT: &str = "Count from 1 to 30, separated by commas.";
const REPEAT: &str = "Repeat this sentence three times: The cat sat on the warm mat.";

#[test]
fn greedy_with_a_draft_equals_greedy_without_through_stops_and_shifts() {
    let Some(path) = model_path() else { return };
    let e = Engine::start(EngineConfig::default()).unwrap();
    // Plain run, then with the draft.
    let plain = run(&e, request(&path, COUNT, 48, false));
    let spec = run(&e, request(&path, COUNT, 48, true));
    assert_eq!(spec.0, plain.0, "text");
    assert_eq!(spec.1, plain.1, "token ids");
    assert_eq!(spec.2.stats.eval_count, 48);
    // `draft_num_predict` bounds the draft length (1) or turns speculation off (0).
    for n in [1, 0] {
        let mut r = request(&path, COUNT, 48, true);
        r.draft_num_predict = Some(n);
        let got = run(&e, r);
        assert_eq!(got.1, plain.1, "draft_num_predict {n}: token ids");
    }

    // A stop string inside an accepted run of draft tokens ends the output at the same place.
    let stopped = |draft| {
        let mut r = request(&path, COUNT, 48, draft);
        r.stop = vec!["7,".into()];
        run(&e, r)
    };
    let (a, b) = (stopped(false), stopped(true));
    assert_eq!(b.0, a.0, "stop string");
    assert_eq!(b.2.reason, a.2.reason);

    // Past the window: the context shift happens in the middle of speculative rounds.
    let shifted = |draft| {
        let mut r = request(&path, COUNT, 70, draft);
        r.num_ctx = 64;
        run(&e, r)
    };
    let (a, b) = (shifted(false), shifted(true));
    assert_eq!(b.2.stats.eval_count, 70, "generated past the window");
    assert_eq!(b.0, a.0, "shifted text");
    assert_eq!(b.1, a.1, "shifted ids");
}

#[test]
fn a_request_joining_a_speculating_row_leaves_both_outputs_unchanged() {
    let Some(path) = model_path() else { return };
    let e = Engine::start(EngineConfig {
        num_parallel: 2,
        ..Default::default()
    })
    .unwrap();
    let other = "List three uses of copper.";
    let want_a = run(&e, request(&path, COUNT, 40, false));
    let want_b = run(&e, request(&path, other, 24, false));
    // A speculates alone; B arrives once A streams, they batch, A resumes speculating after.
    let mut rx_a = submit(&e, request(&path, COUNT, 40, true));
    let mut a_text = String::new();
    while a_text.len() < 8 {
        if let Some(EngineEvent::Text(t)) = rx_a.blocking_recv() {
            a_text.push_str(&t);
        }
    }
    let rx_b = submit(&e, request(&path, other, 24, false));
    let b = std::thread::spawn(move || drain(rx_b));
    let (rest, a_done) = drain(rx_a);
    a_text.push_str(&rest);
    let (b_text, b_done) = b.join().unwrap();
    assert_eq!(a_text, want_a.0, "speculating row");
    assert_eq!(a_done.context.unwrap_or_default(), want_a.1);
    assert_eq!(b_text, want_b.0, "joining row");
    assert_eq!(b_done.context.unwrap_or_default(), want_b.1);
}

#[test]
fn seeded_sampling_with_a_draft_is_reproducible() {
    let Some(path) = model_path() else { return };
    let e = Engine::start(EngineConfig::default()).unwrap();
    let sampled = || {
        let mut r = request(&path, "Write a short poem about the sea.", 32, true);
        r.sampler = SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            seed: Some(1234),
            ..Default::default()
        };
        r
    };
    let a = run(&e, sampled());
    let b = run(&e, sampled());
    assert_eq!(a.0, b.0);
    assert_eq!(a.2.stats.eval_count, 32);
}

#[test]
fn an_unloadable_draft_fails_the_request_with_a_clear_error() {
    let Some(path) = model_path() else { return };
    let e = Engine::start(EngineConfig::default()).unwrap();
    let mut r = request(&path, COUNT, 8, true);
    r.draft = Some(ModelRef {
        name: "missing".into(),
        path: PathBuf::from("/nonexistent/draft.gguf"),
    });
    let mut rx = submit(&e, r);
    match rx.blocking_recv() {
        Some(EngineEvent::Error(err)) => assert!(!err.to_string().is_empty()),
        other => panic!("expected an error, got {other:?}"),
    }
    // The engine goes on serving.
    let ok = run(&e, request(&path, COUNT, 4, false));
    assert_eq!(ok.2.stats.eval_count, 4);
}

#[test]
fn prompt_lookup_leaves_greedy_output_unchanged_and_a_named_draft_still_wins() {
    let Some(path) = model_path() else { return };
    let plain_engine = Engine::start(EngineConfig::default()).unwrap();
    let want = run(&plain_engine, request(&path, COUNT, 48, false));
    let stop = |e: &Engine| {
        let mut r = request(&path, COUNT, 48, false);
        r.stop = vec!["7,".into()];
        run(e, r)
    };
    let want_stop = stop(&plain_engine);
    let sampled = || {
        let mut r = request(&path, COUNT, 32, false);
        r.sampler = SamplerConfig {
            temperature: 0.9,
            seed: Some(99),
            ..Default::default()
        };
        r
    };
    let want_sampled = run(&plain_engine, sampled());
    // Output that repeats its prompt: copies are proposed and accepted. (The comma-separated
    // count above is not: "1, 2, 3" never repeats a 2-gram followed by the same token.)
    let want_repeat = run(&plain_engine, request(&path, REPEAT, 48, false));
    drop(plain_engine);

    // The serve default: only temperature-0 requests speculate, so a seeded sampled request
    // draws exactly what it draws without lookup.
    let greedy_only = Engine::start(EngineConfig {
        prompt_lookup: LookupPolicy::Greedy,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        run(&greedy_only, request(&path, COUNT, 48, false)).1,
        want.1
    );
    assert_eq!(
        run(&greedy_only, request(&path, REPEAT, 48, false)).1,
        want_repeat.1
    );
    let after_greedy = greedy_only.batch_stats();
    assert!(
        after_greedy.draft_accepted > 0,
        "the greedy request speculated: {after_greedy:?}"
    );
    assert_eq!(
        run(&greedy_only, sampled()).1,
        want_sampled.1,
        "seeded sampled"
    );
    assert_eq!(
        greedy_only.batch_stats().draft_proposed,
        after_greedy.draft_proposed,
        "the sampled request did not speculate"
    );
    drop(greedy_only);

    let e = Engine::start(EngineConfig {
        prompt_lookup: LookupPolicy::All,
        ..Default::default()
    })
    .unwrap();
    let got = run(&e, request(&path, COUNT, 48, false));
    assert_eq!(got.0, want.0, "text");
    assert_eq!(got.1, want.1, "token ids");
    assert_eq!(got.2.stats.eval_count, 48);
    let repeat = run(&e, request(&path, REPEAT, 48, false));
    assert_eq!(repeat.0, want_repeat.0, "repeating text");
    let s = e.batch_stats();
    assert!(
        s.draft_accepted > 0 && s.draft_accepted <= s.draft_proposed,
        "{s:?}"
    );
    let got_stop = stop(&e);
    assert_eq!(got_stop.0, want_stop.0, "stop string");
    assert_eq!(got_stop.2.reason, want_stop.2.reason);
    // A request naming a draft model speculates with it, not with lookup; 0 turns both off.
    assert_eq!(run(&e, request(&path, COUNT, 48, true)).1, want.1);
    let mut off = request(&path, COUNT, 48, false);
    off.draft_num_predict = Some(0);
    assert_eq!(run(&e, off).1, want.1);
}
