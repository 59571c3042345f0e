//! The scripted model set the live-client suites (Python, JS, raw HTTP) run against.
//!
//! Each model pins one behaviour clients depend on: plain streaming text, tool calls, thinking,
//! JSON output, embeddings. The answers are fixed so client tests can assert exact values.

use ollmlx_infer::{DoneReason, Event, Stats, ToolCall};
use ollmlx_mock::{MockBackend, MockModel};
use serde_json::json;

fn done(eval: u64) -> Event {
    Event::Done {
        reason: DoneReason::Stop,
        stats: Stats {
            total_duration: 5_000_000,
            load_duration: 1_000_000,
            prompt_eval_count: 7,
            prompt_eval_duration: 1_500_000,
            eval_count: eval,
            eval_duration: 2_500_000,
        },
        context: Some(vec![1, 2, 3]),
    }
}

/// The models served by `ollmlx-mock-serve`.
pub fn models() -> Vec<MockModel> {
    let mut tools = MockModel::scripted(
        "tools:latest",
        vec![
            Event::ToolCalls(vec![ToolCall {
                id: "call_abcd1234".into(),
                index: 0,
                name: "get_weather".into(),
                arguments: json!({"city": "Paris", "unit": "celsius"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }]),
            done(5),
        ],
    );
    tools.capabilities = vec!["completion".into(), "tools".into()];
    let mut think = MockModel::scripted(
        "think:latest",
        vec![
            Event::thinking("Let me "),
            Event::thinking("think."),
            Event::content("The answer"),
            Event::content(" is 42."),
            done(4),
        ],
    );
    think.capabilities = vec!["completion".into(), "thinking".into()];
    let json_model = MockModel::scripted(
        "json:latest",
        vec![
            Event::content("{\"answer\": "),
            Event::content("42}"),
            done(2),
        ],
    );
    let mut embed = MockModel::echo("embed:latest");
    embed.embedding_dim = 8;
    embed.capabilities = vec!["embedding".into()];
    vec![
        MockModel::echo("mock:latest"),
        tools,
        think,
        json_model,
        embed,
    ]
}

/// A backend serving [`models`].
pub fn backend() -> MockBackend {
    MockBackend::new(models())
}
