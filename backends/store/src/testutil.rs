//! Helpers shared by the crate's tests: synthetic GGUF models and a populated temp store.

use std::sync::Arc;

use futures::StreamExt;
use ollmlx_infer::{Backend, ManageRequest};
use ollmlx_wire::ollama::{CreateRequest, ProgressResponse};
use serde_json::{json, Map, Value};

use crate::blobs::sha256_digest;
use crate::gguf::{i32_array, string_array, write_gguf, GgufValue};
use crate::{Store, StoreBackend};

/// A tiny llama-architecture GGUF with a chat template mentioning tools and think tags.
pub fn tiny_gguf(template: &str) -> Vec<u8> {
    write_gguf(
        &[
            ("general.architecture", GgufValue::String("llama".into())),
            ("general.name", GgufValue::String("Tiny".into())),
            ("general.file_type", GgufValue::U32(3)),
            ("llama.context_length", GgufValue::U32(2048)),
            ("llama.embedding_length", GgufValue::U32(64)),
            ("llama.block_count", GgufValue::U32(2)),
            ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
            (
                "tokenizer.ggml.tokens",
                string_array(&["a", "b", "c", "d", "e", "f", "g"]),
            ),
            ("tokenizer.ggml.token_type", i32_array(&[1, 1, 1])),
            (
                "tokenizer.chat_template",
                GgufValue::String(template.into()),
            ),
        ],
        &[
            ("token_embd.weight", 3, vec![64, 1000]),
            ("output_norm.weight", 0, vec![64]),
        ],
    )
}

/// A temp store plus a backend over it.
pub struct Fixture {
    /// Keeps the directory alive.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: Store,
    /// The backend.
    pub backend: Arc<StoreBackend>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("models"));
        let backend = Arc::new(StoreBackend::new(store.clone()));
        Fixture {
            dir,
            store,
            backend,
        }
    }

    /// Put a blob, returning its digest.
    pub fn blob(&self, data: &[u8]) -> String {
        self.store.blobs().put_bytes(data).unwrap();
        sha256_digest(data)
    }

    /// Run a create, returning all progress objects or the first error.
    pub async fn create(
        &self,
        req: Value,
    ) -> Result<Vec<ProgressResponse>, ollmlx_infer::BackendError> {
        let r: CreateRequest = serde_json::from_value(req).unwrap();
        let mut s = self.backend.manage(ManageRequest::Create(r.into())).await?;
        let mut out = Vec::new();
        while let Some(p) = s.next().await {
            out.push(p?);
        }
        Ok(out)
    }

    /// Create `name` from a tiny GGUF uploaded as `files`.
    pub async fn create_tiny(&self, name: &str, extra: Value) -> Vec<ProgressResponse> {
        let d = self.blob(&tiny_gguf(
            "{% for m in messages %}{{ m.content }}{% endfor %}",
        ));
        let mut req: Map<String, Value> =
            serde_json::from_value(json!({"model": name, "files": {"tiny.gguf": d}})).unwrap();
        if let Value::Object(e) = extra {
            req.extend(e);
        }
        self.create(Value::Object(req)).await.unwrap()
    }
}
