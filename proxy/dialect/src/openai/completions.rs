//! `POST /v1/completions`: request decoding into a raw-prompt [`Request`] and the codec writing
//! `text_completion` chunks or body, mirroring Ollama's `CompleteWriter`.

use ollmlx_infer::{Event, GenerateInput, Input, Options, Request, Stats};
use ollmlx_wire::json::{to_line, to_vec};
use ollmlx_wire::openai::chat::Usage;
use ollmlx_wire::openai::completions::{
    CompleteChunkChoice, Completion, CompletionChunk, CompletionRequest,
};
use ollmlx_wire::openai::error::ErrorResponse;
use serde_json::Value;

use super::chat_codec::usage;
use super::common::{go_type_of, now_unix, rand_id};
use crate::{decode_json, Chunk, Codec, DecodeError, Decoded};

/// Decode a completion body into a request and the codec for its answer.
pub fn decode_completion(body: &[u8]) -> Result<Decoded, DecodeError> {
    let req: CompletionRequest = decode_json(body, "CompletionRequest")?;
    let request = to_request(&req).map_err(DecodeError::bad_request)?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let codec = CompletionCodec::new(
        rand_id("cmpl-", 999),
        now_unix(),
        req.model.clone(),
        include_usage,
    );
    Ok(Decoded {
        request,
        codec: Box::new(codec),
    })
}

/// Translate the wire request (Ollama's `FromCompleteRequest`).
pub(crate) fn to_request(r: &CompletionRequest) -> Result<Request, String> {
    let stop = match &r.stop {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for s in a {
                match s.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => {
                        return Err(format!("invalid type for 'stop' field: {}", go_type_of(s)))
                    }
                }
            }
            (!out.is_empty()).then_some(out)
        }
        _ => None,
    };
    let options = Options {
        stop,
        num_predict: r.max_tokens,
        temperature: Some(r.temperature.unwrap_or(1.0)),
        seed: r.seed,
        frequency_penalty: Some(r.frequency_penalty),
        presence_penalty: Some(r.presence_penalty),
        top_p: Some(if r.top_p != 0.0 { r.top_p } else { 1.0 }),
        ..Default::default()
    };
    let n = r.logprobs.unwrap_or(0);
    if n > 20 {
        return Err("top_logprobs must be between 0 and 20".into());
    }
    Ok(Request {
        model: r.model.clone(),
        input: Input::Generate(GenerateInput {
            prompt: r.prompt.clone(),
            suffix: r.suffix.clone(),
            ..Default::default()
        }),
        options,
        stream: r.stream,
        logprobs: n > 0,
        top_logprobs: n.max(0) as u32,
        debug_render_only: r.debug_render_only,
        ..Default::default()
    })
}

/// Encoder for one text completion.
#[derive(Debug)]
pub struct CompletionCodec {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    text: String,
    reason: Option<String>,
    stats: Stats,
}

impl CompletionCodec {
    /// A codec with a fixed id (`cmpl-<n>`) and `created`.
    pub fn new(id: String, created: i64, model: String, include_usage: bool) -> Self {
        CompletionCodec {
            id,
            created,
            model,
            include_usage,
            text: String::new(),
            reason: None,
            stats: Stats::default(),
        }
    }

    fn chunk(&self, choices: Vec<CompleteChunkChoice>, usage: Option<Usage>) -> Chunk {
        Chunk::Data(to_vec(&CompletionChunk {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            choices,
            model: self.model.clone(),
            system_fingerprint: "fp_ollama".into(),
            usage,
        }))
    }

    fn text_chunk(&self, text: &str, finish_reason: Option<String>) -> Chunk {
        let zero = self.include_usage.then(Usage::default);
        self.chunk(
            vec![CompleteChunkChoice {
                text: text.to_string(),
                index: 0,
                finish_reason,
                logprobs: None,
            }],
            zero,
        )
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Codec for CompletionCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        match ev {
            Event::Delta { content, .. } if !content.is_empty() => {
                vec![self.text_chunk(content, None)]
            }
            Event::Done { reason, stats, .. } => {
                let mut out = vec![self.text_chunk("", non_empty(reason.as_str()))];
                if self.include_usage {
                    out.push(self.chunk(Vec::new(), Some(usage(stats))));
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        vec![Chunk::Done]
    }

    fn stream_error(&mut self, status: u16, message: &str) -> Vec<Chunk> {
        vec![Chunk::Data(to_vec(&ErrorResponse::new(status, message)))]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta { content, .. } => self.text.push_str(content),
            Event::Done { reason, stats, .. } => {
                self.reason = Some(reason.as_str().to_string());
                self.stats = stats.clone();
            }
            _ => {}
        }
    }

    fn body(&mut self) -> Vec<u8> {
        to_line(&Completion {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: "fp_ollama".into(),
            choices: vec![CompleteChunkChoice {
                text: self.text.clone(),
                index: 0,
                finish_reason: self.reason.as_deref().and_then(non_empty),
                logprobs: None,
            }],
            usage: usage(&self.stats),
        })
    }
}
