//! Embeddings through the engine: `ollmlx_infer::EmbedRequest` → [`EmbedJob`] → vectors.
//!
//! The vectors come back as the model pools them (normalized when its sentence-transformers
//! modules say so); the server L2-normalizes and truncates `dimensions` for `/api/embed` and
//! `/v1/embeddings`.

use std::time::Duration;

use ollmlx_engine::embed::{is_embedding_dir, EmbedJob};
use ollmlx_engine::{Engine, KeepAlive as EngineKeepAlive, ModelRef};
use ollmlx_infer::{BackendError, BackendFuture, EmbedRequest, EmbedResponse, KeepAlive};

/// Capabilities of the weights at `path` (`embedding` for encoders, else `completion`).
pub fn capabilities(path: &std::path::Path) -> Vec<String> {
    let cap = if is_embedding_dir(path) {
        "embedding"
    } else {
        "completion"
    };
    vec![cap.to_string()]
}

/// The engine job for `req` on the weights of `model`.
pub fn job(req: &EmbedRequest, model: ModelRef) -> EmbedJob {
    EmbedJob {
        model,
        inputs: req.input.clone(),
        truncate: req.truncate.unwrap_or(true),
        num_ctx: req.options.num_ctx.filter(|&n| n > 0).map(|n| n as usize),
        keep_alive: req.keep_alive.map(|k| match k {
            KeepAlive::For(d) => EngineKeepAlive::For(d),
            KeepAlive::Forever => EngineKeepAlive::Forever,
        }),
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Embed `req` on the engine with the weights of `model`.
pub(crate) fn embed_on(
    engine: Engine,
    req: EmbedRequest,
    model: ModelRef,
) -> BackendFuture<EmbedResponse> {
    if !is_embedding_dir(&model.path) {
        let msg = format!("\"{}\" does not support embeddings", req.model);
        return Box::pin(async move { Err(BackendError::Unsupported(msg)) });
    }
    let job = job(&req, model);
    Box::pin(async move {
        let (tx, rx) = tokio::sync::oneshot::channel();
        engine.embed(job, tx).map_err(crate::convert::error)?;
        let out = rx
            .await
            .map_err(|_| BackendError::Internal("the MLX engine stopped".into()))?
            .map_err(crate::convert::error)?;
        Ok(EmbedResponse {
            embeddings: out.embeddings,
            prompt_eval_count: out.prompt_eval_count,
            load_duration: ns(out.load),
            total_duration: ns(out.total),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::Options;
    use std::path::PathBuf;

    #[test]
    fn embed_requests_truncate_by_default_and_carry_num_ctx() {
        let req = EmbedRequest {
            model: "m".into(),
            input: vec!["a".into()],
            options: Options {
                num_ctx: Some(128),
                ..Default::default()
            },
            ..Default::default()
        };
        let m = ModelRef {
            name: "m".into(),
            path: PathBuf::from("/x"),
        };
        let j = job(&req, m);
        assert!(j.truncate);
        assert_eq!(j.num_ctx, Some(128));
        assert_eq!(j.inputs, vec!["a".to_string()]);
    }

    #[test]
    fn chat_weights_are_not_embedding_models() {
        assert_eq!(capabilities(&PathBuf::from("/x.gguf")), vec!["completion"]);
    }
}
